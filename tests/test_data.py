"""fastvae.data: file readers, the generated shapes, the device loader, errors and download."""

import gzip
import io
import math
import os
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from fastvae import data
from fastvae.data import formats, shapes

ENV = "FASTVAE_DATA_DIR"


@pytest.fixture(autouse=True)
def _no_data_dir_env(monkeypatch):
    # a data directory set in the caller's shell must not leak into these tests
    real = os.environ.get(ENV)
    monkeypatch.delenv(ENV, raising=False)
    return real


def _write_amat(path, rows, sep=" ", newline="\n", trailing=True):
    text = newline.join(sep.join(str(v) for v in r) for r in rows)
    path.write_text(text + (newline if trailing else ""))
    return path


def _write_idx(path, images, magic=0x00000803, gz=False):
    images = np.asarray(images, dtype=np.uint8)
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in images.shape) + images.tobytes()
    path.write_bytes(gzip.compress(raw, compresslevel=1) if gz else raw)
    return path


def _bits(rng, n, d=784):
    return (rng.random((n, d)) < 0.3).astype(np.uint8)


def _bmnist_amat(directory, seed=0, sizes=(5, 3, 4)):
    rng = np.random.default_rng(seed)
    arrays = {s: _bits(rng, n) for s, n in zip(data.SPLITS, sizes)}
    for s, a in arrays.items():
        _write_amat(directory / f"binarized_mnist_{s}.amat", a)
    return arrays


def _bmnist_npz(directory, seed=1, sizes=(6, 2, 3)):
    rng = np.random.default_rng(seed)
    arrays = {s: _bits(rng, n) for s, n in zip(data.SPLITS, sizes)}
    np.savez(directory / "binarized_mnist.npz", **arrays)
    return arrays


def _assert_splits(ds, arrays):
    for s in data.SPLITS:
        got = getattr(ds, s)
        assert got.dtype == torch.uint8 and got.shape == (arrays[s].shape[0], 1, 28, 28), s
        np.testing.assert_array_equal(got.reshape(got.shape[0], 784).numpy(), arrays[s], err_msg=s)


# ------------------------------------------------------------------------------------------
# .amat / .npz / IDX
# ------------------------------------------------------------------------------------------

def test_read_amat_plain_crlf_and_gz(tmp_path):
    rows = _bits(np.random.default_rng(0), 7)
    np.testing.assert_array_equal(data.read_amat(_write_amat(tmp_path / "a.amat", rows)), rows)
    # Windows line ends, no final newline, a blank line in the middle, tabs
    crlf = _write_amat(tmp_path / "b.amat", list(rows[:3]) + [[]] + list(rows[3:]), sep="\t",
                       newline="\r\n", trailing=False)
    np.testing.assert_array_equal(data.read_amat(crlf), rows)
    gz = tmp_path / "c.amat.gz"
    gz.write_bytes(gzip.compress((tmp_path / "a.amat").read_bytes()))
    np.testing.assert_array_equal(data.read_amat(gz), rows)
    # a number spelt "1.0" is still a 1 (the line-by-line path)
    one_point_zero = (tmp_path / "a.amat").read_text().replace("1", "1.0", 1)
    (tmp_path / "d.amat").write_text(one_point_zero)
    np.testing.assert_array_equal(data.read_amat(tmp_path / "d.amat"), rows)


def test_read_amat_chunks_on_line_boundaries(tmp_path):
    # many small chunks: every chunk boundary must fall between lines
    rows = _bits(np.random.default_rng(1), 40, d=50)
    path = _write_amat(tmp_path / "a.amat", rows)
    raw = path.read_bytes()
    for chunk in (7, 100, 333, len(raw)):
        np.testing.assert_array_equal(formats._amat_fast(raw, 50, chunk_bytes=chunk), rows)


