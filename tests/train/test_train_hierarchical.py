"""python -m fastvae.train --arch hierarchical: a short run learns, logs each level's KL (metrics,
summary), resumes exactly, reloads through fastvae.models.load; free bits; bad settings."""

import json

import pytest
import torch

from fastvae import models, train
from fastvae.models import HierarchicalConvVAE, HierarchicalMLPVAE

from train_helpers import lines, same_metrics, status_and_errors

# the tiny run of train_helpers, as a two-level hierarchy (SMALL's --latent-dim does not apply)
HIER = ["--data", "shapes", "--num-train", "384", "--num-test", "96", "--batch-size", "64", "--eval-samples", "8",
        "--no-progress", "--no-plots", "--lr", "3e-3", "--arch", "hierarchical", "--latent-dims", "3,6",
        "--hidden", "32,48"]


def _run(out, *extra):
    assert train.main([*HIER, "--out", str(out), *extra]) == 0
    return lines(out / "metrics.jsonl")


def test_short_run_learns_and_logs_each_levels_kl(tmp_path):
    metrics = _run(tmp_path, "--epochs", "2", "--free-bits", "0.05")
    assert metrics[-1]["train_neg_elbo"] < metrics[0]["train_neg_elbo"]
    for m in metrics:
        assert len(m["train_level_kl"]) == 2 and all(v >= 0 for v in m["train_level_kl"])
        assert sum(m["train_level_kl"]) == pytest.approx(m["train_kl"], rel=1e-5)
        assert m["train_neg_elbo"] == pytest.approx(m["train_kl"] - m["train_log_likelihood"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["test_level_kl"]) == 2 and summary["test_nll"] < summary["test_neg_elbo"]
    cfg = summary["config"]
    assert cfg["arch"] == "hierarchical" and cfg["latent_dims"] == [3, 6] and cfg["free_bits"] == 0.05
    model = models.load(tmp_path / train.CHECKPOINT)  # the one builder rebuilds it
    assert isinstance(model, HierarchicalMLPVAE) and model.free_bits == 0.05
    assert [s[0] for s in model.latent_shapes] == [3, 6] and model.sample(2).shape == (2, 1, 28, 28)


def test_resume_continues_exactly(tmp_path):
    whole = tmp_path / "whole"
    _run(whole, "--epochs", "2")
    parts = tmp_path / "parts"
    assert train.main([*HIER, "--out", str(parts), "--epochs", "2", "--stop-after", "8"]) == 0
    assert train.main([*HIER, "--out", str(parts), "--epochs", "2", "--resume"]) == 0
    assert same_metrics(parts) == same_metrics(whole)  # the per-level partial sums resumed too
    status = train.main([*HIER, "--out", str(parts), "--epochs", "2", "--resume", "--latent-dims", "3,7"])
    assert status == 2


def test_conv_hierarchy_and_iwae(tmp_path):
    argv = [a for a in HIER if a not in ("--hidden", "32,48")]
    assert train.main([*argv, "--out", str(tmp_path), "--hierarchical-net", "conv", "--conv-channels", "4,8",
                       "--epochs", "1", "--objective", "iwae", "--samples", "2", "--num-train", "128"]) == 0
    assert isinstance(models.load(tmp_path / train.CHECKPOINT), HierarchicalConvVAE)
    assert len(lines(tmp_path / "metrics.jsonl")[0]["train_level_kl"]) == 2


@pytest.mark.parametrize("argv,message", [
    (["--latent-dims", "3,4"], "--latent-dims is for --arch hierarchical"),
    (["--free-bits", "1"], "--free-bits is for --arch hierarchical"),
    (["--arch", "hierarchical", "--objective", "dreg"], "elbo or iwae"),
    (["--arch", "hierarchical", "--objective", "iwae", "--free-bits", "1"], "--free-bits floors"),
    (["--arch", "hierarchical", "--free-bits", "-1"], "free-bits"),
    (["--arch", "hierarchical", "--conv-channels", "4,8"], "--conv-channels is for --hierarchical-net conv"),
])
def test_bad_settings(tmp_path, capsys, argv, message):
    status, err = status_and_errors(tmp_path, capsys, *argv)
    assert status == 2 and message in err, err


def test_the_model_trains_its_priors(tmp_path):
    _run(tmp_path, "--epochs", "1")
    model = models.load(tmp_path / train.CHECKPOINT)
    assert not torch.equal(model.levels[0].prior_params, torch.zeros_like(model.levels[0].prior_params))
