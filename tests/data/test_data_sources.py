"""fastvae.data.sources: the data directory, the errors that name it and the files expected, and
download (no network: urllib is replaced)."""

import io
import os
import urllib.error
import urllib.request

import numpy as np
import pytest

from fastvae import data

from data_helpers import assert_splits, ENV, no_data_dir_env, random_bits, write_bmnist_amat, write_bmnist_npz  # noqa: F401 (autouse fixture)

# ------------------------------------------------------------------------------------------
# directories and errors
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["binarized-mnist", "mnist"])
def test_no_directory_setting(name):
    with pytest.raises(FileNotFoundError) as err:
        data.load_dataset(name)
    msg = str(err.value)
    assert "--data-dir" in msg and ENV in msg and "download" in msg


@pytest.mark.parametrize("name, files", [
    ("binarized-mnist", ["binarized_mnist.npz", "binarized_mnist_train.amat", "binarized_mnist_valid.amat",
                         "binarized_mnist_test.amat"]),
    ("mnist", ["train-images-idx3-ubyte", "t10k-images-idx3-ubyte"]),
])
def test_missing_files_message(tmp_path, monkeypatch, name, files):
    monkeypatch.setenv(ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        data.load_dataset(name)
    msg = str(err.value)
    assert str(tmp_path) in msg and ENV in msg
    assert all(f in msg for f in files), msg
    assert f'fastvae.data.download({name!r}, {str(tmp_path)!r})' in msg
    assert "python -m fastvae.train" in msg and "--download" in msg


def test_missing_some_amat_files(tmp_path):
    write_bmnist_amat(tmp_path)
    os.remove(tmp_path / "binarized_mnist_valid.amat")
    with pytest.raises(FileNotFoundError, match="no binarized_mnist.npz and no binarized_mnist_valid.amat"):
        data.load_dataset("binarized-mnist", tmp_path)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_dataset("binarized-mnist", tmp_path / "nope")


def test_argument_wins_over_environment(tmp_path, monkeypatch):
    (tmp_path / "env").mkdir()
    (tmp_path / "arg").mkdir()
    write_bmnist_npz(tmp_path / "env", seed=5)
    arg = write_bmnist_npz(tmp_path / "arg", seed=6)
    monkeypatch.setenv(ENV, str(tmp_path / "env"))
    assert_splits(data.load_dataset("binarized-mnist", tmp_path / "arg"), arg)
    env = write_bmnist_npz(tmp_path / "env", seed=5)
    assert_splits(data.load_dataset("binarized-mnist"), env)


# ------------------------------------------------------------------------------------------
# download (no network: urllib is replaced)
# ------------------------------------------------------------------------------------------

def test_download_without_network(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    for name, url in [("binarized-mnist", data.BMNIST_URL + "binarized_mnist_train.amat"),
                      ("mnist", data.MNIST_URL + "train-images-idx3-ubyte.gz")]:
        with pytest.raises(RuntimeError) as err:
            data.download(name, tmp_path / "d")
        msg = str(err.value)
        assert url in msg and str(tmp_path / "d") in msg and "name resolution" in msg, msg
    assert os.listdir(tmp_path / "d") == []  # no partial file left behind
    with pytest.raises(RuntimeError, match="could not download"):
        data.load_dataset("binarized-mnist", tmp_path / "d", download=True)


def test_download_fetches_missing_files_atomically(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    arrays = {s: random_bits(rng, 2 + k) for k, s in enumerate(data.SPLITS)}
    served = {data.BMNIST_URL + f"binarized_mnist_{s}.amat":
              ("\n".join(" ".join(map(str, r)) for r in a) + "\n").encode() for s, a in arrays.items()}
    fetched = []

    def fake(url, timeout=None):
        fetched.append(url)
        # the real name appears only once the file is complete
        assert not (tmp_path / os.path.basename(url)).exists()
        return io.BytesIO(served[url])

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    monkeypatch.setenv(ENV, str(tmp_path))
    ds = data.load_dataset("binarized-mnist", download=True)
    assert_splits(ds, arrays)
    assert sorted(fetched) == sorted(served)
    assert sorted(os.listdir(tmp_path)) == sorted(f"binarized_mnist_{s}.amat" for s in data.SPLITS)
    fetched.clear()
    assert data.download("binarized-mnist") == str(tmp_path)
    assert fetched == []  # present files are not fetched again
    with pytest.raises(ValueError, match="nothing to download"):
        data.download("shapes", tmp_path)
