"""``benchmarks/harness/measure.py``: one configuration checked, timed and turned into records, in-process."""

import pytest
import torch

from benchmarks.harness import measure, timing
from benchmarks.harness.case_types import Config, IMPLS
from benchmarks.harness.cases import CASES

from bench_helpers import check_records


@pytest.mark.parametrize("op, config", [
    ("bernoulli_ll", dict(dim=50, targets="float")),
    ("bernoulli_ll", dict(dim=50, targets="uint8")),
    ("elbo_loss", dict(dim=50, latent=3, targets="uint8")),
    ("continuous_bernoulli_ll", dict(image="2x3x5", targets="float")),
    ("gaussian_ll", dict(dim=50, targets="float")),
    ("iwae_loss", dict(samples=3, dim=20, latent=3, targets="uint8")),
    ("dreg_loss", dict(samples=2, dim=20, latent=3, targets="uint8")),
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
    groups = check_records(records, 10.0)
    assert len(groups) == len(CASES[op].modes)
    assert {r["impl"] for r in records} == set(IMPLS)
