"""fastvae.train.loop: a loss that turns NaN stops training with an error; the first batch must
hold targets the likelihood takes, checked without touching the random streams."""

import pytest
import torch

from fastvae import data, train
from fastvae.models import MLPVAE
from fastvae.train import step

from train_helpers import SMALL


def test_divergence_is_an_error(tmp_path, capsys, monkeypatch):
    real = step.Objective.forward

    def nan_loss(self, x, beta):
        terms = real(self, x, beta)
        return terms._replace(loss=terms.loss * float("nan"))

    monkeypatch.setattr(step.Objective, "forward", nan_loss)
    assert train.main([*SMALL, "--out", str(tmp_path), "--epochs", "1", "--no-plots"]) == 1
    assert "diverged" in capsys.readouterr().err


def test_the_first_batch_must_hold_0_1_targets(tmp_path, capsys, monkeypatch):
    """Batches of raw grey levels (0/255) are a one-line error before training, not ~5000 nats."""
    real = data.DeviceLoader.epoch
    monkeypatch.setattr(data.DeviceLoader, "epoch", lambda self, *a: (x * 255 for x in real(self, *a)))
    assert train.main([*SMALL, "--out", str(tmp_path), "--epochs", "1", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "the first training batch does not fit the bernoulli likelihood" in err and "255" in err
    assert err.count("\n") == 2  # header, error


@pytest.mark.parametrize("likelihood, bad", [("bernoulli", 2), ("continuous_bernoulli", 1.5),
                                             ("gaussian", float("nan"))])
def test_validate_first_batch(likelihood, bad):
    model = MLPVAE((1, 2, 2), hidden=4, latent_dim=2, likelihood=likelihood)
    good = torch.tensor([[0, 1, 1, 0]], dtype=torch.uint8)
    state = torch.get_rng_state()
    step.validate_first_batch(model, good)
    assert torch.equal(torch.get_rng_state(), state)  # no noise drawn: a resumed run stays the unbroken one
    x = good.float() if likelihood != "bernoulli" else good.clone()
    x[0, 1] = bad
    with pytest.raises(ValueError, match=f"does not fit the {likelihood} likelihood"):
        step.validate_first_batch(model, x)
