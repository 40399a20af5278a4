"""fastvae.data.datasets: load_dataset on binarized MNIST (.amat, .npz) and MNIST (IDX) files,
its argument checks, Dataset, and the real binarized MNIST when $FASTVAE_DATA_DIR has it."""

import os

import numpy as np
import pytest
import torch

from fastvae import data

from data_helpers import (  # noqa: F401 (autouse fixture)
    assert_mean_follows_grey,
    assert_splits,
    ENV,
    grey_levels,
    no_data_dir_env,
    write_bmnist_amat,
    write_bmnist_npz,
    write_idx,
)

# ------------------------------------------------------------------------------------------
# load_dataset: binarized MNIST and MNIST files, argument checks
# ------------------------------------------------------------------------------------------

def test_load_binarized_mnist_from_amat(tmp_path):
    arrays = write_bmnist_amat(tmp_path)
    ds = data.load_dataset("binarized-mnist", str(tmp_path))
    assert_splits(ds, arrays)
    assert ds.dynamic is False and ds.shape == (1, 28, 28) and ds.name == "binarized-mnist"


def test_npz_wins_over_amat(tmp_path):
    write_bmnist_amat(tmp_path)
    arrays = write_bmnist_npz(tmp_path)
    assert_splits(data.load_dataset("binarized-mnist", tmp_path), arrays)


def test_bad_npz(tmp_path):
    np.savez(tmp_path / "binarized_mnist.npz", train=np.zeros((2, 784), np.uint8), valid=np.zeros((2, 784), np.uint8))
    with pytest.raises(ValueError, match="no array named test"):
        data.load_dataset("binarized-mnist", tmp_path)
    np.savez(tmp_path / "binarized_mnist.npz", train=np.full((2, 784), 2, np.uint8),
             valid=np.zeros((2, 784), np.uint8), test=np.zeros((2, 784), np.uint8))
    with pytest.raises(ValueError, match="'train' must hold only 0 and 1"):
        data.load_dataset("binarized-mnist", tmp_path)
    np.savez(tmp_path / "binarized_mnist.npz", train=np.zeros((2, 783), np.uint8),
             valid=np.zeros((2, 784), np.uint8), test=np.zeros((2, 784), np.uint8))
    with pytest.raises(ValueError, match="784 = 28x28"):
        data.load_dataset("binarized-mnist", tmp_path)


def test_num_truncates_and_checks(tmp_path):
    arrays = write_bmnist_npz(tmp_path)
    ds = data.load_dataset("binarized-mnist", tmp_path, num_train=4, num_valid=1, num_test=0)
    assert_splits(ds, {"train": arrays["train"][:4], "valid": arrays["valid"][:1], "test": arrays["test"][:0]})
    with pytest.raises(ValueError, match=r"num_valid=3 is larger than the valid split \(2 images\)"):
        data.load_dataset("binarized-mnist", tmp_path, num_valid=3)
    with pytest.raises(ValueError, match="num_train must be >= 0"):
        data.load_dataset("binarized-mnist", tmp_path, num_train=-1)


def test_load_mnist_idx(tmp_path):
    rng = np.random.default_rng(3)
    n_train = data.MNIST_VALID + 4
    train = np.zeros((n_train, 28, 28), np.uint8)
    train[:, 10:12, 10:14] = rng.integers(0, 256, (n_train, 2, 4))
    test = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train, gz=True)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", test)
    ds = data.load_dataset("mnist", tmp_path, num_valid=6)
    assert ds.dynamic is True and ds.shape == (1, 28, 28)
    np.testing.assert_array_equal(ds.train[:, 0].numpy(), train[:4])
    np.testing.assert_array_equal(ds.valid[:, 0].numpy(), train[4:10])  # first 6 of the last 10000
    np.testing.assert_array_equal(ds.test[:, 0].numpy(), test)
    # too few training images for the standard valid split
    write_idx(tmp_path / "train-images-idx3-ubyte", train[:20])  # the plain file is preferred
    with pytest.raises(ValueError, match="holds 20 images"):
        data.load_dataset("mnist", tmp_path)


