"""The kernels' sm_90 machine code (H100/H200), counted without a GPU: benchmarks/sass_report.py.

The interpreter runs the kernels' math on CPU but never lowers them to GPU code. The report
compiles every variant the library launches through its own launchers, with the specialisation
a real launch gets, and counts the SASS: this test holds the kernels to their budgets.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPORT = pathlib.Path(__file__).parents[2] / "benchmarks" / "sass_report.py"
HOT = ("bernoulli_forward_grad", "bernoulli_forward", "gaussian_forward", "gaussian_backward")
LL_FORWARD_ONLY = ("bernoulli_forward", "continuous_bernoulli_forward", "gaussian_ll_forward")
# compute-bound (benchmarks/NOTES.md, "the count likelihoods": 160-600 instructions per element):
# narrower accesses of fewer elements per thread keep their registers down at no cost in time
COMPUTE_BOUND = ("count_ll_forward_grad", "softmax_counts")


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    try:
        from triton import knobs  # noqa: F401
    except ImportError as e:  # pragma: no cover
        pytest.skip(f"this triton cannot compile ahead of time here: {e}")
    out = tmp_path_factory.mktemp("sass") / "report.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, str(REPORT), "--json", str(out)], env=env, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_every_variant_compiles_and_meets_its_budget(rows):
    kernels = {r["kernel"] for r in rows}
    assert set(HOT) <= kernels and "bernoulli_backward" in kernels
    assert {"continuous_bernoulli_forward_grad", "gaussian_ll_forward_grad"} <= kernels
    for r in rows:
        assert r["stack_bytes"] == 0, f"{r['kernel']} {r['variant']}: local memory"
        if r["budget"] is not None:
            assert r["instructions_per_element"] <= r["budget"], r


@pytest.mark.slow
def test_streamed_fp32_tensors_move_16_bytes_per_access(rows):
    for r in rows:
        if r["logits_dtype"] == "fp32" and r["kernel"] not in COMPUTE_BOUND:
            assert r["widest_load_bits"] == 128, r
            sums_only = r["kernel"] in LL_FORWARD_ONLY or "kl only" in r["variant"]  # they store (B,) sums only
            if not sums_only:
                assert r["widest_store_bits"] == 128, r


@pytest.mark.slow
def test_hot_kernels_leave_room_for_four_blocks_of_256_threads(rows):
    for r in rows:
        if r["kernel"] in HOT and r["logits_dtype"] in ("fp32", "bf16"):
            # with a learned prior the sample + KL forward holds four quarters of four inputs: 64
            # registers on triton 3.9, 72 on 3.6 (three blocks of 256 threads; benchmarks/NOTES.md)
            assert r["registers"] <= (72 if "learned prior" in r["variant"] else 64), r
