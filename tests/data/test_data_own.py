"""fastvae.data.load_files (own.py, readers.py, images.py): your own arrays and image folders as
a Dataset, held-out splits, and the values each likelihood reads, by its registry record."""

import numpy as np
import pytest
import torch

from fastvae import data, likelihoods

from data_helpers import no_data_dir_env  # noqa: F401  (autouse)

BERNOULLI = likelihoods.DEFAULT
CONTINUOUS = next(r.name for r in likelihoods.records() if r.uint8 == likelihoods.EIGHT_BIT
                  and r.support == likelihoods.UNIT_INTERVAL)
REAL = next(r.name for r in likelihoods.records() if r.support == likelihoods.FINITE)


def _npy(tmp_path, a, name="x.npy"):
    np.save(tmp_path / name, a)
    return tmp_path / name


def test_a_binary_npy_with_held_out_splits(tmp_path):
    a = (np.random.default_rng(0).random((100, 28, 28)) < 0.3).astype(np.uint8)
    ds = data.load_files(_npy(tmp_path, a), BERNOULLI)
    assert (ds.train.shape[0], ds.valid.shape[0], ds.test.shape[0]) == (80, 10, 10)
    assert ds.shape == (1, 28, 28) and ds.train.dtype == torch.uint8 and not ds.binary and not ds.dynamic
    # disjoint, together the file, each in the file's order; the same every time
    rows = {tuple(r.flatten().tolist()) for split in (ds.train, ds.valid, ds.test) for r in split}
    assert len(rows) == len({tuple(r.flatten().tolist()) for r in a}) and rows
    again = data.load_files(_npy(tmp_path, a), BERNOULLI, held_out=0.1)
    assert all(torch.equal(getattr(ds, s), getattr(again, s)) for s in data.SPLITS)
    assert data.load_files(_npy(tmp_path, a), BERNOULLI, held_out=0.25).test.shape[0] == 25


def test_float_data_for_each_support(tmp_path):
    unit = np.random.default_rng(1).random((20, 6)).astype(np.float64)
    ds = data.load_files(_npy(tmp_path, unit), CONTINUOUS)
    assert ds.train.dtype == torch.float32 and ds.shape == (6,)
    real = unit * 10 - 5
    assert data.load_files(_npy(tmp_path, real), REAL).test.dtype == torch.float32
    with pytest.raises(ValueError, match=r"float values from -5 to 5.* takes values in \[0, 1\]: rescale"):
        data.load_files(_npy(tmp_path, real.round()), CONTINUOUS)
    bad = unit.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        data.load_files(_npy(tmp_path, bad), REAL)


def test_uint8_is_read_as_the_likelihood_reads_it(tmp_path):
    grey = np.random.default_rng(2).integers(0, 256, (20, 4, 4), dtype=np.uint8)
    assert data.load_files(_npy(tmp_path, grey), CONTINUOUS).train.dtype == torch.uint8  # k/255, as bytes
    with pytest.raises(ValueError, match=r"uint8 values up to \d+, but the bernoulli likelihood reads uint8 as 0/1"):
        data.load_files(_npy(tmp_path, grey), BERNOULLI)
    binary = (grey > 127).astype(np.uint8)
    with pytest.raises(ValueError, match=r"only 0 and 1, which the continuous bernoulli likelihood reads as k/255"):
        data.load_files(_npy(tmp_path, binary), CONTINUOUS)
    ds = data.load_files(_npy(tmp_path, binary.astype(bool)), CONTINUOUS)  # bool is 0/1 whatever the likelihood
    assert ds.train.dtype == torch.float32 and set(ds.train.unique().tolist()) <= {0.0, 1.0}
    assert data.load_files(_npy(tmp_path, binary.astype(bool)), BERNOULLI).train.dtype == torch.uint8


def test_npz_splits(tmp_path):
    rng = np.random.default_rng(3)
    tr, te = (rng.random((30, 5)) < 0.5).astype(np.uint8), (rng.random((8, 5)) < 0.5).astype(np.uint8)
    np.savez(tmp_path / "a.npz", train=tr, test=te)
    ds = data.load_files(tmp_path / "a.npz", BERNOULLI)
    assert torch.equal(ds.test, torch.from_numpy(te)) and ds.valid.shape[0] == 3 and ds.train.shape[0] == 27
    np.savez(tmp_path / "b.npz", train=tr, valid=te, test=te)
    assert data.load_files(tmp_path / "b.npz", BERNOULLI).train.shape[0] == 30
    np.savez(tmp_path / "c.npz", tr)  # one array, any name: like a .npy
    assert data.load_files(tmp_path / "c.npz", BERNOULLI).train.shape[0] == 24
    np.savez(tmp_path / "d.npz", x=tr, y=te)
    with pytest.raises(ValueError, match="holds the arrays x, y; expected one array, or arrays named train and test"):
        data.load_files(tmp_path / "d.npz", BERNOULLI)
    np.savez(tmp_path / "e.npz", train=tr, test=te[:, :4])
    with pytest.raises(ValueError, match="the splits' examples differ in shape"):
        data.load_files(tmp_path / "e.npz", BERNOULLI)


