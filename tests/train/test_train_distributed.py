"""fastvae.train.distributed: DDP with two CPU ranks (Gloo) through torchrun; a run stopped by
--stop-after, or by Ctrl-C at torchrun, and resumed matches the unbroken one."""

import json
import os
import shlex
import socket
import subprocess
import sys

import pytest
import torch

from fastvae.train.checkpoint import CHECKPOINT

from train_helpers import interrupt, lines, ROOT, same_metrics, SMALL, start_paused


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_launcher():
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
            "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]


def ddp_argv(out, *extra):
    return [*SMALL, "--epochs", "2", "--out", str(out), "--no-plots", *extra]


def torchrun(out, *extra):
    cmd = [*torchrun_launcher(), "-m", "fastvae.train", *ddp_argv(out, *extra)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The unbroken DDP run's directory."""
    out = tmp_path_factory.mktemp("whole")
    torchrun(out)
    return out


@pytest.mark.slow
def test_ddp_two_cpu_ranks(tmp_path, whole):
    summary = json.loads((whole / "summary.json").read_text())
    metrics = lines(whole / "metrics.jsonl")
    assert summary["config"]["world_size"] == 2
    # each rank takes its own 3 batches of 64 per epoch: 6 steps, 2 * 6 * 64 examples
    assert summary["steps"] == 6 and summary["examples"] == 2 * 6 * 64
    assert len(metrics) == 2 and metrics[1]["train_neg_elbo"] < metrics[0]["train_neg_elbo"]
    assert summary["test_nll"] < summary["test_neg_elbo"]
    # stopped in the middle of the first epoch and resumed: the same run, metrics included
    # (each rank's partial sums of the epoch are kept)
    torchrun(tmp_path, "--stop-after", "2")
    torchrun(tmp_path, "--resume")
    resumed = json.loads((tmp_path / "summary.json").read_text())
    assert resumed["test_nll"] == summary["test_nll"]
    assert same_metrics(tmp_path) == same_metrics(whole)


@pytest.mark.slow
def test_ddp_ctrl_c(tmp_path, whole):
    """Ctrl-C at torchrun: it passes SIGINT on to both workers. Rank 0 gets it after step 1,
    rank 1 wherever it is then; they agree on step 2, rank 0 writes, both leave with 130."""
    out, statuses = tmp_path / "run", tmp_path / "status"
    statuses.mkdir()
    argv = ddp_argv(out)
    _, err = interrupt(*start_paused(torchrun_launcher(), argv, 1, statuses))  # torchrun's own status: 1
    assert [(statuses / f"rank{r}").read_text() for r in (0, 1)] == ["130", "130"], err[-3000:]
    assert f"interrupted at step 2 (epoch 1, batch 2 of 3); saved {out / CHECKPOINT}\n" in err, err[-3000:]
    assert (f"continue with: torchrun --nproc_per_node 2 -m fastvae.train {shlex.join([*argv, '--resume'])}\n"
            in err), err[-3000:]
    assert "SIGKILL" not in err, err[-3000:]  # no worker had to be killed
    saved = torch.load(out / CHECKPOINT, weights_only=True)
    assert (saved["step"], saved["epoch"], saved["batch"]) == (2, 0, 2)
    torchrun(out, "--resume")
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["test_nll"] == json.loads((whole / "summary.json").read_text())["test_nll"]
    assert same_metrics(out) == same_metrics(whole)
