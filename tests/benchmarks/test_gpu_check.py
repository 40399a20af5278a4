"""benchmarks/gpu_check.sh: without a GPU it says so and exits 2; its summary files."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch

ROOT = pathlib.Path(__file__).parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the check would run")
@pytest.mark.parametrize("cmd", [["bash", "benchmarks/gpu_check.sh"], [sys.executable, "benchmarks/gpu_check.py"]])
def test_without_a_gpu_it_says_so_and_exits_2(cmd, tmp_path):
    env = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run(cmd + [str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "no CUDA GPU" in out.stderr
    assert not (tmp_path / "out").exists()


def test_summary_files(tmp_path):
    from benchmarks.gpu import stages as gpu_cases

    summary = dict(device="NVIDIA H200", date="2026-11-30", torch="2.11", triton="3.6", python="3.12",
                   copy_bandwidth_gbs=4300.0, stages=[dict(stage="headline", ok=True, seconds=50.0, note=None)],
                   cases=[dict(op="elbo_loss_fwd_bwd", B=65536, D=784, latent=64, logits_dtype="float32",
                               target_dtype="uint8", impl=impl, ms=ms, floor_bytes=469762048,
                               pct_of_copy_bandwidth=pct, peak_mem_mb=900.0, status="ok", error=None,
                               checked_against="eager")
                          for impl, ms, pct in (("eager", 1.0, None), ("compile", 0.3, None), ("fastvae", 0.12, 91.0))])
    gpu_cases.write(summary, tmp_path)
    back = json.loads((tmp_path / "summary.json").read_text())
    assert set(back) >= {"device", "date", "torch", "triton", "copy_bandwidth_gbs", "cases"}
    for c in back["cases"]:
        assert set(c) >= {"op", "B", "D", "latent", "logits_dtype", "target_dtype", "impl", "ms", "floor_bytes",
                          "pct_of_copy_bandwidth", "peak_mem_mb"}
    md = (tmp_path / "summary.md").read_text()
    assert "NVIDIA H200, 2026-11-30" in md and "| elbo_loss_fwd_bwd | 65536 | - | 784 |" in md


def test_every_measured_configuration_is_a_benchmark_case():
    from benchmarks.gpu import stages as gpu_cases
    from benchmarks.harness import cases

    for c in [c for c, _ in cases.HEADLINE] + gpu_cases.SMALL + gpu_cases.OBJECTIVES:
        assert c.op in cases.CASES and c.op in gpu_cases.OPS
        if "fwd+bwd" in cases.CASES[c.op].modes:
            assert cases.least_bytes(c, "fwd+bwd") > 0
