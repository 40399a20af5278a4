"""fastvae.train.targets: what the model gets from the loader's uint8 batches, per data and
likelihood; uniform dequantization of 8-bit data and its bits per dimension."""

import math

import pytest
import torch

from fastvae import data
from fastvae.train.targets import dequantize, Targets


def _dataset(dynamic):
    g = torch.Generator().manual_seed(0)
    top = 256 if dynamic else 2
    split = lambda n: torch.randint(0, top, (n, 1, 2, 2), generator=g, dtype=torch.uint8)  # noqa: E731
    return data.Dataset("mnist" if dynamic else "shapes", split(50), split(20), split(20), dynamic=dynamic)


def test_binary_data_under_the_bernoulli_stays_bytes():
    ds = _dataset(False)
    t = Targets("bernoulli", ds, grey=False, seed=0)
    x = ds.train[:4]
    assert t.batch(x, 0, 0) is x and t.split(ds, "test", 1) is ds.test
    torch.testing.assert_close(t.pixel_means(ds.train), ds.train.double().mean(0))
    assert t.bits_per_dim(90.0, (1, 2, 2)) is None and not t.binarize


def test_binary_data_under_a_continuous_likelihood_is_0_1_floats():
    # a continuous likelihood reads uint8 as k/255: 0/1 bytes must not reach it as bytes
    ds = _dataset(False)
    t = Targets("gaussian", ds, grey=False, seed=0)
    got = t.batch(ds.train[:4], 0, 0)
    assert got.dtype == torch.float32 and torch.equal(got, ds.train[:4].float())
    assert torch.equal(t.split(ds, "valid", 1), ds.valid.float())


def test_mnist_without_grey_is_binarized_by_the_loader():
    ds = _dataset(True)
    t = Targets("bernoulli", ds, grey=False, seed=0)
    assert t.binarize and set(t.split(ds, "test", 3).unique().tolist()) <= {0, 1}
    torch.testing.assert_close(t.pixel_means(ds.train), ds.train.double().mean(0) / 255)


def test_grey_levels_are_dequantized_reproducibly():
    ds = _dataset(True)
    t = Targets("continuous_bernoulli", ds, grey=True, seed=5)
    assert not t.binarize  # the loader serves the grey levels
    x = ds.train[:8]
    a = t.batch(x, 3, 0)
    k = x.double()
    assert a.dtype == torch.float32 and bool(((a * 256 >= k - 1e-4) & (a * 256 < k + 1 + 1e-4)).all())
    assert torch.equal(a, t.batch(x, 3, 0))  # a pure function of (seed, step, rank): resume draws the same
    assert not torch.equal(a, t.batch(x, 4, 0)) and not torch.equal(a, t.batch(x, 3, 1))
    v = t.split(ds, "valid", 2)
    assert torch.equal(v, t.split(ds, "valid", 2)) and not torch.equal(v[:20], t.split(ds, "test", 2)[:20])
    torch.testing.assert_close(t.pixel_means(ds.train), (ds.train.double().mean(0) + 0.5) / 256)


def test_bits_per_dim():
    t = Targets("gaussian", _dataset(True), grey=True, seed=0)
    # a density of 1 on [0, 1]^D (NLL 0) is 8 bits per dimension: uniform over the 256 levels
    assert t.bits_per_dim(0.0, (1, 28, 28)) == pytest.approx(8.0)
    assert t.bits_per_dim(-784 * math.log(2), (1, 28, 28)) == pytest.approx(7.0)
    assert t.bits_per_dim(None, (1, 28, 28)) is None


def test_dequantize_covers_each_level_uniformly():
    x = torch.full((20000,), 7, dtype=torch.uint8)
    v = dequantize(x, torch.Generator().manual_seed(0)) * 256 - 7
    assert 0 <= v.min() and v.max() < 1 and abs(v.mean().item() - 0.5) < 0.01