@pytest.mark.parametrize("bad_line, message", [
    ("0 1 " * 391 + "0", "expected 784 values, got 783"),
    ("0 1 " * 392 + "1", "expected 784 values, got 785"),
    ("0 " * 783 + "2", "value 784 is '2'"),
    ("0 " * 100 + "x " + "0 " * 683, "'x' is not a number"),
    ("0 " * 100 + "11 " + "0 " * 683, "value 101 is '11'"),
])
def test_read_amat_bad_line(tmp_path, bad_line, message):
    good = " ".join(["0", "1"] * 392)
    path = tmp_path / "bad.amat"
    path.write_text("\n".join([good, good, bad_line, good]) + "\n")
    with pytest.raises(ValueError) as err:
        data.read_amat(path)
    assert str(path) in str(err.value) and "line 3" in str(err.value) and message in str(err.value)
    path.write_text("\n".join([good] * 4) + "\n")  # the control: the same file, well formed
    assert data.read_amat(path).shape == (4, 784)


def test_read_amat_empty(tmp_path):
    (tmp_path / "e.amat").write_text("\n\n")
    with pytest.raises(ValueError, match="no images"):
        data.read_amat(tmp_path / "e.amat")


def test_load_binarized_mnist_from_amat(tmp_path):
    arrays = _bmnist_amat(tmp_path)
    ds = data.load_dataset("binarized-mnist", str(tmp_path))
    _assert_splits(ds, arrays)
    assert ds.dynamic is False and ds.shape == (1, 28, 28) and ds.name == "binarized-mnist"


def test_npz_wins_over_amat(tmp_path):
    _bmnist_amat(tmp_path)
    arrays = _bmnist_npz(tmp_path)
    _assert_splits(data.load_dataset("binarized-mnist", tmp_path), arrays)


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
    arrays = _bmnist_npz(tmp_path)
    ds = data.load_dataset("binarized-mnist", tmp_path, num_train=4, num_valid=1, num_test=0)
    _assert_splits(ds, {"train": arrays["train"][:4], "valid": arrays["valid"][:1], "test": arrays["test"][:0]})
    with pytest.raises(ValueError, match=r"num_valid=3 is larger than the valid split \(2 images\)"):
        data.load_dataset("binarized-mnist", tmp_path, num_valid=3)
    with pytest.raises(ValueError, match="num_train must be >= 0"):
        data.load_dataset("binarized-mnist", tmp_path, num_train=-1)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_read_idx_images(tmp_path, gz):
    images = np.random.default_rng(2).integers(0, 256, (5, 3, 4), dtype=np.uint8)
    path = _write_idx(tmp_path / "x-idx3-ubyte", images, gz=gz)
    got = data.read_idx_images(path)
    assert got.dtype == np.uint8 and got.flags.writeable
    np.testing.assert_array_equal(got, images)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_read_idx_bad_header(tmp_path, gz):
    images = np.zeros((2, 3, 3), np.uint8)
    labels = _write_idx(tmp_path / "labels", images[:, 0, 0].reshape(2), magic=0x00000801, gz=gz)
    with pytest.raises(ValueError, match="bad IDX magic number 0x00000801.*1 dimensions"):
        data.read_idx_images(labels)
    with pytest.raises(ValueError, match="bad IDX magic number 0x12345678"):
        data.read_idx_images(_write_idx(tmp_path / "m", images, magic=0x12345678, gz=gz))
    raw = gzip.decompress(_write_idx(tmp_path / "t", images, gz=True).read_bytes())
    (tmp_path / "t").write_bytes(gzip.compress(raw[:-1]) if gz else raw[:-1])
    with pytest.raises(ValueError, match=r"2x3x3 images \(34 bytes.*holds 33 bytes"):
        data.read_idx_images(tmp_path / "t")
    (tmp_path / "s").write_bytes(raw[:10])
    with pytest.raises(ValueError, match="shorter than the 16-byte header"):
        data.read_idx_images(tmp_path / "s")


def test_load_mnist_idx(tmp_path):
    rng = np.random.default_rng(3)
    n_train = data.MNIST_VALID + 4
    train = np.zeros((n_train, 28, 28), np.uint8)
    train[:, 10:12, 10:14] = rng.integers(0, 256, (n_train, 2, 4))
    test = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", train, gz=True)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", test)
    ds = data.load_dataset("mnist", tmp_path, num_valid=6)
    assert ds.dynamic is True and ds.shape == (1, 28, 28)
    np.testing.assert_array_equal(ds.train[:, 0].numpy(), train[:4])
    np.testing.assert_array_equal(ds.valid[:, 0].numpy(), train[4:10])  # first 6 of the last 10000
    np.testing.assert_array_equal(ds.test[:, 0].numpy(), test)
    # too few training images for the standard valid split
    _write_idx(tmp_path / "train-images-idx3-ubyte", train[:20])  # the plain file is preferred
    with pytest.raises(ValueError, match="holds 20 images"):
        data.load_dataset("mnist", tmp_path)


