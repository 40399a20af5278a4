"""Count matrices as fastvae holds them: the synthetic counts, any array checked as counts and
kept in the smallest integer dtype, and the files single-cell tools write (a SciPy sparse .npz
read without SciPy, an AnnData .h5ad)."""

import sys

import numpy as np
import pytest
import torch

from fastvae import data, likelihoods
from fastvae.data import matrices
from fastvae.data.counts import count_dtype, fit_counts, make_counts

NB, BERNOULLI = likelihoods.get("negative_binomial"), likelihoods.get("bernoulli")


def test_the_synthetic_counts_are_realistic_integer_counts():
    ds = data.load_dataset("synthetic-counts", seed=1, genes=2000, num_train=200, num_valid=20, num_test=30)
    assert ds.shape == (2000,) and ds.binary is False and ds.train.dtype in (torch.uint8, torch.int16)
    assert [ds.split(s).shape[0] for s in data.SPLITS] == [200, 20, 30]
    x = ds.train.double()
    zeros, library = (x == 0).double().mean(), x.sum(1)
    assert 0.5 < zeros < 0.9 and library.median() > 500  # mostly zeros, libraries of thousands
    mean, var = x.mean(0), x.var(0)
    assert (var[mean > 1] > 1.5 * mean[mean > 1]).float().mean() > 0.8  # over-dispersed genes
    again = data.load_dataset("synthetic-counts", seed=1, genes=2000, num_train=200, num_valid=20, num_test=30)
    assert torch.equal(again.test, ds.test)
    with pytest.raises(ValueError, match="genes is for synthetic-counts"):
        data.load_dataset("shapes", genes=10)


def test_counts_are_checked_and_kept_small():
    assert count_dtype(255) == np.uint8 and count_dtype(256) == np.int16 and count_dtype(40000) == np.int32
    assert fit_counts(np.array([[0, 3], [250, 1]], dtype=np.int64), "x").dtype == np.uint8
    assert fit_counts(np.array([[0.0, 3e4]]), "x").dtype == np.int16
    assert fit_counts(np.array([[True, False]]), "x").dtype == np.uint8
    for bad, words in [(np.array([[0.5, 1.0]]), "not whole numbers"), (np.array([[-1, 2]]), "negative"),
                       (np.array([[np.nan, 1.0]]), "NaN"), (np.zeros((2, 2, 2)), "(cells, genes)"),
                       (np.array([["a"]]), "dtype")]:
        with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
            fit_counts(bad, "x")


def test_your_own_counts_for_a_count_likelihood_and_not_for_the_others(tmp_path):
    counts = make_counts(50, 12, seed=2)[0]
    np.save(tmp_path / "c.npy", counts.astype(np.int32))
    ds = data.load_files(tmp_path / "c.npy", NB)
    assert ds.train.dtype == torch.int16 or ds.train.dtype == torch.uint8
    assert sum(ds.split(s).shape[0] for s in data.SPLITS) == 50
    with pytest.raises(ValueError, match="integer counts: use the"):
        data.load_files(tmp_path / "c.npy", BERNOULLI)


def _sparse(counts, fmt):
    rows, cols = np.nonzero(counts)
    arrays = dict(format=np.array(fmt.encode()), shape=np.array(counts.shape), data=counts[rows, cols])
    if fmt == "coo":
        return dict(arrays, row=rows, col=cols)
    major, minor = (rows, cols) if fmt == "csr" else (cols, rows)
    order = np.lexsort((minor, major))
    n = counts.shape[0 if fmt == "csr" else 1]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(major, minlength=n))])
    return dict(arrays, data=counts[rows[order], cols[order]], indices=minor[order], indptr=indptr)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_a_sparse_npz_reads_as_its_dense_matrix(tmp_path, fmt):
    counts = make_counts(30, 17, seed=5)[0]
    np.savez(tmp_path / "m.npz", **_sparse(counts, fmt))
    assert data.reader_for(tmp_path / "m.npz").kind == "sparse"
    np.testing.assert_array_equal(matrices.read_sparse_npz(tmp_path / "m.npz"), counts)


def test_sparse_duplicates_are_summed_and_bad_matrices_refused(tmp_path):
    np.savez(tmp_path / "d.npz", format=np.array(b"coo"), shape=np.array([2, 2]), data=np.array([1, 2]),
             row=np.array([0, 0]), col=np.array([1, 1]))
    np.testing.assert_array_equal(matrices.read_sparse_npz(tmp_path / "d.npz"), [[0, 3], [0, 0]])
    np.savez(tmp_path / "o.npz", format=np.array(b"coo"), shape=np.array([2, 2]), data=np.array([1]),
             row=np.array([2]), col=np.array([0]))
    with pytest.raises(ValueError, match="outside its shape"):
        matrices.read_sparse_npz(tmp_path / "o.npz")
    np.savez(tmp_path / "b.npz", format=np.array(b"bsr"), shape=np.array([2, 2]), data=np.array([1]))
    with pytest.raises(ValueError, match="format 'bsr'"):
        matrices.read_sparse_npz(tmp_path / "b.npz")


def test_h5ad_needs_anndata_and_says_so(tmp_path, monkeypatch):
    (tmp_path / "cells.h5ad").write_bytes(b"")
    assert data.reader_for(tmp_path / "cells.h5ad").kind == "h5ad"
    monkeypatch.setitem(sys.modules, "anndata", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match="pip install anndata"):
        data.load_files(tmp_path / "cells.h5ad", NB)


def test_h5ad_counts_layer_or_x(tmp_path):
    anndata = pytest.importorskip("anndata")
    counts = make_counts(20, 6, seed=6)[0].astype(np.float32)
    anndata.AnnData(X=counts).write_h5ad(tmp_path / "x.h5ad")
    np.testing.assert_array_equal(matrices.read_h5ad(tmp_path / "x.h5ad"), counts)
    anndata.AnnData(X=np.log1p(counts), layers={"counts": counts}).write_h5ad(tmp_path / "l.h5ad")
    np.testing.assert_array_equal(matrices.read_h5ad(tmp_path / "l.h5ad"), counts)
