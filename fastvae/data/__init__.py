"""Data sets for training binary-output VAEs, and a loader that keeps them on the device.

Four built-in data sets (``DATASETS``), and your own files (``load_files``):

- ``"shapes"``: binary images of squares, ellipses and triangles at random position, scale and
  rotation, generated from a seed (no download, no files; 28x28 or 64x64, 1 or 3 channels).
- ``"binarized-mnist"``: the fixed binarization of Larochelle & Murray (2011), 50000/10000/10000,
  read from ``binarized_mnist.npz`` (arrays ``train``/``valid``/``test``, uint8 (N, 784) of 0/1)
  or, when there is no npz, from the original text files ``binarized_mnist_{train,valid,test}.amat``.
- ``"mnist"``: grey-level MNIST from the IDX files ``train-images-idx3-ubyte[.gz]`` and
  ``t10k-images-idx3-ubyte[.gz]``, binarized dynamically (a fresh Bernoulli(grey/255) sample per
  batch). valid is the last 10000 training images, train the first 50000, test is t10k.

- ``"synthetic-counts"``: a single-cell count matrix (cells x 2000 genes: cell types, two
  batches, over-dispersed counts, ~70% zeros) generated from a seed, for the count likelihoods.

- your own: ``load_files(path, likelihood)`` reads a ``.npy``/``.npz`` array (N, ...), a sparse
  ``.npz`` or ``.h5ad`` count matrix, or a folder
  of PNG/JPEG images, holds out the splits the file lacks and checks the values against the
  likelihood (``own``; the kinds of file: ``readers.READERS``, one entry each).

Files are looked up in ``data_dir`` or, when that is not given, ``$FASTVAE_DATA_DIR``. Nothing is
downloaded unless asked (``download(name, data_dir)`` or ``load_dataset(..., download=True)``).

``DeviceLoader`` serves batches from a tensor already on the device: one ``randperm`` per
epoch and one ``index_select`` per batch, no host syncs and no per-example Python, so the input
pipeline is never what limits samples/s.

Modules: ``formats`` (file readers of the MNIST files), ``shapes`` (the generated data set),
``sources`` (data directory, expected files, download), ``datasets`` (``Dataset``,
``load_dataset``), ``readers`` (your own files, a reader per kind), ``images`` (a folder of
images), ``matrices`` (sparse and AnnData count matrices), ``counts`` (the synthetic counts,
``fit_counts``), ``own`` (``load_files``: held-out splits, values checked for the likelihood),
``loader`` (``DeviceLoader``).
"""

# Every name below was importable from fastvae.data before it became a package, and still is
# (the constants too, though only the names in __all__ are the API).
from ._common import DATASETS, GENERATED, is_builtin, is_generated, SPLITS  # noqa: F401
from .datasets import Dataset, load_dataset, MNIST_VALID  # noqa: F401
from .formats import read_amat, read_idx_images
from .loader import DeviceLoader
from .own import HELD_OUT, load_files  # noqa: F401
from .readers import reader_for, READERS  # noqa: F401
from .shapes import ELLIPSE, make_shapes, SHAPES_DEFAULT_COUNTS, SHAPES_SIZES, SQUARE, TRIANGLE  # noqa: F401
from .sources import (  # noqa: F401
    BMNIST_AMAT,
    BMNIST_NPZ,
    BMNIST_URL,
    download,
    ENV_VAR,
    MNIST_FILES,
    MNIST_URL,
    resolve_dir,
)

__all__ = [
    "DATASETS",
    "Dataset",
    "DeviceLoader",
    "download",
    "load_dataset",
    "load_files",
    "make_shapes",
    "read_amat",
    "read_idx_images",
]
