"""Examples as pictures: which shapes are images, a grid of them, and a PNG writer that needs
nothing but the standard library (``python -m fastvae.sample`` writes PNGs without matplotlib
or pillow; the training command's plots use matplotlib)."""

import math
import struct
import zlib

import numpy as np
import torch


def as_images(x, spec=None):
    """``x`` (N, *shape) as images (N, C, H, W) with C 1 or 3: (N, C, H, W) and (N, H, W) as
    they are, flat (N, D) with D a square number as (N, 1, sqrt D, sqrt D); None for any other
    shape (e.g. vectors of 10 features), which is not shown as a picture, and for the examples of
    a count likelihood (``spec``, a registry record: genes, not pixels)."""
    shape = tuple(x.shape[1:])
    if spec is not None and spec.counts:
        return None
    if len(shape) == 3 and shape[0] in (1, 3):
        return x
    if len(shape) == 2:
        return x.reshape(x.shape[0], 1, *shape)
    if len(shape) == 1 and math.isqrt(shape[0]) ** 2 == shape[0] and shape[0] > 1:
        side = math.isqrt(shape[0])
        return x.reshape(x.shape[0], 1, side, side)
    return None


def grid(images, nrow):
    """(N, C, H, W) in [0, 1] -> (rows*H, nrow*W, C) numpy image with 1-pixel gaps (white),
    (rows*H, nrow*W) for C = 1."""
    n, c, h, w = images.shape
    rows = math.ceil(n / nrow)
    canvas = torch.ones(c, rows * (h + 1) - 1, nrow * (w + 1) - 1)
    for i in range(n):
        r, q = divmod(i, nrow)
        canvas[:, r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = images[i]
    img = canvas.permute(1, 2, 0).numpy()
    return img[..., 0] if c == 1 else img


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path, img):
    """Writes ``img`` (H, W) greyscale or (H, W, 3) RGB, float in [0, 1] (values outside are
    clipped), as an 8-bit PNG at ``path``."""
    a = np.clip(np.asarray(img, dtype=np.float64), 0, 1)
    a = np.round(a * 255).astype(np.uint8)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {a.shape}")
    h, w = a.shape[:2]
    colour = 2 if a.ndim == 3 else 0  # PNG colour types: RGB, greyscale
    rows = np.concatenate([np.zeros((h, 1), np.uint8), a.reshape(h, -1)], axis=1)  # filter byte 0 per row
    png = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
           + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)
