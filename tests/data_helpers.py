"""Shared by the tests of fastvae.data: data files written on the fly, checks of loaded splits
and of binarized samples, and the fixture that keeps $FASTVAE_DATA_DIR out of the tests."""

import gzip
import os

import numpy as np
import pytest
import torch

from fastvae import data

ENV = "FASTVAE_DATA_DIR"


@pytest.fixture(autouse=True)
def no_data_dir_env(monkeypatch):
    """Autouse in every test module that imports it; returns the value the shell had."""
    # a data directory set in the caller's shell must not leak into these tests
    real = os.environ.get(ENV)
    monkeypatch.delenv(ENV, raising=False)
    return real


def write_amat(path, rows, sep=" ", newline="\n", trailing=True):
    text = newline.join(sep.join(str(v) for v in r) for r in rows)
    path.write_text(text + (newline if trailing else ""))
    return path


def write_idx(path, images, magic=0x00000803, gz=False):
    images = np.asarray(images, dtype=np.uint8)
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in images.shape) + images.tobytes()
    path.write_bytes(gzip.compress(raw, compresslevel=1) if gz else raw)
    return path


def random_bits(rng, n, d=784):
    return (rng.random((n, d)) < 0.3).astype(np.uint8)


def write_bmnist_amat(directory, seed=0, sizes=(5, 3, 4)):
    rng = np.random.default_rng(seed)
    arrays = {s: random_bits(rng, n) for s, n in zip(data.SPLITS, sizes)}
    for s, a in arrays.items():
        write_amat(directory / f"binarized_mnist_{s}.amat", a)
    return arrays


def write_bmnist_npz(directory, seed=1, sizes=(6, 2, 3)):
    rng = np.random.default_rng(seed)
    arrays = {s: random_bits(rng, n) for s, n in zip(data.SPLITS, sizes)}
    np.savez(directory / "binarized_mnist.npz", **arrays)
    return arrays


def assert_splits(ds, arrays):
    for s in data.SPLITS:
        got = getattr(ds, s)
        assert got.dtype == torch.uint8 and got.shape == (arrays[s].shape[0], 1, 28, 28), s
        np.testing.assert_array_equal(got.reshape(got.shape[0], 784).numpy(), arrays[s], err_msg=s)


def grey_levels(n=4000, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 1, 4, 4), dtype=np.uint8))


def assert_mean_follows_grey(bits, grey):
    """The mean of Bernoulli(grey/255) samples is within 5 standard deviations of its expectation."""
    p = grey.double() / 255
    sigma = (p * (1 - p)).sum().sqrt().item() / p.numel()
    assert abs(bits.double().mean().item() - p.mean().item()) < 5 * sigma
