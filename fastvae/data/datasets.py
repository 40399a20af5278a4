"""The data sets as tensors: ``Dataset`` (three splits) and ``load_dataset``, which generates
"shapes" and "synthetic-counts" or reads the MNIST files found by ``sources`` (your own files:
``own.load_files``)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from .._checks import check_int
from ._common import check_name, SPLITS
from ._random import binarize, seed_for, seeded_generator
from .counts import load_counts
from .formats import read_amat, read_binary_npz, read_idx_images
from .shapes import make_shapes_splits
from .sources import BMNIST_AMAT, BMNIST_NPZ, missing_files_error, MNIST_FILES, resolve_dir
from .sources import download as download_files  # load_dataset's `download` argument hides the name

MNIST_VALID = 10000  # the last 10000 of the 60000 training images


@dataclass
class Dataset:
    """Three splits of shape (N, ...), e.g. (N, C, H, W) images. The built-in data sets
    (``binary=True``) are uint8: static data (``dynamic=False``) holds 0/1; dynamic data holds
    grey levels 0..255, binarized per batch by ``DeviceLoader(dynamic=True)`` and, for
    evaluation, once and for all by ``binarized(split, seed)``. Your own data
    (``fastvae.data.load_files``, ``binary=False``) holds the values as its likelihood reads
    them, uint8 or float32 (counts: the smallest integer dtype that holds them), checked against
    that likelihood when it was loaded.

    Checked once, when made: the splits are tensors of one example shape; for binary data, uint8
    tensors and, static, holding only 0 and 1 (raw grey levels such as MNIST's 0/255 bytes would
    otherwise train silently against a likelihood that takes 0/1, at thousands of nats)."""

    name: str
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    dynamic: bool
    binary: bool = True

    def __post_init__(self):
        if self.dynamic and not self.binary:
            raise ValueError(f"{self.name}: dynamic data (grey levels binarized per batch) is binary data")
        for split in SPLITS:
            _check_split(self.name, split, getattr(self, split), self.dynamic, self.binary)
        shapes = {tuple(getattr(self, s).shape[1:]) for s in SPLITS}
        if len(shapes) > 1:
            raise ValueError(f"{self.name}: the splits' examples differ in shape: {sorted(shapes)}")

    @property
    def shape(self) -> tuple:
        """(C, H, W) of one image."""
        return tuple(self.train.shape[1:])

    def to(self, device) -> "Dataset":
        """A copy with every split on ``device`` (dtypes kept: uint8 stays uint8)."""
        return dataclasses.replace(self, **{s: getattr(self, s).to(device) for s in SPLITS})

    def split(self, split: str) -> torch.Tensor:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return getattr(self, split)

    def binarized(self, split: str, seed: int) -> torch.Tensor:
        """A fixed binarization (uint8 0/1, on the split's device) of ``split``, a pure function
        of ``(seed, split)``: the evaluation set for dynamic data. Static data is returned as is."""
        data = self.split(split)
        seed = check_int("seed", seed)
        if not self.dynamic:
            return data
        return binarize(data, seeded_generator(data.device, seed_for(seed, SPLITS.index(split), 0xB1)))


def _check_split(name, split, x, dynamic, binary=True):
    if not isinstance(x, torch.Tensor) or (binary and x.dtype != torch.uint8):
        what = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name}: the {split} split must be a {'uint8 ' if binary else ''}tensor, got {what}")
    if not binary:
        return
    top = int(x.max()) if not dynamic and x.numel() else 0  # one reduction, when the data is made
    if top > 1:
        raise ValueError(f"{name}: the {split} split holds values up to {top}, but static data (dynamic=False) "
                         f"must hold only 0 and 1. For grey levels 0..255 (e.g. raw MNIST bytes) pass "
                         f"dynamic=True to binarize them anew every batch, or binarize them first")


def _truncate(name, arr, n, arg):
    if n is None:
        return arr
    n = check_int(arg, n, 0)
    if n > arr.shape[0]:
        raise ValueError(f"{arg}={n} is larger than the {name} split ({arr.shape[0]} images)")
    return arr[:n]


def _as_images(arr, path):
    if arr.ndim < 2 or int(np.prod(arr.shape[1:])) != 784:
        raise ValueError(f"{path}: expected images of 784 = 28x28 pixels, got array shape {arr.shape}")
    return arr.reshape(arr.shape[0], 1, 28, 28)


def _load_binarized_mnist(directory, source):
    npz = os.path.join(directory, BMNIST_NPZ)
    if os.path.isfile(npz):
        arrays = read_binary_npz(npz, SPLITS)
        return {s: _as_images(a, f"{npz}[{s!r}]") for s, a in arrays.items()}
    paths = {s: os.path.join(directory, f) for s, f in BMNIST_AMAT.items()}
    absent = [os.path.basename(p) for p in paths.values() if not os.path.isfile(p)]
    if absent:
        raise missing_files_error("binarized-mnist", directory, source,
                                  f"no {BMNIST_NPZ} and no {', '.join(absent)}")
    return {s: _as_images(read_amat(p), p) for s, p in paths.items()}


def _load_mnist(directory, source):
    arrays = {}
    for split, fname in MNIST_FILES.items():
        for candidate in (fname, fname + ".gz"):
            path = os.path.join(directory, candidate)
            if os.path.isfile(path):
                break
        else:
            raise missing_files_error("mnist", directory, source, f"no {fname} or {fname}.gz")
        images = read_idx_images(path)
        if images.shape[1:] != (28, 28):
            raise ValueError(f"{path}: MNIST images are 28x28, got {images.shape[1]}x{images.shape[2]}")
        arrays[split] = images
    train = arrays["train"]
    if train.shape[0] <= MNIST_VALID:
        raise ValueError(f"{MNIST_FILES['train']} holds {train.shape[0]} images; the valid split is the "
                         f"last {MNIST_VALID}, so it needs more than that (MNIST has 60000)")
    out = {"train": train[:-MNIST_VALID], "valid": train[-MNIST_VALID:], "test": arrays["test"]}
    return {s: a[:, None] for s, a in out.items()}


def load_dataset(name: str, data_dir: Optional[str] = None, *, seed: int = 0, image_size: int = 28,
                 channels: int = 1, download: bool = False,
                 num_train: Optional[int] = None, num_valid: Optional[int] = None,
                 num_test: Optional[int] = None, genes: Optional[int] = None) -> Dataset:
    """Load (or, for "shapes", generate) a data set as CPU uint8 tensors (N, C, H, W);
    ``.to(device)`` the result to train from device memory.

    shapes: ``image_size`` 28 or 64, ``channels`` 1 or 3, ``num_*`` the split sizes (default
    50000/10000/10000); each split is generated from its own stream of ``seed``
    (``SeedSequence(seed, spawn_key=(split index,))``), so the splits are disjoint draws.
    ``data_dir`` and ``download`` are ignored.

    synthetic-counts: a generated single-cell count matrix (``fastvae.data.counts``: cell types,
    two batches, over-dispersed counts, about 70% zeros), (N, ``genes``) integer counts (default
    2000 genes, 8000/1000/1000 cells), from ``seed``; ``image_size`` and ``channels`` are ignored.

    binarized-mnist, mnist: files from ``data_dir`` or ``$FASTVAE_DATA_DIR`` (the argument wins);
    ``download=True`` fetches missing files first. ``image_size`` must be 28 and ``channels`` 1;
    ``num_*`` keep the first n images of a split; ``seed`` is unused (the splits are fixed).
    """
    check_name(name)
    seed = check_int("seed", seed, 0)
    nums = {"train": num_train, "valid": num_valid, "test": num_test}
    if name == "synthetic-counts":
        return load_counts(seed, genes, num_train, num_valid, num_test)
    if genes is not None:
        raise ValueError(f"genes is for synthetic-counts, not {name}")
    if name == "shapes":
        splits = {s: torch.from_numpy(a) for s, a in make_shapes_splits(seed, image_size, channels, nums).items()}
        return Dataset(name, splits["train"], splits["valid"], splits["test"], dynamic=False)

    check_int("image_size", image_size)
    check_int("channels", channels)
    if image_size != 28:
        raise ValueError(f"image_size must be 28 for {name} (MNIST images are 28x28), got {image_size}")
    if channels != 1:
        raise ValueError(f"channels must be 1 for {name} (MNIST is grey-level), got {channels}")
    directory, source = resolve_dir(name, data_dir)
    if download:
        download_files(name, directory)
    elif not os.path.isdir(directory):
        raise missing_files_error(name, directory, source, "that is a file, not a directory"
                                  if os.path.exists(directory) else "the directory does not exist")
    loader = _load_binarized_mnist if name == "binarized-mnist" else _load_mnist
    arrays = loader(directory, source)
    splits = {s: torch.from_numpy(np.ascontiguousarray(_truncate(s, arrays[s], nums[s], f"num_{s}")))
              for s in SPLITS}
    return Dataset(name, splits["train"], splits["valid"], splits["test"], dynamic=(name == "mnist"))
