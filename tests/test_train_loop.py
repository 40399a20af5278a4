"""fastvae.train.loop: a loss that turns NaN stops training with an error; the first batch must
hold the 0/1 targets the likelihood takes."""

import pytest
import torch

from fastvae import data, train
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
    assert "the first training batch holds pixel values up to 255" in err and err.count("\n") == 2  # header, error


def test_check_targets():
    step.check_targets(torch.tensor([[0, 1, 1]], dtype=torch.uint8))
    with pytest.raises(ValueError, match="up to 2"):
        step.check_targets(torch.tensor([[0, 2]], dtype=torch.uint8))
    with pytest.raises(TypeError, match="uint8"):
        step.check_targets(torch.zeros(2, 3))
