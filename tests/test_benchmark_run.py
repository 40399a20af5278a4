"""``benchmarks/run.py``: the CPU quick run end to end, and its pieces in-process."""

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest
import torch

import fastvae
from fastvae import _backend

# benchmarks/ modules: pytest.ini puts benchmarks/ on the path
import cases
import measure
import plots
import run
import timing
from case_types import IMPLS, TRAIN_IMPLS, Config
from cases import CASES

ROOT = pathlib.Path(__file__).parents[1]
RUN = ROOT / "benchmarks" / "run.py"
RECORD_KEYS = {"op", "mode", "impl", "batch", "dtype", "dim", "latent", "targets", "model", "status", "error",
               "median_ms", "examples_per_s", "peak_memory_bytes", "peak_memory_over_inputs_bytes",
               "checked_against", "least_bytes", "gb_per_s", "fraction_of_copy_bandwidth",
               "time_fastvae_over_eager", "time_fastvae_over_compile", "peak_memory_fastvae_over_eager",
               "peak_memory_fastvae_over_compile"}


def _check_records(records, copy_gbs):
    assert records
    groups = {}
    for r in records:
        assert set(r) == RECORD_KEYS, set(r) ^ RECORD_KEYS
        assert r["status"] == "ok", r
        assert r["impl"] in TRAIN_IMPLS and r["mode"] in CASES[r["op"]].modes
        assert math.isfinite(r["median_ms"]) and r["median_ms"] > 0
        assert r["examples_per_s"] == pytest.approx(r["batch"] / r["median_ms"] * 1e3)
        assert r["checked_against"] == ("baseline" if r["impl"] == "eager" else "eager")
        cfg = Config(**{k: r[k] for k in ("op", "batch", "dtype", "dim", "latent", "targets", "model")})
        assert r["least_bytes"] == cases.least_bytes(cfg, r["mode"])
        if r["least_bytes"] is not None:
            assert r["gb_per_s"] == pytest.approx(r["least_bytes"] / r["median_ms"] / 1e6)
            assert r["fraction_of_copy_bandwidth"] == pytest.approx(r["gb_per_s"] / copy_gbs)
        key = tuple(r[k] for k in ("op", "mode", "batch", "dtype", "dim", "latent", "targets", "model"))
        groups.setdefault(key, {})[r["impl"]] = r
    for impls in groups.values():
        assert {"eager", "compile", "fastvae"} <= set(impls)
        ms = {i: r["median_ms"] for i, r in impls.items()}
        for r in impls.values():  # the configuration's ratios, in every record of it
            assert r["time_fastvae_over_eager"] == pytest.approx(ms["fastvae"] / ms["eager"])
            assert r["time_fastvae_over_compile"] == pytest.approx(ms["fastvae"] / ms["compile"])
    return groups


@pytest.mark.slow
def test_quick_cpu_run_end_to_end(tmp_path):
    # a clean environment: the real kernels are not timed on CPU, and the script must say so
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "FASTVAE_BACKEND")}
    cmd = [sys.executable, str(RUN), "--quick", "--device", "cpu", "--threads", "1", "--out", str(tmp_path),
           "--only", "reparameterize_kl,train_step"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the Triton kernels are NOT timed on this machine" in proc.stdout
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
    groups = _check_records(meta["records"], meta["copy_bandwidth"]["gb_per_s"])
    assert {k[:2] for k in groups} == {("reparameterize_kl", "fwd"), ("reparameterize_kl", "bwd"),
                                      ("reparameterize_kl", "fwd+bwd"), ("train_step", "train")}
    assert {r["impl"] for r in meta["records"] if r["op"] == "train_step"} == set(TRAIN_IMPLS)
    assert all(r["peak_memory_bytes"] is None for r in meta["records"])  # no memory figures on CPU
    md = json_path.with_suffix(".md").read_text()
    assert "the Triton kernels are NOT timed on this machine" in md
    assert "## reparameterize_kl" in md and "## train_step" in md and "| fastvae ms |" in md
    plots = sorted(p.name for p in (tmp_path / f"{json_path.stem}-plots").glob("*.png"))
    assert plots == sorted(meta["plots"]) and len(plots) == 4


@pytest.mark.parametrize("op, config", [
    ("bernoulli_ll", dict(dim=50, targets="float")),
    ("bernoulli_ll", dict(dim=50, targets="uint8")),
    ("elbo_loss", dict(dim=50, latent=3, targets="uint8")),
])
def test_other_ops_in_process(op, config, device, monkeypatch):
    # Here fastvae runs the real kernels (Triton's interpreter on CPU): the check that precedes
    # the timing compares them with eager PyTorch; the times mean nothing. torch.compile is
    # replaced by the function itself to save compile time (the subprocess run compiles).
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    timer = timing.CpuTimer(warmup=0, min_reps=1, max_reps=1, budget_s=0) if device.type == "cpu" else \
        timing.CudaTimer(quick=True)
    c = Config(op, 8, "float32", **config)
    results = measure.bench_config(c, device, timer)
    records = measure.make_records(c, results, copy_gbs=10.0)
    groups = _check_records(records, 10.0)
    assert len(groups) == len(CASES[op].modes)
    assert {r["impl"] for r in records} == set(IMPLS)


def test_a_wrong_result_aborts_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_backend, "INTERPRET", False)  # fastvae's CPU path: the reference
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    real = fastvae.bernoulli_log_likelihood
    monkeypatch.setattr(fastvae, "bernoulli_log_likelihood", lambda l, x: real(l, x) * 1.01)
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


