"""fastvae.train.loop: a loss that turns NaN stops training with an error."""

from fastvae import train
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