def test_mnist_wrong_image_size(tmp_path):
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 27, 28), np.uint8))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="MNIST images are 28x28, got 27x28"):
        data.load_dataset("mnist", tmp_path)


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
    _bmnist_amat(tmp_path)
    os.remove(tmp_path / "binarized_mnist_valid.amat")
    with pytest.raises(FileNotFoundError, match="no binarized_mnist.npz and no binarized_mnist_valid.amat"):
        data.load_dataset("binarized-mnist", tmp_path)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_dataset("binarized-mnist", tmp_path / "nope")


def test_argument_wins_over_environment(tmp_path, monkeypatch):
    (tmp_path / "env").mkdir()
    (tmp_path / "arg").mkdir()
    _bmnist_npz(tmp_path / "env", seed=5)
    arg = _bmnist_npz(tmp_path / "arg", seed=6)
    monkeypatch.setenv(ENV, str(tmp_path / "env"))
    _assert_splits(data.load_dataset("binarized-mnist", tmp_path / "arg"), arg)
    env = _bmnist_npz(tmp_path / "env", seed=5)
    _assert_splits(data.load_dataset("binarized-mnist"), env)


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
    arrays = {s: _bits(rng, 2 + k) for k, s in enumerate(data.SPLITS)}
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
    _assert_splits(ds, arrays)
    assert sorted(fetched) == sorted(served)
    assert sorted(os.listdir(tmp_path)) == sorted(f"binarized_mnist_{s}.amat" for s in data.SPLITS)
    fetched.clear()
    assert data.download("binarized-mnist") == str(tmp_path)
    assert fetched == []  # present files are not fetched again
    with pytest.raises(ValueError, match="nothing to download"):
        data.download("shapes", tmp_path)


# ------------------------------------------------------------------------------------------
# shapes
# ------------------------------------------------------------------------------------------

def _reference_mask(p, i, size):
    """One image, drawn from vertices / the ellipse's quadratic form (not the half-plane test)."""
    r, t, cx, cy = p["r"][i], p["theta"][i], p["cx"][i], p["cy"][i]
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    pts = np.stack([xs - cx, ys - cy], -1)
    kind = p["kind"][i]
    if kind == data.ELLIPSE:
        a, b = r, r * p["aspect"][i]
        m = rot @ np.diag([1 / a ** 2, 1 / b ** 2]) @ rot.T
        return np.einsum("...i,ij,...j->...", pts, m, pts) <= 1
    if kind == data.SQUARE:
        local = [(r, r), (-r, r), (-r, -r), (r, -r)]
    else:  # vertices opposite the normals at 90, 210, 330 degrees
        local = [(r * math.cos(math.radians(a)), r * math.sin(math.radians(a))) for a in (270, 30, 150)]
    verts = np.array(local) @ rot.T
    signs = []
    for k in range(len(verts)):
        e = verts[(k + 1) % len(verts)] - verts[k]
        d = pts - verts[k]
        signs.append(e[0] * d[..., 1] - e[1] * d[..., 0])
    signs = np.stack(signs)
    return (signs >= 0).all(0) | (signs <= 0).all(0)


@pytest.mark.parametrize("size", [28, 64])
def test_shapes_match_a_reference_drawing(size):
    n = 45
    p = shapes._shape_params(n, size, np.random.default_rng(7))
    images = data.make_shapes(n, size, seed=7)
    assert set(np.unique(p["kind"])) == {data.SQUARE, data.ELLIPSE, data.TRIANGLE}
    for i in range(n):
        ref = _reference_mask(p, i, size)
        # pixel centres exactly on an edge may round either way
        assert (images[i, 0] != ref).sum() <= 2, (i, p["kind"][i])
    # the kinds differ: each covers a different share of its r^2 (triangle 1.3, ellipse >= 1.57, square 4)
    area = images.reshape(n, -1).sum(1) / p["r"] ** 2
    tri, ell, sq = (area[p["kind"] == k] for k in (data.TRIANGLE, data.ELLIPSE, data.SQUARE))
    assert tri.max() < ell.min() + 0.2 and np.median(ell) < np.median(sq) - 1


