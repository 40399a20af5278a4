"""python -m fastvae.sample: samples and reconstructions from a checkpoint, and its one-line
errors (the subprocess run from the README is in test_readme.py)."""

import struct
import zlib

import numpy as np
import pytest
import torch

from fastvae import _images, sample, train
from fastvae.train.checkpoint import CHECKPOINT

SMALL = ["--data", "shapes", "--num-train", "128", "--num-test", "40", "--batch-size", "64", "--hidden", "16",
         "--latent-dim", "4", "--eval-samples", "2", "--no-progress", "--no-plots", "--epochs", "1"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    assert train.main([*SMALL, "--out", str(out)]) == 0
    return out / CHECKPOINT


def _png_size(path):
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", raw[16:24])
    return height, width


@pytest.mark.slow
def test_samples_as_a_grid_and_an_array(checkpoint, tmp_path, capsys):
    out, npy = tmp_path / "s.png", tmp_path / "s.npy"
    assert sample.main([str(checkpoint), "--num", "9", "--seed", "3", "--out", str(out), "--npy", str(npy)]) == 0
    assert _png_size(out) == (3 * 29 - 1, 3 * 29 - 1)  # 3 x 3 images of 28 x 28, 1-pixel gaps
    a = np.load(npy)
    assert a.shape == (9, 1, 28, 28) and a.dtype == np.float32
    assert sample.main([str(checkpoint), "--num", "9", "--seed", "3", "--out", str(out), "--npy", str(npy)]) == 0
    assert np.array_equal(np.load(npy), a)  # the seed decides
    assert "wrote" in capsys.readouterr().out


@pytest.mark.slow
def test_reconstructions_of_the_runs_own_test_examples(checkpoint, tmp_path):
    recon = tmp_path / "r.png"
    assert sample.main([str(checkpoint), "--num", "4", "--out", str(tmp_path / "s.png"), "--data", "shapes",
                        "--recon-out", str(recon)]) == 0
    assert _png_size(recon) == (2 * 29 - 1, 4 * 29 - 1)  # 4 pairs, two per row


@pytest.mark.slow
def test_errors_are_one_line_and_status_2(checkpoint, tmp_path, capsys):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    state = torch.load(checkpoint, weights_only=True)
    torch.save(dict(state, format_version=99), tmp_path / "future.pt")
    np.save(tmp_path / "other.npy", np.zeros((20, 5), np.uint8))
    cases = [([str(tmp_path / "missing.pt")], "no checkpoint at"),
             ([str(tmp_path / "junk.pt")], "it is not a checkpoint"),
             ([str(tmp_path / "future.pt")], "format version 99"),
             ([str(checkpoint), "--num", "0"], "--num must be at least 1"),
             ([str(checkpoint), "--data", str(tmp_path / "other.npy")], "has examples of shape (5,)")]
    for argv, words in cases:
        assert sample.main([*argv, "--out", str(tmp_path / "x.png")]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, (argv, err)


def test_the_png_writer_and_what_is_an_image(tmp_path):
    img = np.linspace(-0.5, 1.5, 12).reshape(3, 4)  # clipped to [0, 1]
    _images.write_png(tmp_path / "g.png", img)
    raw = (tmp_path / "g.png").read_bytes()
    idat = raw[raw.index(b"IDAT") + 4:raw.index(b"IEND") - 8]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(3, 5)[:, 1:]
    assert rows.min() == 0 and rows.max() == 255 and _png_size(tmp_path / "g.png") == (3, 4)
    _images.write_png(tmp_path / "c.png", np.zeros((2, 2, 3)))
    with pytest.raises(ValueError):
        _images.write_png(tmp_path / "bad.png", np.zeros((2, 2, 2)))
    assert _images.as_images(torch.zeros(2, 784)).shape == (2, 1, 28, 28)
    assert _images.as_images(torch.zeros(2, 3, 4, 5)).shape == (2, 3, 4, 5)
    assert _images.as_images(torch.zeros(2, 10)) is None and _images.as_images(torch.zeros(2, 5, 4, 4)) is None
