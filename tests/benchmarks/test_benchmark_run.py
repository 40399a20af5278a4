"""``benchmarks/run.py`` (``benchmarks/harness/run.py``): the CPU quick run end to end, and the
command's arguments, stops and failures in-process."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch

import fastvae
from benchmarks.harness import run
from benchmarks.harness.case_types import TRAIN_IMPLS
from fastvae import _backend

from bench_helpers import check_records

ROOT = pathlib.Path(__file__).parents[2]
RUN = ROOT / "benchmarks" / "run.py"


@pytest.mark.slow
def test_quick_cpu_run_end_to_end(tmp_path):
    # a clean environment: the real kernels are not timed on CPU, and the script must say so
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "FASTVAE_BACKEND")}
    cmd = [sys.executable, str(RUN), "--quick", "--device", "cpu", "--threads", "1", "--out", str(tmp_path),
           "--only", "reparameterize_kl,train_step"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the Triton kernels are NOT timed on this machine" in proc.stdout
    assert "the ratios are noisy" in proc.stdout and "fv/eager (range)" in proc.stdout
    [json_path] = tmp_path.glob("cpu-*.json")
    assert json_path.name.endswith("-reparameterize_kl-train_step-quick.json")  # a partial run says so
    meta = json.loads(json_path.read_text())
    assert meta["device"] == "cpu" and meta["device_slug"] == "cpu"
    assert meta["triton_kernels_timed"] is False and "NOT timed" in meta["note"]
    assert meta["memory_measured"] is False and meta["quick"] is True and meta["failures"] == []
    assert meta["torch_version"] == torch.__version__ and meta["python_version"].count(".") == 2
    assert meta["date"] in json_path.name and "--quick" in meta["command"]
    assert set(meta["copy_bandwidth"]) == {"bytes_copied", "bytes_moved", "median_ms", "gb_per_s"}
    assert meta["copy_bandwidth"]["gb_per_s"] > 0
    for key in ("triton_version", "git_commit", "timer", "least_bytes_formulas", "tolerances", "cpu_threads"):
        assert key in meta
    groups = check_records(meta["records"], meta["copy_bandwidth"]["gb_per_s"])
    assert {k[:2] for k in groups} == {("reparameterize_kl", "fwd"), ("reparameterize_kl", "bwd"),
                                      ("reparameterize_kl", "fwd+bwd"), ("train_step", "train")}
    assert {r["impl"] for r in meta["records"] if r["op"] == "train_step"} == set(TRAIN_IMPLS)
    assert all(r["peak_memory_bytes"] is None for r in meta["records"])  # no memory figures on CPU
    md = json_path.with_suffix(".md").read_text()
    assert "the Triton kernels are NOT timed on this machine" in md
    assert "## reparameterize_kl" in md and "## train_step" in md and "| fastvae ms |" in md
    plots = sorted(p.name for p in (tmp_path / f"{json_path.stem}-plots").glob("*.png"))
    assert plots == sorted(meta["plots"]) and len(plots) == 4


def test_a_wrong_result_aborts_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_backend, "INTERPRET", False)  # fastvae's CPU path: the reference
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    real = fastvae.bernoulli_log_likelihood
    monkeypatch.setattr(fastvae, "bernoulli_log_likelihood", lambda logits, x: real(logits, x) * 1.01)
    limit, threads = torch._dynamo.config.recompile_limit, torch.get_num_threads()
    code = run.main(["--quick", "--device", "cpu", "--only", "bernoulli_ll", "--out", str(tmp_path), "--no-plots"])
    assert code == 1
    err = capsys.readouterr().err
    assert "MISMATCH" in err and "ll differs from eager" in err
    # what ran before the mismatch is kept (here: nothing), with the reason
    (saved,) = tmp_path.glob("*.json")
    meta = json.loads(saved.read_text())
    assert meta["records"] == [] and "MISMATCH" in meta["aborted"] and meta["failures"] == [meta["aborted"]]
    # the run's settings do not outlive it
    assert fastvae.get_backend() == "triton" and torch._dynamo.config.recompile_limit == limit
    assert torch.get_num_threads() == threads


def test_the_interpreter_is_never_timed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_backend, "INTERPRET", True)
    assert run.main(["--quick", "--device", "cpu", "--out", str(tmp_path)]) == 1
    assert "TRITON_INTERPRET" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_cpu_run_takes_one_thread_unless_told():
    # two --quick runs of a loaded 2-core machine agreed on every ratio's range with one thread, not with two
    assert run.parse_args(["--device", "cpu"]).threads == 1
    assert run.parse_args(["--device", "cpu", "--threads", "2"]).threads == 2


@pytest.mark.parametrize("args", [["--only", "nope"], ["--dtype", "float64"], ["--only", "elbo_loss,bad"],
                                  ["--threads", "0"], ["--device", "tpu"]])
def test_bad_arguments(args, capsys):
    with pytest.raises(SystemExit) as e:
        run.main(args)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err


def test_the_timed_path_with_drawn_noise_is_checked_too(tmp_path, monkeypatch, capsys):
    # wrong only when the op draws its own noise (eps=None), as in every timed call
    monkeypatch.setattr(_backend, "INTERPRET", False)
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    real = fastvae.reparameterize_kl

    def wrong_when_drawing(mu, logvar, eps=None):
        z, kl = real(mu, logvar, eps=eps)
        return (z, kl * 1.01) if eps is None else (z, kl)

    monkeypatch.setattr(fastvae, "reparameterize_kl", wrong_when_drawing)
    code = run.main(["--quick", "--device", "cpu", "--only", "reparameterize_kl", "--out", str(tmp_path),
                     "--no-plots"])
    assert code == 1
    assert "kl (noise drawn in the op, as timed) differs" in capsys.readouterr().err


def test_max_batch_and_budget_bound_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setattr(_backend, "INTERPRET", False)
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    assert run.main(["--quick", "--device", "cpu", "--only", "bernoulli_ll", "--max-batch", "256",
                     "--out", str(tmp_path), "--no-plots"]) == 0
    (saved,) = tmp_path.glob("*.json")
    assert {r["batch"] for r in json.loads(saved.read_text())["records"]} == {256}
    saved.unlink()
    monkeypatch.setattr(run.time, "perf_counter", iter(range(0, 10**6, 3600)).__next__)  # an hour per call
    assert run.main(["--quick", "--device", "cpu", "--only", "bernoulli_ll", "--max-minutes", "1",
                     "--out", str(tmp_path), "--no-plots"]) == 0
    meta = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert "--max-minutes" in meta["stopped_early"]
