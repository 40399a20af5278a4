"""The "shapes" data set: binary images of squares, ellipses and triangles at random position,
scale and rotation, generated from a seed (no files; 28x28 or 64x64, 1 or 3 channels)."""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_int
from ._common import SPLITS

SHAPES_SIZES = (28, 64)
SHAPES_DEFAULT_COUNTS = {"train": 50000, "valid": 10000, "test": 10000}

SQUARE, ELLIPSE, TRIANGLE = 0, 1, 2
_SQRT3_2 = math.sqrt(3.0) / 2.0


def _shape_params(n, size, rng):
    """Per-image parameters, drawn in a fixed order from ``rng`` (so the geometry does not
    depend on ``channels``). ``r`` is the half side of a square, the semi-major axis of an
    ellipse (semi-minor ``aspect * r``) and the circumradius of an equilateral triangle."""
    kind = rng.integers(0, 3, size=n)
    r = rng.uniform(0.2, 0.35, size=n) * size
    theta = rng.uniform(0.0, 2.0 * math.pi, size=n)
    aspect = rng.uniform(0.5, 1.0, size=n)
    # centre kept 0.8 r from the border: a corner may be clipped, never much of the shape
    cx = 0.8 * r + rng.uniform(0.0, 1.0, size=n) * (size - 1.6 * r)
    cy = 0.8 * r + rng.uniform(0.0, 1.0, size=n) * (size - 1.6 * r)
    color = rng.integers(1, 8, size=n)  # 3-bit RGB, never 0 (black on black)
    return {"kind": kind, "r": r, "theta": theta, "aspect": aspect, "cx": cx, "cy": cy, "color": color}


def _rasterize(p, size, out):
    """Write the 0/1 masks of the shapes ``p`` into ``out`` (uint8 (n, size, size)).

    Pixel (i, j) (row i, column j) is inside when its centre (j + 0.5, i + 0.5), in the shape's
    own frame (rotated by -theta about the centre, scaled by 1/r), satisfies:
    square max(|u|, |v|) <= 1; ellipse u^2 + (v / aspect)^2 <= 1; triangle the three
    half-planes n_k . (u, v) <= 1/2 with outward normals at 90, 210 and 330 degrees (the
    inradius of an equilateral triangle is half its circumradius).
    """
    grid = np.arange(size, dtype=np.float32) + np.float32(0.5)
    per_chunk = max(1, (1 << 18) // (size * size))  # temporaries stay in cache
    for kind in (SQUARE, ELLIPSE, TRIANGLE):
        idx_all = np.flatnonzero(p["kind"] == kind)
        for lo in range(0, idx_all.size, per_chunk):
            idx = idx_all[lo:lo + per_chunk]
            inv_r = (1.0 / p["r"][idx]).astype(np.float32)[:, None, None]
            c = np.cos(p["theta"][idx]).astype(np.float32)[:, None, None] * inv_r
            s = np.sin(p["theta"][idx]).astype(np.float32)[:, None, None] * inv_r
            dx = grid[None, None, :] - p["cx"][idx].astype(np.float32)[:, None, None]  # (b, 1, S)
            dy = grid[None, :, None] - p["cy"][idx].astype(np.float32)[:, None, None]  # (b, S, 1)
            u = c * dx + s * dy   # (b, S, S)
            v = c * dy - s * dx
            if kind == SQUARE:
                np.abs(u, out=u)
                np.abs(v, out=v)
                mask = np.maximum(u, v, out=u) <= 1.0
            elif kind == ELLIPSE:
                inv_a = (1.0 / p["aspect"][idx]).astype(np.float32)[:, None, None]
                v *= inv_a
                u *= u
                v *= v
                mask = (u + v) <= 1.0
            else:
                half_v = v * np.float32(0.5)
                su = u * np.float32(_SQRT3_2)
                mask = v <= 0.5
                mask &= (su - half_v) <= 0.5
                mask &= (-su - half_v) <= 0.5
            out[idx] = mask


def _shapes(n, size, rng, channels):
    p = _shape_params(n, size, rng)
    masks = np.empty((n, size, size), dtype=np.uint8)
    _rasterize(p, size, masks)
    if channels == 1:
        return masks[:, None]
    bits = ((p["color"][:, None] >> np.arange(3)) & 1).astype(np.uint8)  # (n, 3): R, G, B
    return masks[:, None] * bits[:, :, None, None]


def _check_shapes_args(image_size, channels):
    check_int("image_size", image_size)
    check_int("channels", channels)
    if image_size not in SHAPES_SIZES:
        raise ValueError(f"image_size must be one of {SHAPES_SIZES} for shapes, got {image_size}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")


def make_shapes(n: int, image_size: int = 28, *, seed: int = 0, channels: int = 1) -> np.ndarray:
    """``n`` binary images of one shape each (square, ellipse or triangle, equally likely, at a
    random position, scale, rotation and, for ellipses, aspect ratio): uint8 of 0/1, shape
    ``(n, channels, image_size, image_size)``. Deterministic from ``seed`` (for a given NumPy).

    Every image is non-empty and not full. With ``channels=3`` each shape gets a random binary
    RGB colour that is not black; the geometry is the same as with ``channels=1`` for the same
    seed (``make_shapes(.., channels=3).max(1) == make_shapes(.., channels=1)[:, 0]``).
    """
    n = check_int("n", n, 0)
    _check_shapes_args(image_size, channels)
    seed = check_int("seed", seed, 0)
    return _shapes(n, image_size, np.random.default_rng(seed), channels)


def make_shapes_splits(seed: int, image_size: int, channels: int, counts: dict) -> dict:
    """The splits of the "shapes" data set, ``{split: uint8 (n, channels, image_size, image_size)}``
    with ``n = counts[split]`` (None: ``SHAPES_DEFAULT_COUNTS[split]``). Each split is generated
    from its own stream of ``seed`` (``SeedSequence(seed, spawn_key=(split index,))``), so the
    splits are disjoint draws."""
    _check_shapes_args(image_size, channels)
    splits = {}
    for k, s in enumerate(SPLITS):
        n = SHAPES_DEFAULT_COUNTS[s] if counts[s] is None else check_int(f"num_{s}", counts[s], 0)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,)))
        splits[s] = _shapes(n, image_size, rng, channels)
    return splits