@pytest.mark.parametrize("size", [28, 64])
def test_shapes_properties(size):
    n = 3000 if size == 28 else 600
    x = data.make_shapes(n, size, seed=11)
    assert x.dtype == np.uint8 and x.shape == (n, 1, size, size)
    assert set(np.unique(x)) == {0, 1}
    counts = x.reshape(n, -1).sum(1)
    assert counts.min() > 0.02 * size * size and counts.max() < 0.6 * size * size  # non-empty, not full
    # positions, scales and rotations vary: no two images alike, every pixel lit by some image
    assert len({img.tobytes() for img in x}) == n
    assert x[:, 0].max(0).mean() > 0.9
    np.testing.assert_array_equal(x, data.make_shapes(n, size, seed=11))
    other = data.make_shapes(n, size, seed=12)
    assert (other != x).reshape(n, -1).any(1).mean() > 0.99


def test_shapes_three_channels():
    n = 500
    x = data.make_shapes(n, 64, seed=3, channels=3)
    assert x.shape == (n, 3, 64, 64) and x.dtype == np.uint8 and set(np.unique(x)) <= {0, 1}
    mono = data.make_shapes(n, 64, seed=3)
    np.testing.assert_array_equal(x.max(1), mono[:, 0])  # same geometry, coloured
    # each shape one colour, never black; all 7 colours occur
    lit = mono[:, 0].astype(bool)
    colours = set()
    for i in range(n):
        px = x[i][:, lit[i]]
        assert (px == px[:, :1]).all() and px[:, 0].any(), i
        colours.add(tuple(px[:, 0]))
    assert len(colours) == 7


def test_load_shapes():
    ds = data.load_dataset("shapes", seed=4, image_size=64, channels=3, num_train=50, num_valid=20, num_test=20)
    assert ds.shape == (3, 64, 64) and ds.dynamic is False
    assert [len(getattr(ds, s)) for s in data.SPLITS] == [50, 20, 20]
    flat = {s: {img.numpy().tobytes() for img in getattr(ds, s)} for s in data.SPLITS}
    assert not (flat["train"] & flat["valid"]) and not (flat["train"] & flat["test"]) and not (flat["valid"] & flat["test"])
    again = data.load_dataset("shapes", seed=4, image_size=64, channels=3, num_train=50, num_valid=20, num_test=20)
    assert all(torch.equal(getattr(ds, s), getattr(again, s)) for s in data.SPLITS)
    default = data.load_dataset("shapes")
    assert [len(getattr(default, s)) for s in data.SPLITS] == [50000, 10000, 10000]
    assert default.shape == (1, 28, 28) and default.train.dtype == torch.uint8


# ------------------------------------------------------------------------------------------
# Dataset
# ------------------------------------------------------------------------------------------

def _grey(n=4000, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 1, 4, 4), dtype=np.uint8))


def _assert_mean_follows_grey(bits, grey):
    """The mean of Bernoulli(grey/255) samples is within 5 standard deviations of its expectation."""
    p = grey.double() / 255
    sigma = (p * (1 - p)).sum().sqrt().item() / p.numel()
    assert abs(bits.double().mean().item() - p.mean().item()) < 5 * sigma


def test_dataset_to_and_binarized(device):
    static = data.Dataset("s", torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.ones(2, 1, 2, 2, dtype=torch.uint8),
                          torch.zeros(1, 1, 2, 2, dtype=torch.uint8), dynamic=False).to(device)
    assert static.valid.device.type == device.type and static.valid.dtype == torch.uint8
    assert static.binarized("valid", 0) is static.valid
    with pytest.raises(ValueError, match="split must be one of"):
        static.binarized("dev", 0)
    grey = _grey()
    dyn = data.Dataset("d", grey, grey[:100], grey[:2000], dynamic=True).to(device)
    a, b = dyn.binarized("test", 1), dyn.binarized("test", 1)
    assert a.dtype == torch.uint8 and set(a.unique().tolist()) == {0, 1}
    assert torch.equal(a, b) and not torch.equal(a, dyn.binarized("test", 2))
    assert not torch.equal(a[:100], dyn.binarized("valid", 1))  # the splits do not share noise
    # P(1) = grey / 255: 0 is never 1, 255 always
    t = dyn.test
    assert not a[t == 0].any() and a[t == 255].all()
    _assert_mean_follows_grey(a, t)


