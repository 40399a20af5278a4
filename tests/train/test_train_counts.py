"""python -m fastvae.train with the count likelihoods: scVI's model (--arch count, chosen for a
count likelihood) on the synthetic counts and on a count matrix of your own (.npy, a sparse
.npz), evaluated, checkpointed, loaded and sampled; the settings that do not go together."""

import json

import numpy as np
import pytest
import torch

import fastvae
from fastvae import likelihoods, sample, train
from fastvae.data.counts import make_counts

from train_helpers import status_and_errors

ZINB, NB, POISSON = (likelihoods.get(n) for n in ("zero_inflated_negative_binomial", "negative_binomial", "poisson"))
TINY = ["--batch-size", "32", "--epochs", "1", "--eval-samples", "4", "--no-progress", "--hidden", "16"]


def _run(tmp_path, *argv):
    out = tmp_path / "out"
    assert train.main([*TINY, "--out", str(out), *argv]) == 0
    return json.loads((out / "summary.json").read_text()), out


@pytest.mark.slow
def test_the_count_vae_trains_on_the_synthetic_counts(tmp_path, capsys):
    summary, out = _run(tmp_path, "--data", "synthetic-counts", "--likelihood", ZINB.cli_name, "--genes", "64",
                        "--num-train", "96", "--num-test", "16")
    cfg = summary["config"]
    assert cfg["arch"] == "count" and cfg["latent_dim"] == 10 and cfg["hidden"] == [16] and cfg["genes"] == 64
    assert cfg["input_shape"] == [64] and cfg["num_train"] == 96 and cfg["num_test"] == 16
    assert np.isfinite(summary["test_nll"]) and summary["test_nll"] <= summary["test_neg_elbo"] + 1.0
    assert summary["test_bits_per_dim"] is None
    assert "count VAE" in capsys.readouterr().err
    assert not (out / "samples.png").exists()  # genes are not pixels
    model = fastvae.models.load(out / "checkpoint.pt")
    assert isinstance(model, fastvae.models.CountVAE) and model.likelihood == ZINB.name
    assert model.zero_inflation_head is not None and model.log_theta.shape == (64,)
    assert sample.main([str(out / "checkpoint.pt"), "--num", "3", "--npy", str(tmp_path / "s.npy")]) == 0
    means = np.load(tmp_path / "s.npy")
    assert means.shape == (3, 64) and (means >= 0).all()


@pytest.mark.slow
def test_the_count_vae_trains_on_a_count_matrix_of_your_own(tmp_path):
    counts, _, _ = make_counts(120, 40, seed=3)
    np.save(tmp_path / "cells.npy", counts.astype(np.int64))  # int64 on disk, held as the smallest dtype
    summary, out = _run(tmp_path, "--data", str(tmp_path / "cells.npy"), "--likelihood", NB.cli_name,
                        "--objective", "iwae", "--samples", "2")
    assert summary["config"]["arch"] == "count" and summary["config"]["num_train"] == 96
    assert np.isfinite(summary["test_nll"])
    assert torch.load(out / "checkpoint.pt", weights_only=True)["model"]["log_theta"].shape == (40,)


@pytest.mark.slow
def test_a_sparse_count_matrix_trains_as_its_dense_twin(tmp_path):
    counts, _, _ = make_counts(80, 24, seed=4)
    rows, cols = np.nonzero(counts)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=counts.shape[0]))])
    np.savez(tmp_path / "cells.npz", format=np.array(b"csr"), shape=np.array(counts.shape), data=counts[rows, cols],
             indices=cols.astype(np.int32), indptr=indptr.astype(np.int32))  # scipy.sparse.save_npz's layout
    np.save(tmp_path / "dense.npy", counts)
    results = [_run(tmp_path / name.replace(".", "-"), "--data", str(tmp_path / name), "--likelihood",
                    POISSON.cli_name, "--no-plots")[0] for name in ("cells.npz", "dense.npy")]
    assert results[0]["test_nll"] == pytest.approx(results[1]["test_nll"], rel=1e-6)


def test_count_settings_that_do_not_go_together(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "cells.npy", make_counts(20, 8, seed=0)[0])
    np.save(tmp_path / "fractions.npy", np.full((20, 8), 0.5, dtype=np.float32))
    cases = [(["--likelihood", NB.cli_name], "--data shapes is images"),
             (["--data", "synthetic-counts"], "is a count matrix: add --likelihood"),
             (["--data", "synthetic-counts", "--likelihood", POISSON.cli_name, "--arch", "mlp"],
              "--arch mlp does not model"),
             (["--arch", "count"], "--arch count does not model"),
             (["--genes", "10"], "--genes is for --data synthetic-counts"),
             (["--data", "cells.npy"], "integer counts: use the"),
             (["--data", "fractions.npy", "--likelihood", POISSON.cli_name, "--hidden", "4"],
              "not whole numbers")]
    for argv, words in cases:
        status, err = status_and_errors(tmp_path, capsys, *argv)
        assert status == 2 and words in err and err.count("\n") == 1, (argv, err)
