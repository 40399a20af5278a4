"""Your own data as a ``Dataset``: ``load_files(path, likelihood)`` reads a file or folder
(``fastvae.data.readers``), holds out the splits it lacks, and checks and converts every split
for the likelihood, asking its registry record (``fastvae.likelihoods``) what it reads:

* uint8 arrays: what the likelihood reads uint8 as (``spec.uint8``): 0/1 for a likelihood of
  binary data (a larger value is refused), 8-bit levels k/255 for the others (an array of only
  0 and 1 is refused there: it would be read as 0 and 1/255);
* image files: 8-bit levels k/255 for the likelihoods that read them so; for a likelihood of
  binary data only black-and-white images (0 and 255), read as 0/1;
* bool arrays: 0/1 (uint8 for a likelihood of binary data, float32 for the others);
* float arrays: float32, finite, and in [0, 1] for a likelihood whose support is the unit
  interval (``spec.support``);
* counts, for a count likelihood (``spec.counts``): a (cells, genes) matrix of non-negative
  whole numbers, any integer or float dtype (``counts.fit_counts``), held in the smallest integer
  dtype that holds its largest count;
* any other dtype is refused.

Held-out splits: a file of one array gives ``train`` only; each missing split (``valid``,
``test``) takes ``held_out`` of the examples (at least one), drawn at random with a fixed seed,
so the split depends on the file only; each split keeps the file's order.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .. import likelihoods
from ._common import SPLITS
from .counts import fit_counts
from .datasets import Dataset
from .readers import reader_for

HELD_OUT = 0.1  # of the examples, for each missing split
_SPLIT_SEED = 0x5EED


def _names(keep):
    return " or ".join(r.name for r in likelihoods.records() if keep(r))


def _binary_spec(spec):
    return spec.uint8 == likelihoods.BINARY


def _fit_uint8(a, spec, eight_bit, where):
    top = int(a.max())
    if eight_bit and _binary_spec(spec):
        if not np.isin(a, (0, 255)).all():
            raise ValueError(f"{where}: images of grey levels, which the {spec.title} likelihood (0/1 data) cannot "
                             f"model: use the {_names(lambda r: not _binary_spec(r))} likelihood, or black-and-white "
                             f"images (0 and 255 only)")
        return (a // 255).astype(np.uint8)
    if eight_bit:
        return a
    if _binary_spec(spec) and top > 1:
        raise ValueError(f"{where}: uint8 values up to {top}, but the {spec.title} likelihood reads uint8 as 0/1: for "
                         f"8-bit levels use the {_names(lambda r: not _binary_spec(r))} likelihood (uint8 read as "
                         f"k/255), or binarize the data")
    if not _binary_spec(spec) and top <= 1:
        raise ValueError(f"{where}: uint8 holding only 0 and 1, which the {spec.title} likelihood reads as "
                         f"{spec.uint8} (its two lowest levels, not black and white): save binary data as float "
                         f"(0.0 and 1.0), or use the {_names(_binary_spec)} likelihood")
    return a


def _fit_float(a, spec, where):
    a = a.astype(np.float32, copy=False)
    lo, hi = float(a.min()), float(a.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{where}: holds NaN or infinite values")
    if spec.support == likelihoods.UNIT_INTERVAL and (lo < 0 or hi > 1):
        raise ValueError(f"{where}: float values from {lo:g} to {hi:g}, but the {spec.title} likelihood takes values "
                         f"in [0, 1]: rescale them (8-bit levels: divide by 255), or use the "
                         f"{_names(lambda r: r.support != likelihoods.UNIT_INTERVAL)} likelihood")
    return a


def fit(a, spec, eight_bit, where):
    """The array ``a`` as the likelihood of record ``spec`` reads it (see the module docstring):
    uint8 or float32, counts in an integer dtype; a ValueError saying what does not fit and what
    would."""
    if spec.counts:
        if eight_bit:
            raise ValueError(f"{where}: images, which the {spec.title} likelihood (counts) does not model")
        return fit_counts(a, where)
    if a.dtype == np.bool_:
        return a.astype(np.uint8 if _binary_spec(spec) else np.float32)
    if a.dtype == np.uint8:
        return _fit_uint8(a, spec, eight_bit, where)
    if a.dtype.kind == "f":
        return _fit_float(a, spec, where)
    counts = f" (integer counts: use the {_names(lambda r: r.counts)} likelihood)" if a.dtype.kind in "iu" else ""
    raise ValueError(f"{where}: dtype {a.dtype}; fastvae reads uint8, bool or float arrays (convert it, e.g. "
                     f"a.astype(np.float32)){counts}")


def _check_fraction(held_out):
    if isinstance(held_out, bool) or not isinstance(held_out, (int, float)) or not 0 < held_out < 0.5:
        raise ValueError(f"held_out must be a fraction in (0, 0.5), got {held_out!r}")
    return float(held_out)


def hold_out(splits, held_out, where):
    """``splits`` with each missing ``valid``/``test`` made of ``held_out`` of ``train``'s
    examples (at least one; a fixed random draw), ``train`` keeping the rest; file order kept."""
    missing = [s for s in ("valid", "test") if s not in splits]
    if not missing:
        return dict(splits)
    train = splits["train"]
    n = train.shape[0]
    k = max(1, round(held_out * n))
    if n - k * len(missing) < 1:
        raise ValueError(f"{where}: {n} examples are too few to hold out {k} for each of {' and '.join(missing)}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(_SPLIT_SEED)).numpy()
    out = dict(splits)
    for i, s in enumerate(missing):
        out[s] = train[np.sort(perm[i * k:(i + 1) * k])]
    out["train"] = train[np.sort(perm[k * len(missing):])]
    return out


def load_files(path, likelihood=likelihoods.DEFAULT, *, held_out: float = HELD_OUT, resize=None) -> Dataset:
    """Your data at ``path`` (a ``.npy``, a ``.npz`` or a folder of images; see
    ``fastvae.data.readers``) as a ``Dataset`` of CPU tensors, each split uint8 or float32 as
    the ``likelihood`` (a name or registry record) reads it (``binary=False``: the values as they
    are). ``held_out``: the fraction of the examples held out for each split the file lacks;
    ``resize``: ``(H, W)`` for a folder of images. A FileNotFoundError when nothing is at
    ``path``, a ValueError for anything fastvae cannot use, naming it."""
    spec = likelihoods.get(likelihood)
    held_out = _check_fraction(held_out)
    path = os.fspath(path)
    reader = reader_for(path)
    options = {"resize": resize} if resize is not None else {}
    unknown = [k for k in options if k not in reader.options]
    if unknown:
        raise ValueError(f"{path}: {', '.join(unknown)} is for a folder of images, not {reader.describe}")
    found = reader.read(path, **options)
    shapes = {s: a.shape[1:] for s, a in found.splits.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"{path}: the splits' examples differ in shape: "
                         + ", ".join(f"{s} {tuple(v)}" for s, v in shapes.items()))
    splits = hold_out(found.splits, held_out, path)
    tensors = {s: torch.from_numpy(np.ascontiguousarray(fit(splits[s], spec, found.eight_bit,
                                                            f"{path} ({s} split)")))
               for s in SPLITS}
    return Dataset(path, tensors["train"], tensors["valid"], tensors["test"], dynamic=False, binary=False)