# ------------------------------------------------------------------------------------------
# DeviceLoader
# ------------------------------------------------------------------------------------------

def _ids(n, device):
    """uint8 data whose example i can be recognised: bytes of i in the first two pixels."""
    x = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    i = torch.arange(n)
    x[:, 0, 0, 0] = (i % 256).to(torch.uint8)
    x[:, 0, 0, 1] = (i // 256).to(torch.uint8)
    return x.to(device)


def _which(batch):
    return (batch[:, 0, 0, 0].long() + 256 * batch[:, 0, 0, 1].long()).tolist()


def test_loader_epoch_is_a_permutation(device):
    n, B = 1003, 64
    x = _ids(n, device)
    loader = data.DeviceLoader(x, B, seed=3, drop_last=False)
    assert len(loader) == 16
    batches = list(loader.epoch(0))
    assert len(batches) == 16 and all(b.shape == (B, 1, 2, 2) for b in batches[:-1]) and len(batches[-1]) == n - 15 * B
    assert all(b.dtype == torch.uint8 and b.device.type == device.type for b in batches)
    seen = [i for b in batches for i in _which(b)]
    assert sorted(seen) == list(range(n)) and seen != list(range(n))
    # drop_last: whole batches only, none repeated
    dl = data.DeviceLoader(x, B, seed=3)
    seen = [i for b in dl.epoch(0) for i in _which(b)]
    assert len(dl) == 15 and len(seen) == 15 * B and len(set(seen)) == len(seen)
    # no shuffle: data order
    assert _which(next(data.DeviceLoader(x, 5, shuffle=False).epoch(7))) == [0, 1, 2, 3, 4]


def test_loader_reproducible_and_epochs_differ(device):
    x = _ids(500, device)
    a = data.DeviceLoader(x, 50, seed=1)
    b = data.DeviceLoader(x, 50, seed=1)
    e0, e0b = [_which(t) for t in a.epoch(0)], [_which(t) for t in b.epoch(0)]
    assert e0 == e0b
    assert [_which(t) for t in a.epoch(0)] == e0  # the same epoch again, after other epochs
    assert [_which(t) for t in a.epoch(1)] != e0
    assert [_which(t) for t in data.DeviceLoader(x, 50, seed=2).epoch(0)] != e0


def test_loader_resume(device):
    x = _ids(700, device)
    loader = data.DeviceLoader(x, 64, seed=9)
    full = list(loader.epoch(4))
    resumed = list(data.DeviceLoader(x, 64, seed=9).epoch(4, start=5))
    assert len(resumed) == len(full) - 5
    assert all(torch.equal(p, q) for p, q in zip(full[5:], resumed))
    assert list(loader.epoch(4, start=len(loader))) == []
    with pytest.raises(ValueError, match="start=11 is past the 10 batches"):
        loader.epoch(4, start=11)


@pytest.mark.parametrize("n, world", [(1000, 4), (1003, 3)])
def test_loader_ranks_are_disjoint_and_cover(device, n, world):
    x = _ids(n, device)
    per_rank = n // world
    B = 25
    for epoch in (0, 1):
        shards = []
        for r in range(world):
            ld = data.DeviceLoader(x, B, seed=5, rank=r, world_size=world, drop_last=False)
            batches = list(ld.epoch(epoch))
            assert len(ld) == len(batches) == math.ceil(per_rank / B)
            shards.append([i for b in batches for i in _which(b)])
        assert all(len(s) == per_rank for s in shards)
        union = set().union(*map(set, shards))
        assert sum(map(len, shards)) == len(union) == per_rank * world  # disjoint, remainder dropped
        if n % world == 0:
            assert union == set(range(n))
    # the shards are the same one permutation, dealt out round-robin
    single = [i for b in data.DeviceLoader(x, per_rank * world, seed=5, drop_last=False).epoch(2) for i in _which(b)]
    ranks = [[i for b in data.DeviceLoader(x, B, seed=5, rank=r, world_size=world, drop_last=False).epoch(2)
              for i in _which(b)] for r in range(world)]
    for r in range(world):
        assert ranks[r] == single[r:per_rank * world:world]


def test_loader_dynamic_binarization(device):
    grey = _grey(4096).to(device)
    loader = data.DeviceLoader(grey, 1024, seed=2, dynamic=True, shuffle=False)
    batches = list(loader.epoch(0))
    for i, b in enumerate(batches):
        assert b.dtype == torch.uint8 and set(b.unique().tolist()) == {0, 1}
        g = grey[i * 1024:(i + 1) * 1024]
        assert not b[g == 0].any() and b[g == 255].all()
        _assert_mean_follows_grey(b, g)
    # per pixel value: the fraction of ones follows grey / 255 (over many resamples)
    loader1 = data.DeviceLoader(grey[:1], 1, seed=0, dynamic=True, shuffle=False)
    samples = torch.stack([next(loader1.epoch(e)) for e in range(3000)]).double().mean(0)
    torch.testing.assert_close(samples, grey[:1].double() / 255, atol=0.05, rtol=0)  # 5.5 sigma
    # reproducible, resumable, and fresh every epoch
    again = list(data.DeviceLoader(grey, 1024, seed=2, dynamic=True, shuffle=False).epoch(0, start=2))
    assert torch.equal(again[0], batches[2]) and torch.equal(again[1], batches[3])
    assert not torch.equal(next(loader.epoch(1)), batches[0])
    # fresh noise per batch and per rank, even for identical grey levels
    flat = torch.full((64, 1, 4, 4), 128, dtype=torch.uint8, device=device)
    b0, b1 = data.DeviceLoader(flat, 32, dynamic=True).epoch(0)
    assert not torch.equal(b0, b1)
    r0, r1 = (next(data.DeviceLoader(flat, 32, dynamic=True, rank=r, world_size=2).epoch(0)) for r in (0, 1))
    assert not torch.equal(r0, r1)
    # static: the data as stored
    static = list(data.DeviceLoader(grey, 1024, seed=2, shuffle=False).epoch(0))
    assert torch.equal(static[1], grey[1024:2048])


def test_loader_argument_errors():
    x = torch.zeros(10, 1, 2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        data.DeviceLoader(x, 0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        data.DeviceLoader(x, 2.0)
    with pytest.raises(TypeError, match="data must be a uint8 tensor"):
        data.DeviceLoader(x.float(), 2)
    with pytest.raises(TypeError, match="data must be a torch.Tensor"):
        data.DeviceLoader(x.numpy(), 2)
    with pytest.raises(ValueError, match=r"rank must be in \[0, world_size\) = \[0, 2\), got 2"):
        data.DeviceLoader(x, 2, rank=2, world_size=2)
    with pytest.raises(ValueError, match="world_size must be >= 1"):
        data.DeviceLoader(x, 2, world_size=0)
    with pytest.raises(ValueError, match="batch_size=6 is larger than the 5 examples per rank"):
        data.DeviceLoader(x, 6, world_size=2)
    assert len(data.DeviceLoader(x, 6, world_size=2, drop_last=False)) == 1
    with pytest.raises(ValueError, match="fewer than world_size=11"):
        data.DeviceLoader(x, 1, world_size=11)
    with pytest.raises(ValueError, match="at least one example"):
        data.DeviceLoader(x[:0], 1)
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        data.DeviceLoader(x, 2).epoch(-1)


@pytest.mark.gpu
def test_loader_never_syncs_the_host():
    x = _grey(5000).cuda()
    loader = data.DeviceLoader(x, 256, seed=0, dynamic=True, rank=1, world_size=2)
    list(loader.epoch(0))  # warm up (allocator, generator)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for b in loader.epoch(1, start=2):
            b.float().sum()
    finally:
        torch.cuda.set_sync_debug_mode("default")


# ------------------------------------------------------------------------------------------
# the real data set
# ------------------------------------------------------------------------------------------

def test_real_binarized_mnist(_no_data_dir_env, monkeypatch):
    directory = _no_data_dir_env
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
