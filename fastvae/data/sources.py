"""Where the files of the MNIST data sets come from: the data directory (``data_dir`` or
``$FASTVAE_DATA_DIR``), the files expected in it, and their download. Every error says which
directory was searched, which files were expected and how to get them."""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from typing import Optional

from ._common import check_name, is_generated, SPLITS

ENV_VAR = "FASTVAE_DATA_DIR"

BMNIST_NPZ = "binarized_mnist.npz"
BMNIST_AMAT = {s: f"binarized_mnist_{s}.amat" for s in SPLITS}
BMNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
MNIST_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

# what download() fetches: name -> [(url, file name)]
_DOWNLOADS = {
    "binarized-mnist": [(BMNIST_URL + f, f) for f in BMNIST_AMAT.values()],
    "mnist": [(MNIST_URL + f + ".gz", f + ".gz") for f in MNIST_FILES.values()],
}


def _how_to_get(name, directory):
    urls = ", ".join(u for u, _ in _DOWNLOADS[name])
    d = directory if directory is not None else "DIR"
    return (f"To get them run fastvae.data.download({name!r}, {d!r}) in Python, or "
            f"`python -m fastvae.train --data {name} --data-dir {d} --download`; "
            f"without network, download {urls} elsewhere and put the files in {d}.")


def _expected_files(name):
    if name == "binarized-mnist":
        return (f"{BMNIST_NPZ} (arrays train/valid/test, uint8 (N, 784)), or the three text files "
                + ", ".join(BMNIST_AMAT.values()))
    return " and ".join(f"{f} (or {f}.gz)" for f in MNIST_FILES.values())


def resolve_dir(name, data_dir):
    """(directory, where the setting came from) for the files of ``name``: ``data_dir`` if given,
    else ``$FASTVAE_DATA_DIR``; a clear FileNotFoundError when there is neither."""
    if data_dir is not None:
        return os.path.expanduser(os.fspath(data_dir)), "the data_dir argument"
    env = os.environ.get(ENV_VAR, "")
    if env:
        return os.path.expanduser(env), f"${ENV_VAR}"
    raise FileNotFoundError(
        f"no data directory for {name!r}: pass --data-dir (data_dir= in Python) or set the "
        f"{ENV_VAR} environment variable to the directory holding {_expected_files(name)}. "
        + _how_to_get(name, None))


def missing_files_error(name, directory, source, detail):
    """The FileNotFoundError for files of ``name`` not found in ``directory`` (set by ``source``):
    ``detail`` says which, then what is expected and how to get it."""
    return FileNotFoundError(
        f"{name} files not found in {directory} (from {source}; set it with --data-dir or "
        f"{ENV_VAR}): {detail}. Expected {_expected_files(name)}. " + _how_to_get(name, directory))


def _fetch(url, dest, timeout=60.0):
    """urllib download to a temporary file in the destination directory, renamed into place
    only when complete (a partial file never takes the real name)."""
    directory = os.path.dirname(dest)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(dest) + ".", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as response:
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                f.write(block)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def download(name: str, data_dir: Optional[str] = None) -> str:
    """Download the files of ``name`` ("binarized-mnist": the three ``.amat`` files; "mnist":
    the two gzipped IDX image files) into ``data_dir`` (default ``$FASTVAE_DATA_DIR``; created if
    needed) and return that directory. Files already present are kept. On a network failure,
    a ``RuntimeError`` names the URL and where to put the files by hand. "shapes" and
    "synthetic-counts" are generated, so there is nothing to download (``ValueError``)."""
    check_name(name)
    if is_generated(name):
        raise ValueError(f"{name!r} is generated from a seed; there is nothing to download")
    directory, _ = resolve_dir(name, data_dir)
    os.makedirs(directory, exist_ok=True)
    if name == "binarized-mnist" and os.path.exists(os.path.join(directory, BMNIST_NPZ)):
        return directory
    for url, fname in _DOWNLOADS[name]:
        dest = os.path.join(directory, fname)
        if os.path.exists(dest) or (fname.endswith(".gz") and os.path.exists(dest[:-3])):
            continue
        try:
            _fetch(url, dest)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:  # HTTP errors, timeouts
            reason = getattr(e, "reason", None) or e
            raise RuntimeError(
                f"could not download {url}: {reason}. Without network, download it elsewhere and "
                f"put it in {directory} as {fname}; {name} needs {_expected_files(name)}.") from e
    return directory