def test_mnist_wrong_image_size(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 27, 28), np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="MNIST images are 28x28, got 27x28"):
        data.load_dataset("mnist", tmp_path)


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="shapes, binarized-mnist, mnist"):
        data.load_dataset("cifar")
    with pytest.raises(ValueError, match="image_size must be 28 for mnist"):
        data.load_dataset("mnist", tmp_path, image_size=64)
    with pytest.raises(ValueError, match="channels must be 1 for binarized-mnist"):
        data.load_dataset("binarized-mnist", tmp_path, channels=3)
    with pytest.raises(ValueError, match=r"image_size must be one of \(28, 64\)"):
        data.load_dataset("shapes", image_size=32)
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        data.make_shapes(2, channels=2)
    with pytest.raises(TypeError, match="seed must be an int"):
        data.make_shapes(2, seed=1.5)


# ------------------------------------------------------------------------------------------
# Dataset
# ------------------------------------------------------------------------------------------

def test_dataset_to_and_binarized(device):
    static = data.Dataset("s", torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.ones(2, 1, 2, 2, dtype=torch.uint8),
                          torch.zeros(1, 1, 2, 2, dtype=torch.uint8), dynamic=False).to(device)
    assert static.valid.device.type == device.type and static.valid.dtype == torch.uint8
    assert static.binarized("valid", 0) is static.valid
    with pytest.raises(ValueError, match="split must be one of"):
        static.binarized("dev", 0)
    grey = grey_levels()
    dyn = data.Dataset("d", grey, grey[:100], grey[:2000], dynamic=True).to(device)
    a, b = dyn.binarized("test", 1), dyn.binarized("test", 1)
    assert a.dtype == torch.uint8 and set(a.unique().tolist()) == {0, 1}
    assert torch.equal(a, b) and not torch.equal(a, dyn.binarized("test", 2))
    assert not torch.equal(a[:100], dyn.binarized("valid", 1))  # the splits do not share noise
    # P(1) = grey / 255: 0 is never 1, 255 always
    t = dyn.test
    assert not a[t == 0].any() and a[t == 255].all()
    assert_mean_follows_grey(a, t)


# ------------------------------------------------------------------------------------------
# the real data set
# ------------------------------------------------------------------------------------------

def test_real_binarized_mnist(no_data_dir_env, monkeypatch):  # noqa: F811 (the fixture)
    directory = no_data_dir_env
    if not directory or not os.path.isfile(os.path.join(directory, "binarized_mnist.npz")):
        pytest.skip(f"set {ENV} to a directory holding binarized_mnist.npz to test the real data "
                    f"(now {directory!r})")
    monkeypatch.setenv(ENV, directory)
    ds = data.load_dataset("binarized-mnist")
    assert [tuple(getattr(ds, s).shape) for s in data.SPLITS] == [(50000, 1, 28, 28), (10000, 1, 28, 28),
                                                                    (10000, 1, 28, 28)]
    for s in data.SPLITS:
        x = getattr(ds, s)
        assert x.dtype == torch.uint8 and x.min() == 0 and x.max() == 1, s
    assert abs(ds.train.float().mean().item() - 0.1306) < 1e-3


def test_static_data_must_be_binary():
    """Raw grey levels (MNIST's bytes, 0..255) as static data would train against a 0/1
    likelihood at thousands of nats: refused when the Dataset is made."""
    zeros, grey = torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 255], dtype=torch.uint8)
    raw = grey.repeat(6).reshape(3, 1, 2, 2)
    with pytest.raises(ValueError, match="the test split holds values up to 255.*dynamic=True"):
        data.Dataset("raw", zeros, zeros, raw, dynamic=False)
    data.Dataset("raw", raw, raw, raw, dynamic=True)  # grey levels, binarized per batch: fine
    with pytest.raises(TypeError, match="the train split must be a uint8 tensor, got dtype torch.float32"):
        data.Dataset("f", zeros.float(), zeros, zeros, dynamic=False)
