"""Your own data's files, by kind: a table of readers (``READERS``), tried in order; the first
whose ``matches(path)`` is true reads the file. Nothing here knows the likelihood: a reader
returns the arrays as the file holds them (``FileData``), and ``fastvae.data.own`` checks and
converts them for the likelihood.

Kinds read today:

* ``npy``: one array ``(N, ...)``.
* ``npz``: one array, or arrays named ``train`` and ``test`` (and ``valid``).
* ``sparse``: a SciPy sparse matrix saved as ``.npz`` (``fastvae.data.matrices``), made dense.
* ``h5ad``: an AnnData file's counts (``fastvae.data.matrices``; needs anndata), made dense.
* ``images``: a folder of PNG/JPEG files (``fastvae.data.images``; needs pillow).

An array's examples are ``(N, D)`` vectors, ``(N, H, W)`` greyscale images (read as
``(N, 1, H, W)``) or ``(N, C, H, W)`` images; ``(N, H, W, C)`` (channels last) is refused with
the transpose that fixes it. dtypes are kept as in the file.

Adding a kind of file is one ``Reader`` in ``READERS``, placed before any more general reader
that would also match it (``sparse`` before ``npz``); its ``read(path, **options)`` returns a
``FileData``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import images, matrices
from ._common import SPLITS


@dataclass
class FileData:
    """What a reader found: ``splits`` maps split names (``train``, and ``valid``/``test`` when
    the file has them) to NumPy arrays ``(N, ...)`` of the file's dtype; a missing ``valid`` or
    ``test`` is held out of ``train`` later. ``eight_bit``: the uint8 values are 8-bit levels
    k/255 whatever the likelihood (an image's pixels), rather than what the likelihood reads
    uint8 as (an array's values)."""

    splits: dict
    eight_bit: bool = False
    source: str = ""  # how to name the data in messages


@dataclass(frozen=True)
class Reader:
    """One kind of file: its name, what it is (for messages), whether it reads ``path``, how,
    and the options its ``read`` takes (``resize`` for images)."""

    kind: str
    describe: str
    matches: Callable
    read: Callable
    options: tuple = field(default=())


def _suffix(path):
    return os.path.splitext(path)[1].lower()


def examples(arr, where):
    """``arr`` as examples ``(N, ...)``: (N, H, W) becomes (N, 1, H, W); a ValueError for a
    scalar, (N,), no examples, or (N, H, W, C)."""
    if arr.ndim < 2:
        raise ValueError(f"{where}: expected an array of examples (N, ...) such as (N, D) or (N, C, H, W), "
                         f"got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{where}: holds no examples (shape {arr.shape})")
    if arr.ndim == 3:
        return arr[:, None]
    if arr.ndim == 4 and arr.shape[-1] in (1, 3, 4) and arr.shape[1] not in (1, 3, 4):
        raise ValueError(f"{where}: shape {arr.shape} looks like (N, H, W, C), channels last; fastvae takes "
                         f"(N, C, H, W): save np.moveaxis(a, -1, 1)")
    return arr


def _check_array(arr, where):
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise ValueError(f"{where}: expected a numeric array, got {getattr(arr, 'dtype', type(arr).__name__)}")
    return examples(arr, where)


def _load(path, what):
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # not NumPy's format, pickled objects, truncated
        raise ValueError(f"{path}: not a readable {what} file ({type(e).__name__}: {e})") from e


def read_npy(path):
    return FileData({"train": _check_array(_load(path, ".npy"), path)}, source=path)


def read_npz(path):
    with _load(path, ".npz") as f:
        names = list(f.files)
        if len(names) == 1:
            return FileData({"train": _check_array(f[names[0]], f"{path}[{names[0]!r}]")}, source=path)
        if "train" in names and "test" in names and set(names) <= set(SPLITS):
            return FileData({s: _check_array(f[s], f"{path}[{s!r}]") for s in names}, source=path)
    raise ValueError(f"{path} holds the arrays {', '.join(names) or 'none'}; expected one array, or arrays "
                     f"named train and test (and valid)")


def _is_file(suffix):
    return lambda path: os.path.isfile(path) and _suffix(path) == suffix


def read_sparse(path):
    return FileData({"train": _check_array(matrices.read_sparse_npz(path), path)}, source=path)


def read_h5ad(path):
    return FileData({"train": _check_array(matrices.read_h5ad(path), path)}, source=path)


READERS = (
    Reader("npy", "a .npy array (N, ...)", _is_file(".npy"), read_npy),
    Reader("sparse", "a sparse .npz matrix (scipy.sparse.save_npz)",
           lambda path: _is_file(".npz")(path) and matrices.is_sparse_npz(path), read_sparse),
    Reader("npz", "a .npz of one array, or of arrays train and test (and valid)", _is_file(".npz"), read_npz),
    Reader("h5ad", "an AnnData .h5ad (its counts layer, else X; needs anndata)", _is_file(".h5ad"), read_h5ad),
    Reader("images", f"a folder of image files ({'/'.join(images.SUFFIXES)})", os.path.isdir, images.read_folder,
           ("resize",)),
)


def reader_for(path) -> Reader:
    """The reader of ``path``: FileNotFoundError when there is nothing there, ValueError
    (naming what is read) for a kind no reader reads."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no file or folder {path}")
    for reader in READERS:
        if reader.matches(path):
            return reader
    raise ValueError(f"{path}: not a kind of data fastvae reads; it reads " + "; ".join(r.describe for r in READERS))
