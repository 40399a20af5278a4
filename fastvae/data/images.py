"""A folder of image files as one uint8 array ``(N, C, H, W)`` of 8-bit levels (pillow reads
them; it is imported only here, and only when a folder is read).

Every ``.png``, ``.jpg`` and ``.jpeg`` file under the folder (sub-folders too, so a folder per
class works; hidden files and other files are skipped), in sorted order of their paths. All
greyscale: one channel; any in colour: three (greyscale ones repeated, alpha dropped, palettes
expanded). Without ``resize`` all must have one size (a ValueError names two that differ);
``resize=(H, W)`` resizes each with bilinear filtering. 16-bit and floating-point images are
refused (8-bit only).
"""

from __future__ import annotations

import os

import numpy as np

SUFFIXES = (".png", ".jpg", ".jpeg")
_GREY_MODES = ("1", "L", "LA")
_COLOUR_MODES = ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ModuleNotFoundError("reading a folder of images needs pillow, which is not installed: "
                                  "pip install pillow (or pip install 'fastvae[images]')", name="PIL") from None
    return Image


def image_files(folder):
    """The image files under ``folder``, sorted by their path relative to it."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in files
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in SUFFIXES]
    return sorted(found, key=lambda p: os.path.relpath(p, folder))


def _mode(Image, path):
    # the image's mode, from its header (nothing decoded yet)
    try:
        with Image.open(path) as img:
            mode = img.mode
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: cannot read it as an image ({type(e).__name__}: {e})") from e
    if mode not in _GREY_MODES + _COLOUR_MODES:
        raise ValueError(f"{path}: image mode {mode!r} (16-bit or floating-point pixels); fastvae reads 8-bit "
                         f"greyscale or colour images")
    return mode


def _pixels(Image, path, mode, resize):
    # (C, H, W) uint8 of the image in ``mode`` ("L" or "RGB"), resized to ``resize`` (H, W) if given
    try:
        with Image.open(path) as img:
            img = img.convert(mode)
    except (OSError, ValueError) as e:  # a header that reads, with damaged data after it
        raise ValueError(f"{path}: cannot read it as an image ({type(e).__name__}: {e})") from e
    if resize is not None:
        img = img.resize((resize[1], resize[0]), Image.Resampling.BILINEAR)
    a = np.asarray(img, dtype=np.uint8)
    return a.transpose(2, 0, 1) if mode == "RGB" else a[None]


def read_folder(folder, resize=None):
    """``fastvae.data.readers.FileData`` of the images under ``folder`` (see the module
    docstring); ``resize``: ``(H, W)`` or None."""
    from .readers import FileData

    Image = _pillow()
    paths = image_files(folder)
    if not paths:
        raise ValueError(f"{folder}: no image files ({', '.join(SUFFIXES)}) in it or its sub-folders")
    mode = "RGB" if any(_mode(Image, p) in _COLOUR_MODES for p in paths) else "L"
    arrays = [_pixels(Image, p, mode, resize) for p in paths]
    if resize is None:
        for path, a in zip(paths, arrays):
            if a.shape != arrays[0].shape:
                raise ValueError(f"{folder}: images of different sizes, {paths[0]} is {_hw(arrays[0])} and {path} "
                                 f"is {_hw(a)} (height x width); give one size to resize them to (--resize HxW)")
    return FileData({"train": np.stack(arrays)}, eight_bit=True, source=folder)


def _hw(a):
    return f"{a.shape[1]}x{a.shape[2]}"