def test_plots_are_optional(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    assert plots.plot({"records": []}, tmp_path) == []
    assert "matplotlib is not installed" in capsys.readouterr().out


def test_the_interpreter_is_never_timed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_backend, "INTERPRET", True)
    assert run.main(["--quick", "--device", "cpu", "--out", str(tmp_path)]) == 1
    assert "TRITON_INTERPRET" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["--only", "nope"], ["--dtype", "float64"], ["--only", "elbo_loss,bad"],
                                  ["--threads", "0"], ["--device", "tpu"]])
def test_bad_arguments(args, capsys):
    with pytest.raises(SystemExit) as e:
        run.main(args)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err


def test_least_bytes_table_covers_every_timed_mode():
    for name, op in CASES.items():
        for mode in op.modes:
            c = Config(name, 4, "bfloat16", dim=10, latent=3, targets="uint8", model="mlp")
            nbytes = cases.least_bytes(c, mode)
            assert (nbytes is None) == (name == "train_step")
    # bfloat16 logits, uint8 targets: 2 + 1 bytes read, 2 written per element; 8 bytes per row
    c = Config("bernoulli_ll", 4, "bfloat16", dim=10, targets="uint8")
    assert cases.least_bytes(c, "fwd+bwd") == 4 * (10 * 5 + 8)


def test_sweep_includes_the_headline_configurations():
    memory = 141 * 2**30  # an H200
    elbo = [c for fam in cases.configs("elbo_loss", "gpu", ["float32", "bfloat16"], memory) for c in fam]
    for dtype in ("float32", "bfloat16"):
        assert Config("elbo_loss", 65536, dtype, dim=784, latent=64, targets="uint8") in elbo
    rkl = [c for fam in cases.configs("reparameterize_kl", "gpu", ["float32"], memory) for c in fam]
    for batch in (256, 65536):
        assert Config("reparameterize_kl", batch, "float32", latent=64) in rkl
    assert max(c.batch for c in rkl) >= 2**22  # up to sizes that fill the GPU's memory


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


def test_least_bytes_formulas():
    f32 = dict(batch=1000, dtype="float32")
    # Gaussian: mu, logvar read and z written (4 B each), kl written (4 B per row)
    assert cases.least_bytes(Config("reparameterize_kl", latent=64, **f32), "fwd") == 1000 * (3 * 64 * 4 + 4)
    # backward: mu, logvar, grad_z read, grad_mu, grad_logvar written; grad_kl read per row
    assert cases.least_bytes(Config("reparameterize_kl", latent=64, **f32), "bwd") == 1000 * (5 * 64 * 4 + 4)
    # bf16 logits, uint8 targets: logits 2 B + targets 1 B read, grad 2 B written; ll and grad_ll per row
    c = Config("bernoulli_ll", batch=1000, dtype="bfloat16", dim=784, targets="uint8")
    assert cases.least_bytes(c, "fwd+bwd") == 1000 * (784 * 5 + 8)
    c = Config("elbo_loss", dim=784, latent=64, targets="uint8", **f32)
    assert cases.least_bytes(c, "fwd+bwd") == 1000 * (784 * 9 + 8) + 1000 * (8 * 64 * 4 + 8)


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