@pytest.mark.parametrize("shape,words", [((10,), "expected an array of examples"),
                                         ((0, 5), "holds no examples"),
                                         ((4, 8, 8, 3), r"looks like \(N, H, W, C\), channels last")])
def test_shapes_fastvae_cannot_use(tmp_path, shape, words):
    with pytest.raises(ValueError, match=words):
        data.load_files(_npy(tmp_path, np.zeros(shape, np.uint8)), BERNOULLI)


def test_anything_else_is_a_clear_error(tmp_path):
    (tmp_path / "x.csv").write_text("0,1\n")
    with pytest.raises(ValueError, match=r"x.csv: not a kind of data fastvae reads; it reads a .npy array"):
        data.load_files(tmp_path / "x.csv", BERNOULLI)
    with pytest.raises(FileNotFoundError, match="no file or folder"):
        data.load_files(tmp_path / "missing.npy", BERNOULLI)
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=r"bad.npy: not a readable .npy file"):
        data.load_files(tmp_path / "bad.npy", BERNOULLI)
    with pytest.raises(ValueError, match="dtype int16; fastvae reads uint8, bool or float"):
        data.load_files(_npy(tmp_path, np.zeros((4, 3), np.int16)), BERNOULLI)
    with pytest.raises(ValueError, match="too few to hold out"):
        data.load_files(_npy(tmp_path, np.zeros((2, 3), np.uint8)), BERNOULLI)
    with pytest.raises(ValueError, match=r"held_out must be a fraction in \(0, 0.5\)"):
        data.load_files(_npy(tmp_path, np.zeros((20, 3), np.uint8)), BERNOULLI, held_out=0.5)
    with pytest.raises(ValueError, match="resize is for a folder of images"):
        data.load_files(_npy(tmp_path, np.zeros((20, 3), np.uint8)), BERNOULLI, resize=(2, 2))


def test_the_loader_serves_float_data_as_it_is(device):
    x = torch.rand(10, 3, device=device)
    batches = list(data.DeviceLoader(x, 5, shuffle=False).epoch(0))
    assert all(b.dtype == torch.float32 for b in batches) and torch.equal(torch.cat(batches), x)


# --------------------------------------------------------------------------- folders of images

Image = pytest.importorskip("PIL.Image")


def _image(path, mode, size, value):
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    Image.fromarray(np.full(shape, value, np.uint8), mode if mode == "RGB" else "L").convert(mode).save(path)


def test_a_folder_of_greyscale_images(tmp_path):
    (tmp_path / "imgs" / "b").mkdir(parents=True)
    for i in range(10):
        _image(tmp_path / "imgs" / ("b" if i % 2 else "") / f"{i}.png", "L", (6, 4), 25 * i)
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    ds = data.load_files(tmp_path / "imgs", CONTINUOUS, held_out=0.2)
    assert ds.shape == (1, 4, 6) and ds.train.dtype == torch.uint8  # k/255 as bytes
    values = sorted(int(x[0, 0, 0]) for s in data.SPLITS for x in getattr(ds, s))
    assert values == [25 * i for i in range(10)]
    with pytest.raises(ValueError, match="images of grey levels, which the bernoulli likelihood"):
        data.load_files(tmp_path / "imgs", BERNOULLI)
    assert data.load_files(tmp_path / "imgs", CONTINUOUS, resize=(8, 8)).shape == (1, 8, 8)


def test_colour_black_and_white_and_mixed_sizes(tmp_path):
    (tmp_path / "bw").mkdir()
    for i in range(6):
        _image(tmp_path / "bw" / f"{i}.png", "1" if i % 2 else "L", (5, 5), 255 * (i % 2))
    ds = data.load_files(tmp_path / "bw", BERNOULLI, held_out=0.2)  # 0 and 255 only: read as 0/1
    assert ds.train.dtype == torch.uint8 and int(max(getattr(ds, s).max() for s in data.SPLITS)) == 1
    _image(tmp_path / "bw" / "colour.jpg", "RGB", (5, 5), 255)
    assert data.load_files(tmp_path / "bw", BERNOULLI, held_out=0.2).shape == (3, 5, 5)  # any colour: RGB
    _image(tmp_path / "bw" / "wide.png", "L", (7, 5), 0)
    with pytest.raises(ValueError, match=r"images of different sizes, .* is 5x5 and .*wide.png is 5x7"):
        data.load_files(tmp_path / "bw", BERNOULLI, held_out=0.2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        data.load_files(tmp_path / "empty", BERNOULLI)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="x.png: cannot read it as an image"):
        data.load_files(tmp_path / "broken", BERNOULLI)


def test_without_pillow_the_error_says_how_to_get_it(tmp_path, monkeypatch):
    (tmp_path / "imgs").mkdir()
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match="needs pillow, which is not installed: pip install pillow"):
        data.load_files(tmp_path / "imgs", BERNOULLI)
