"""fastvae.data.formats: the .amat and IDX readers (plain, gzipped, malformed)."""

import gzip

import numpy as np
import pytest

from fastvae import data
from fastvae.data import formats

from data_helpers import no_data_dir_env, random_bits, write_amat, write_idx  # noqa: F401 (autouse fixture)

# ------------------------------------------------------------------------------------------
# .amat
# ------------------------------------------------------------------------------------------

def test_read_amat_plain_crlf_and_gz(tmp_path):
    rows = random_bits(np.random.default_rng(0), 7)
    np.testing.assert_array_equal(data.read_amat(write_amat(tmp_path / "a.amat", rows)), rows)
    # Windows line ends, no final newline, a blank line in the middle, tabs
    crlf = write_amat(tmp_path / "b.amat", list(rows[:3]) + [[]] + list(rows[3:]), sep="\t",
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
    rows = random_bits(np.random.default_rng(1), 40, d=50)
    path = write_amat(tmp_path / "a.amat", rows)
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


# ------------------------------------------------------------------------------------------
# IDX
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_read_idx_images(tmp_path, gz):
    images = np.random.default_rng(2).integers(0, 256, (5, 3, 4), dtype=np.uint8)
    path = write_idx(tmp_path / "x-idx3-ubyte", images, gz=gz)
    got = data.read_idx_images(path)
    assert got.dtype == np.uint8 and got.flags.writeable
    np.testing.assert_array_equal(got, images)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_read_idx_bad_header(tmp_path, gz):
    images = np.zeros((2, 3, 3), np.uint8)
    labels = write_idx(tmp_path / "labels", images[:, 0, 0].reshape(2), magic=0x00000801, gz=gz)
    with pytest.raises(ValueError, match="bad IDX magic number 0x00000801.*1 dimensions"):
        data.read_idx_images(labels)
    with pytest.raises(ValueError, match="bad IDX magic number 0x12345678"):
        data.read_idx_images(write_idx(tmp_path / "m", images, magic=0x12345678, gz=gz))
    raw = gzip.decompress(write_idx(tmp_path / "t", images, gz=True).read_bytes())
    (tmp_path / "t").write_bytes(gzip.compress(raw[:-1]) if gz else raw[:-1])
    with pytest.raises(ValueError, match=r"2x3x3 images \(34 bytes.*holds 33 bytes"):
        data.read_idx_images(tmp_path / "t")
    (tmp_path / "s").write_bytes(raw[:10])
    with pytest.raises(ValueError, match="shorter than the 16-byte header"):
        data.read_idx_images(tmp_path / "s")
