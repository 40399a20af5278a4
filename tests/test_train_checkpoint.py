"""fastvae.train.checkpoint: --resume reproduces an unbroken run, and refuses what would not
continue the same run."""

import torch

from fastvae import train
from fastvae.train.checkpoint import CHECKPOINT
from train_helpers import SMALL, run, same_metrics


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
