"""Count matrices in the files single-cell tools write, as dense NumPy arrays (cells, genes):

* a sparse ``.npz`` as ``scipy.sparse.save_npz`` writes it (CSR, CSC or COO; arrays ``format``,
  ``shape``, ``data`` and the indices), read with NumPy alone (no SciPy needed), duplicates
  summed as SciPy sums them;
* an AnnData ``.h5ad`` (needs ``anndata``, imported only here): the layer ``"counts"`` when it
  has one (scvi-tools' convention for the raw counts), else ``X``, dense or sparse.

Both are made dense: the model reads (batch, genes) tensors from device memory. The values are
checked as counts afterwards (``counts.fit_counts``), like any array's.
"""

from __future__ import annotations

import numpy as np

SPARSE_KEYS = frozenset(("format", "shape", "data"))


def is_sparse_npz(path) -> bool:
    """Whether the ``.npz`` at ``path`` holds a SciPy sparse matrix (its ``format`` and ``shape``)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return SPARSE_KEYS <= set(f.files)
    except (ValueError, OSError, EOFError):
        return False  # not an .npz at all: the .npz reader says so


def _coordinates(fmt, f, where):
    if fmt in ("csr", "csc"):
        indptr, indices = f["indptr"], f["indices"]
        major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        return (major, indices) if fmt == "csr" else (indices, major)
    if fmt == "coo":
        return f["row"], f["col"]
    raise ValueError(f"{where}: a sparse matrix of format {fmt!r}; fastvae reads csr, csc and coo")


def read_sparse_npz(path) -> np.ndarray:
    """The sparse matrix in ``path`` (``scipy.sparse.save_npz``'s layout) as a dense array of its
    values' dtype; a ValueError for another layout or indices outside its shape."""
    try:
        with np.load(path, allow_pickle=False) as f:
            fmt = f["format"].item()
            fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
            shape = tuple(int(v) for v in f["shape"])
            data = f["data"]
            rows, cols = _coordinates(fmt, f, path)
    except KeyError as e:
        raise ValueError(f"{path}: a sparse matrix without its array {e}") from None
    if len(shape) != 2 or len(rows) != len(data) or len(cols) != len(data):
        raise ValueError(f"{path}: not a well-formed sparse matrix (shape {shape}, {len(data)} values)")
    if len(data) and (rows.min() < 0 or cols.min() < 0 or rows.max() >= shape[0] or cols.max() >= shape[1]):
        raise ValueError(f"{path}: sparse indices outside its shape {shape}")
    out = np.zeros(shape, dtype=data.dtype)
    np.add.at(out, (rows, cols), data)
    return out


def read_h5ad(path) -> np.ndarray:
    """The counts of the AnnData file ``path``: ``layers["counts"]`` if present, else ``X``, dense."""
    try:
        import anndata
    except ImportError:
        raise ModuleNotFoundError("reading an .h5ad file needs anndata, which is not installed: pip install anndata",
                                  name="anndata") from None
    adata = anndata.read_h5ad(path)
    x = adata.layers["counts"] if "counts" in adata.layers else adata.X
    return x.toarray() if hasattr(x, "toarray") else np.asarray(x)
