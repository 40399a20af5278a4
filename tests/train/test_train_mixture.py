"""python -m fastvae.train with the discretized logistic mixture: a conv VAE on the colour shapes
learns and reports bits/dim the way the literature does for a discrete likelihood (no
dequantization: NLL / (D log 2)); the data's levels as the model reads them; bad settings."""

import json
import math

import pytest
import torch

from fastvae import data, models, train
from fastvae.train.targets import Targets

from train_helpers import lines

NAME = "discretized-logistic-mixture"
RUN = ["--data", "shapes", "--channels", "3", "--arch", "conv", "--conv-channels", "8,16", "--latent-dim", "8",
       "--likelihood", NAME, "--mixtures", "3", "--num-train", "256", "--num-test", "32", "--batch-size", "64",
       "--lr", "3e-3", "--eval-samples", "2", "--no-progress"]


def test_trains_a_conv_vae_on_colour_shapes_and_reports_bits_per_dim(tmp_path, capsys):
    assert train.main([*RUN, "--epochs", "2", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    metrics = lines(tmp_path / "metrics.jsonl")
    assert metrics[-1]["train_neg_elbo"] < metrics[0]["train_neg_elbo"]
    D = 3 * 28 * 28  # the shapes' 1-bit levels: the discrete likelihood's bits per dimension
    assert summary["test_bits_per_dim"] == pytest.approx(summary["test_nll"] / (D * math.log(2)))
    assert 0 < summary["test_bits_per_dim"] < 1
    assert summary["config"]["mixtures"] == 3 and summary["backend"] == "triton"
    assert f"({summary['test_bits_per_dim']:.3f} bits/dim)" in capsys.readouterr().err
    assert (tmp_path / "samples.png").exists() and (tmp_path / "reconstructions.png").exists()
    # the checkpoint rebuilds the same likelihood: M and the data's bits are in its configuration
    assert (summary["config"]["bits"], summary["config"]["mixtures"]) == (1, 3)
    model = models.load(tmp_path / "checkpoint.pt", map_location="cpu")
    assert model.likelihood_settings == {"num_mixtures": 3, "bits": 1, "dim": 1}
    x = data.load_dataset("shapes", channels=3, num_train=4, num_test=4).test[:4]
    assert model.log_likelihood(model.decode(model.encode(x)[0]), x).isfinite().all()
    assert model.sample(2).shape == (2, 3, 28, 28)


def test_the_levels_reach_the_model_as_they_are():
    g = torch.Generator().manual_seed(0)
    grey = data.Dataset("mnist", *(torch.randint(0, 256, (n, 1, 2, 2), generator=g, dtype=torch.uint8)
                                   for n in (30, 10, 10)), dynamic=True)
    t = Targets("discretized_logistic_mixture", grey, grey=True, seed=0)
    x = grey.train[:4]
    assert t.kind == "levels" and t.bits == 8 and t.batch(x, 0, 0) is x  # 8-bit levels, not dequantized
    assert t.split(grey, "test", 1) is grey.test
    torch.testing.assert_close(t.pixel_means(grey.train), grey.train.double().mean(0) / 255)
    assert t.bits_per_dim(4 * math.log(2) * 3, (1, 2, 2)) == pytest.approx(3.0)
    binary = Targets("discretized_logistic_mixture", grey, grey=False, seed=0)
    assert binary.bits == 1 and set(binary.split(grey, "test", 1).unique().tolist()) <= {0, 1}


@pytest.mark.parametrize("argv,message", [
    (["--mixtures", "3"], "--mixtures is for --likelihood discretized-logistic-mixture"),
    (["--likelihood", NAME, "--data", "mnist"], "add --grey"),
])
def test_bad_settings(argv, message, tmp_path, capsys):
    status = train.main(["--no-progress", "--out", str(tmp_path / "out"), *argv])
    assert status == 2 and message in capsys.readouterr().err
