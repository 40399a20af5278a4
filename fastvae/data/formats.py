"""File formats of the MNIST data sets: binarized-MNIST ``.amat`` text and IDX image files
(plain or gzipped), and ``.npz`` archives of 0/1 arrays. A malformed file is a ``ValueError``
that names it."""

from __future__ import annotations

import gzip
import os

import numpy as np


def _read_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        raw = gzip.decompress(raw)
    return raw


def _amat_slow(path, raw, cols):
    """Line-by-line parse: accepts any numeric spelling of 0 and 1 ("1", "1.0") and reports
    the first bad line exactly."""
    rows = []
    for lineno, line in enumerate(raw.split(b"\n"), 1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != cols:
            raise ValueError(f"{path}: line {lineno}: expected {cols} values, got {len(tokens)}")
        try:
            values = np.array([float(t) for t in tokens])
        except ValueError:
            bad = next(t for t in tokens if not _is_float(t))
            raise ValueError(f"{path}: line {lineno}: {bad.decode(errors='replace')!r} is not a number") from None
        wrong = np.flatnonzero((values != 0) & (values != 1))
        if wrong.size:
            k = wrong[0]
            raise ValueError(f"{path}: line {lineno}: value {k + 1} is "
                             f"{tokens[k].decode(errors='replace')!r}; a binarized image holds only 0 and 1")
        rows.append(values.astype(np.uint8))
    return np.stack(rows) if rows else np.zeros((0, cols), np.uint8)


def _is_float(t):
    try:
        float(t)
        return True
    except ValueError:
        return False


def _amat_fast(raw, cols, chunk_bytes=1 << 23):
    """Vectorised parse of the canonical spelling (every value a single '0' or '1' separated by
    whitespace, ``cols`` per non-blank line); None when the text is not in that form."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    parts = []
    start = 0
    while start < buf.size:
        end = min(start + chunk_bytes, buf.size)
        if end < buf.size:  # cut after a newline so that chunks hold whole lines
            nl = raw.rfind(b"\n", start, end)
            end = nl + 1 if nl >= start else (raw.find(b"\n", end) + 1 or buf.size)
        b = buf[start:end]
        start = end
        ws = (b == 32) | (b == 10) | (b == 13) | (b == 9)
        val = ~ws
        if (val & (b != 48) & (b != 49)).any() or (val[1:] & val[:-1]).any():
            return None
        cs = np.cumsum(val, dtype=np.int64)
        nl = np.flatnonzero(b == 10)
        ends = cs[nl] if nl.size else np.zeros(0, np.int64)
        if b[-1] != 10:
            ends = np.append(ends, cs[-1])
        counts = np.diff(ends, prepend=0)
        if np.any((counts != 0) & (counts != cols)):
            return None
        parts.append(b[val] - np.uint8(48))
    if not parts:
        return np.zeros((0, cols), np.uint8)
    return np.concatenate(parts).reshape(-1, cols)


def read_amat(path, cols: int = 784) -> np.ndarray:
    """Read a binarized-MNIST ``.amat`` text file (one image per line: ``cols`` whitespace
    separated values, each 0 or 1; blank lines ignored; gzipped files accepted): uint8
    ``(N, cols)``. A malformed line is a ``ValueError`` naming the file and the line."""
    path = os.fspath(path)
    raw = _read_bytes(path)
    out = _amat_fast(raw, cols)
    if out is None:  # not the canonical spelling: parse again, line by line, for the exact error
        out = _amat_slow(path, raw, cols)
    if out.shape[0] == 0:
        raise ValueError(f"{path}: no images (the file is empty)")
    return out


def read_idx_images(path) -> np.ndarray:
    """Read an IDX image file (MNIST ``*-images-idx3-ubyte``, plain or gzipped): uint8
    ``(N, H, W)``. The header is validated: magic 0x00000803 (unsigned bytes, 3 dimensions),
    positive dimensions, and exactly N*H*W bytes of data."""
    path = os.fspath(path)
    raw = _read_bytes(path)
    magic = int.from_bytes(raw[:4], "big")
    if len(raw) >= 4 and magic != 0x00000803:
        what = ""
        if raw[:3] == b"\0\0\x08":
            what = f" (an IDX file of unsigned bytes with {raw[3]} dimensions; images have 3)"
        raise ValueError(f"{path}: bad IDX magic number 0x{magic:08x}{what}; expected 0x00000803 "
                         "(MNIST image file, e.g. train-images-idx3-ubyte)")
    if len(raw) < 16:
        raise ValueError(f"{path}: not an IDX image file ({len(raw)} bytes, shorter than the 16-byte header)")
    n, h, w = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    if n == 0 or h == 0 or w == 0:
        raise ValueError(f"{path}: IDX dimensions {n}x{h}x{w} hold no image")
    expected = 16 + n * h * w
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX header says {n}x{h}x{w} images ({expected} bytes with the header) "
                         f"but the file holds {len(raw)} bytes (truncated or not an image file)")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, h, w).copy()


def read_binary_npz(path, names) -> dict:
    """Read the arrays ``names`` (at least two) of an ``.npz`` archive, each of which must hold
    only 0 and 1 (any integer, bool or float dtype): ``{name: uint8 array}``. A missing array
    or another value is a ``ValueError`` naming the file."""
    path = os.fspath(path)
    with np.load(path, allow_pickle=False) as f:
        missing = [s for s in names if s not in f.files]
        if missing:
            expected = ", ".join(names[:-1]) + " and " + names[-1]
            raise ValueError(f"{path}: no array named {', '.join(missing)} (it holds {', '.join(f.files)}); "
                             f"expected {expected}")
        arrays = {s: f[s] for s in names}
    for s, a in arrays.items():
        if a.dtype.kind not in "biuf" or a.size == 0 or a.min() < 0 or a.max() > 1 \
                or (a.dtype.kind == "f" and not np.isin(a, (0, 1)).all()):
            raise ValueError(f"{path}: array {s!r} must hold only 0 and 1 (dtype {a.dtype}, "
                             f"{a.size} values)")
    return {s: a.astype(np.uint8, copy=False) for s, a in arrays.items()}
