"""fastvae.train.checkpoint: --resume reproduces an unbroken run, and refuses what would not
continue the same run."""

import pytest
import torch

from fastvae import train
from fastvae.train.checkpoint import CHECKPOINT
from fastvae.train.loop import TrainingLoop

from train_helpers import run, same_metrics, SMALL


def test_resume_gives_the_unbroken_run(tmp_path):
    common = ("--epochs", "2", "--no-plots", "--schedule", "cosine", "--save-every", "4")
    whole = run(tmp_path / "whole", *common)
    # stopped mid-epoch (step 5 of 12), then killed while writing a checkpoint: the partial
    # temporary file must be ignored
    assert run(tmp_path / "parts", *common, "--stop-after", "5") is None
    assert not (tmp_path / "parts" / "summary.json").exists()
    (tmp_path / "parts" / f"{CHECKPOINT}.tmp").write_bytes(b"half a checkpoint")
    resumed = run(tmp_path / "parts", *common, "--resume")
    for key in ("test_neg_elbo", "test_nll", "steps", "examples"):
        assert resumed[key] == whole[key], key
    assert same_metrics(tmp_path / "parts") == same_metrics(tmp_path / "whole")
    a = torch.load(tmp_path / "whole" / CHECKPOINT, weights_only=False)["model"]
    b = torch.load(tmp_path / "parts" / CHECKPOINT, weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_run(tmp_path, capsys):
    run(tmp_path, "--epochs", "1", "--no-plots", "--stop-after", "1")
    assert train.main([*SMALL, "--out", str(tmp_path)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert train.main([*SMALL, "--out", str(tmp_path), "--resume", "--latent-dim", "9"]) == 2
    assert "latent_dim" in capsys.readouterr().err
    for changed in (("--schedule", "cosine"), ("--beta", "2"), ("--kl-warmup", "3"), ("--num-test", "50")):
        assert train.main([*SMALL, "--out", str(tmp_path), "--resume", *changed]) == 2
        assert "differ" in capsys.readouterr().err
    assert train.main([*SMALL, "--out", str(tmp_path / "new"), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """An unbroken run of two epochs: its directory and summary."""
    out = tmp_path_factory.mktemp("whole")
    return out, run(out, "--epochs", "2", "--no-plots")


def _same_as_whole(out, summary, whole):
    whole_out, whole_summary = whole
    for key in ("test_neg_elbo", "test_nll", "steps", "examples"):
        assert summary[key] == whole_summary[key], key
    assert same_metrics(out) == same_metrics(whole_out)


def test_stopped_at_the_end_of_an_epoch_resumes(tmp_path, whole):
    """--stop-after on an epoch's last batch: the epoch is finished (validation, metrics) before
    stopping, and --resume goes on with the next (it used to fail with UnboundLocalError)."""
    assert run(tmp_path, "--epochs", "2", "--no-plots", "--stop-after", "6") is None  # 6 steps per epoch
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert (saved["epoch"], saved["batch"], saved["step"]) == (1, 0, 6)
    _same_as_whole(tmp_path, run(tmp_path, "--epochs", "2", "--no-plots", "--resume"), whole)


def test_a_checkpoint_after_an_epochs_last_batch_resumes(tmp_path, whole, monkeypatch):
    """What earlier versions wrote at --stop-after on an epoch's last batch (all its batches
    done, not its end) resumes too: the epoch ends, then the next begins."""
    with monkeypatch.context() as m:
        m.setattr(TrainingLoop, "_end_epoch", lambda loop, tally: loop._checkpoint_mid_epoch(tally, 6))
        run(tmp_path, "--epochs", "2", "--no-plots", "--stop-after", "6")
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert (saved["epoch"], saved["batch"], saved["step"]) == (0, 6, 6)
    _same_as_whole(tmp_path, run(tmp_path, "--epochs", "2", "--no-plots", "--resume"), whole)
