"""fastvae.train.distributed: DDP with two CPU ranks (Gloo) through torchrun, and a stopped and
resumed DDP run that matches the unbroken one."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

from train_helpers import SMALL, lines, same_metrics

ROOT = pathlib.Path(__file__).resolve().parents[1]


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
    assert same_metrics(tmp_path / "parts") == same_metrics(tmp_path)
