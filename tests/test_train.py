"""python -m fastvae.train: a short run learns and writes its files; --resume reproduces an
unbroken run; DDP with two CPU ranks; fused vs reference on the real binarized MNIST."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest
import torch

from fastvae import train

ROOT = pathlib.Path(__file__).resolve().parents[1]
# tiny and fast: 384 training images of 28x28 shapes, 6 steps per epoch
SMALL = ["--data", "shapes", "--num-train", "384", "--num-test", "96", "--batch-size", "64", "--hidden", "64",
         "--latent-dim", "8", "--eval-samples", "8", "--no-progress", "--lr", "3e-3"]


def run(out, *extra):
    code = train.main([*SMALL, "--out", str(out), *extra])
    assert code == 0
    return json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else None


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_short_run_learns_and_writes_its_files(tmp_path):
    summary = run(tmp_path, "--epochs", "3", "--kl-warmup", "4", "--warmup-steps", "2")
    metrics = lines(tmp_path / "metrics.jsonl")
    assert [m["epoch"] for m in metrics] == [1, 2, 3] and metrics[-1]["step"] == 18
    assert metrics[-1]["train_neg_elbo"] < metrics[0]["train_neg_elbo"] - 5
    assert metrics[-1]["valid_neg_elbo"] < metrics[0]["valid_neg_elbo"]
    assert metrics[0]["beta"] == 1.0 and metrics[-1]["examples"] == 18 * 64
    for m in metrics:  # the negative ELBO has beta = 1; the loss optimised had the warm-up's beta
        assert m["train_neg_elbo"] == pytest.approx(m["train_kl"] - m["train_log_likelihood"])
    assert metrics[0]["train_loss"] < metrics[0]["train_neg_elbo"]  # beta < 1 during the warm-up
    for key in ("test_neg_elbo", "test_nll", "examples_per_s"):
        assert summary[key] > 0, key
    # the IWAE bound is tighter than the ELBO (same model, many more samples)
    assert summary["test_nll"] < summary["test_neg_elbo"]
    assert summary["config"]["batch_size"] == 64 and summary["config"]["fused"] is True
    assert summary["backend"] == "triton"
    for png in ("samples.png", "reconstructions.png", "loss.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert (tmp_path / train.CHECKPOINT).exists() and not (tmp_path / f"{train.CHECKPOINT}.tmp").exists()


def test_resume_gives_the_unbroken_run(tmp_path):
    common = ("--epochs", "2", "--no-plots", "--schedule", "cosine", "--save-every", "4")
    whole = run(tmp_path / "whole", *common)
    # stopped mid-epoch (step 5 of 12), then killed while writing a checkpoint: the partial
    # temporary file must be ignored
    assert run(tmp_path / "parts", *common, "--stop-after", "5") is None
    assert not (tmp_path / "parts" / "summary.json").exists()
    (tmp_path / "parts" / f"{train.CHECKPOINT}.tmp").write_bytes(b"half a checkpoint")
    resumed = run(tmp_path / "parts", *common, "--resume")
    for key in ("test_neg_elbo", "test_nll", "steps", "examples"):
        assert resumed[key] == whole[key], key
    def same(path):  # everything but the timing
        return [{k: v for k, v in m.items() if k != "examples_per_s"} for m in lines(path / "metrics.jsonl")]
    assert same(tmp_path / "parts") == same(tmp_path / "whole")
    a = torch.load(tmp_path / "whole" / train.CHECKPOINT, weights_only=False)["model"]
    b = torch.load(tmp_path / "parts" / train.CHECKPOINT, weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_settings_and_data_errors(tmp_path, capsys, monkeypatch):
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
    (tmp_path / "file").write_text("")
    assert train.main([*SMALL, "--out", str(tmp_path / "file" / "run")]) == 2
    assert train.main([*SMALL, "--out", str(tmp_path / "c"), "--arch", "conv", "--conv-channels", "4,8"]) == 2
    assert "--hidden is for --arch mlp" in capsys.readouterr().err
    monkeypatch.delenv("FASTVAE_DATA_DIR", raising=False)
    assert train.main(["--data", "binarized-mnist", "--out", str(tmp_path / "m")]) == 2
    assert "FASTVAE_DATA_DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--hidden", "400,0"])
    for bad in (["--batch-size", "0"], ["--lr", "inf"], ["--beta", "nan"], ["--beta", "-1"], ["--hidden", ""],
                ["--hidden", "400,,200"], ["--device", "tpu:0"], ["--device", "nonsense"]):
        with pytest.raises(SystemExit):
            train.main(bad)


def test_divergence_is_an_error(tmp_path, capsys, monkeypatch):
    real = train.Objective.forward

    def nan_loss(self, x, beta):
        terms = real(self, x, beta)
        return terms._replace(loss=terms.loss * float("nan"))

    monkeypatch.setattr(train.Objective, "forward", nan_loss)
    assert train.main([*SMALL, "--out", str(tmp_path), "--epochs", "1", "--no-plots"]) == 1
    assert "diverged" in capsys.readouterr().err


def test_learning_rate_rules():
    args = train.build_parser().parse_args(["--batch-size", "512", "--lr", "1e-3", "--warmup-steps", "10",
                                            "--schedule", "cosine"])
    assert train.scaled_lr(args, world=2) == pytest.approx(1e-3 * 8 ** 0.5)
    args.lr_scaling = "linear"
    assert train.scaled_lr(args, world=2) == pytest.approx(8e-3)
    assert train.lr_factor(args, 0, 110) == pytest.approx(0.1)
    assert train.lr_factor(args, 10, 110) == pytest.approx(1.0)
    assert train.lr_factor(args, 60, 110) == pytest.approx(0.5)
    args.kl_warmup, args.beta = 4, 2.0
    assert [train.kl_weight(args, s) for s in range(5)] == [0.5, 1.0, 1.5, 2.0, 2.0]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(out, *extra):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "fastvae.train", *SMALL, "--epochs", "2", "--out", str(out), "--no-plots", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_ddp_two_cpu_ranks(tmp_path):
    torchrun(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    metrics = lines(tmp_path / "metrics.jsonl")
    assert summary["config"]["world_size"] == 2
    # each rank takes its own 3 batches of 64 per epoch: 6 steps, 2 * 6 * 64 examples
    assert summary["steps"] == 6 and summary["examples"] == 2 * 6 * 64
    assert len(metrics) == 2 and metrics[1]["train_neg_elbo"] < metrics[0]["train_neg_elbo"]
    assert summary["test_nll"] < summary["test_neg_elbo"]
    # stopped in the middle of the first epoch and resumed: the same run, metrics included
    # (each rank's partial sums of the epoch are kept)
    torchrun(tmp_path / "parts", "--stop-after", "2")
    torchrun(tmp_path / "parts", "--resume")
    resumed = json.loads((tmp_path / "parts" / "summary.json").read_text())
    assert resumed["test_nll"] == summary["test_nll"]

    def same(path):
        return [{k: v for k, v in m.items() if k != "examples_per_s"} for m in lines(path / "metrics.jsonl")]
    assert same(tmp_path / "parts") == same(tmp_path)


DATA_DIR = os.environ.get("FASTVAE_DATA_DIR", "")
HAS_MNIST = bool(DATA_DIR) and os.path.exists(os.path.join(DATA_DIR, "binarized_mnist.npz"))


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MNIST, reason="set FASTVAE_DATA_DIR to a directory holding binarized_mnist.npz "
                                          "(the project's CI uses ../shared/data)")
def test_binarized_mnist_fused_matches_reference(tmp_path):
    """A brief run on real data: the fused kernels and fastvae.reference train the same model to
    the same test NLL (their noise differs, so the runs differ by a fraction of a nat)."""
    args = ["--data", "binarized-mnist", "--num-train", "6000", "--num-test", "500", "--batch-size", "200",
            "--hidden", "200", "--latent-dim", "20", "--epochs", "2", "--lr", "3e-3", "--lr-scaling", "none",
            "--eval-samples", "20", "--no-progress", "--no-plots"]
    assert train.main([*args, "--out", str(tmp_path / "fused")]) == 0
    assert train.main([*args, "--out", str(tmp_path / "ref"), "--no-fused"]) == 0
    fused, ref = (json.loads((tmp_path / k / "summary.json").read_text()) for k in ("fused", "ref"))
    assert fused["backend"] == "triton" and ref["backend"] == "reference"
    assert 80 < ref["test_nll"] < 250, ref["test_nll"]  # it learned something, and nothing blew up
    assert abs(fused["test_nll"] - ref["test_nll"]) < 1.0, (fused["test_nll"], ref["test_nll"])
