"""python -m fastvae.train with the other likelihoods (--likelihood, --logscale), grey MNIST
dequantized (--data mnist --grey, bits/dim) and the importance-weighted objectives
(--objective iwae|dreg --samples K), end to end."""

import numpy as np
import pytest
import torch

from fastvae.train.checkpoint import CHECKPOINT

from data_helpers import write_idx
from train_helpers import lines, run, same_metrics


@pytest.fixture
def grey_mnist(tmp_path):
    """IDX files of grey ramps with noise: 10300 training images (the last 10000 are the
    validation split) and 200 test images."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 28)[None, None, :] * rng.uniform(0.3, 1.0, (10300, 1, 1)) * np.ones((1, 28, 1))
    images = (ramp + rng.normal(0, 8, ramp.shape)).clip(0, 255).astype(np.uint8)
    d = tmp_path / "mnist"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte", images)
    write_idx(d / "t10k-images-idx3-ubyte", images[:200])
    return d


def test_gaussian_with_dreg_learns_its_logscale(tmp_path):
    summary = run(tmp_path, "--epochs", "2", "--likelihood", "gaussian", "--objective", "dreg", "--samples", "2",
                  "--no-plots")
    metrics = lines(tmp_path / "metrics.jsonl")
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"]
    cfg = summary["config"]
    assert (cfg["likelihood"], cfg["objective"], cfg["samples"]) == ("gaussian", "dreg", 2)
    assert summary["test_bits_per_dim"] is None  # binary shapes are not 8-bit data
    logscale = torch.load(tmp_path / CHECKPOINT, weights_only=False)["model"]["logscale"]
    assert logscale.shape == () and logscale.item() != 0.0  # learned, and checkpointed


def test_grey_mnist_iwae_resumes_exactly_and_reports_bits_per_dim(tmp_path, grey_mnist):
    common = ("--data", "mnist", "--grey", "--data-dir", str(grey_mnist), "--num-train", "256", "--num-test", "64",
              "--likelihood", "continuous-bernoulli", "--objective", "iwae", "--samples", "2", "--epochs", "2",
              "--no-plots")
    whole = run(tmp_path / "whole", *common)
    assert run(tmp_path / "parts", *common, "--stop-after", "3") is None
    resumed = run(tmp_path / "parts", *common, "--resume")
    assert same_metrics(tmp_path / "parts") == same_metrics(tmp_path / "whole")  # the same dequantization noise
    assert resumed["test_nll"] == whole["test_nll"]
    D = 784
    assert whole["test_bits_per_dim"] == pytest.approx((whole["test_nll"] + D * np.log(256)) / (D * np.log(2)))
    assert 0 < whole["test_bits_per_dim"] < 12
