"""fastvae.data.shapes: the generated shapes against a reference drawing, their properties, colour,
and the shapes data set's splits."""

import math

import numpy as np
import pytest
import torch

from fastvae import data
from fastvae.data import shapes

from data_helpers import no_data_dir_env  # noqa: F401 (autouse fixture)


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
    assert not (flat["train"] & flat["valid"]) and not (flat["train"] & flat["test"])
    assert not (flat["valid"] & flat["test"])
    again = data.load_dataset("shapes", seed=4, image_size=64, channels=3, num_train=50, num_valid=20, num_test=20)
    assert all(torch.equal(getattr(ds, s), getattr(again, s)) for s in data.SPLITS)
    default = data.load_dataset("shapes")
    assert [len(getattr(default, s)) for s in data.SPLITS] == [50000, 10000, 10000]
    assert default.shape == (1, 28, 28) and default.train.dtype == torch.uint8
