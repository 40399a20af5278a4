"""pytest-benchmark suite: the ops of ``benchmarks/run.py`` at one size each, for tracking
regressions between commits on one machine.

    python -m pytest benchmarks/harness/test_bench.py --benchmark-only                       # run
    python -m pytest benchmarks/harness/test_bench.py --benchmark-only --benchmark-autosave  # save as a baseline
    python -m pytest benchmarks/harness/test_bench.py --benchmark-only --benchmark-compare   # compare with the last one

Not collected by the normal test run (pyproject.toml's pytest settings point at ``tests/``). Each benchmark is
grouped by op, mode and shape, so eager, compile and fastvae appear side by side. Before it is
timed, each implementation is checked against eager PyTorch (same noise, float64 comparison).
On CUDA every timed call ends with ``torch.cuda.synchronize()`` (the forward before a timed
backward is synchronized in its untimed setup). Without a GPU the sizes are small and the
``fastvae`` rows time fastvae's CPU path, its PyTorch reference: the Triton kernels are not
timed there, and never through Triton's interpreter (those tests skip when it is on).
"""

import pytest
import torch

import fastvae
from benchmarks.harness.case_types import Config, PEERS
from benchmarks.harness.cases import CASES, least_bytes
from benchmarks.harness.checks import compare
from fastvae import _backend

CUDA = torch.cuda.is_available()
DEVICE = torch.device("cuda" if CUDA else "cpu")
B = {"train_step": 4096 if CUDA else 256, "iwae_loss": 4096 if CUDA else 256,
     "dreg_loss": 4096 if CUDA else 256}  # the batch per case; any other, the default
DEFAULT_B = 65536 if CUDA else 1024
# one size per case: the families tracked so far; any other case, its first quick GPU family
FAMILIES = {"bernoulli_ll": [dict(dim=784, targets="uint8"), dict(dim=784, targets="float")],
            "train_step": [dict(model="mlp")]}
CONFIGS = [Config(name, B.get(name, DEFAULT_B), "float32", **fam)
           for name, case in CASES.items() for fam in FAMILIES.get(name, case.sweeps["gpu_quick"][:1])]
PARAMS = [pytest.param(c, mode, impl, id=f"{c.op}-{mode}-{impl}-{c.label().replace(' ', '-')}")
          for c in CONFIGS for mode in CASES[c.op].modes for impl in CASES[c.op].impls]


@pytest.fixture(autouse=True)
def _fastvae_backend():
    if _backend.INTERPRET:
        pytest.skip("TRITON_INTERPRET is set: Triton's interpreter is never timed")
    previous = fastvae.get_backend()
    fastvae.set_backend("triton" if CUDA else "auto")
    torch._dynamo.reset()
    yield
    fastvae.set_backend(previous)


def _synced(fn):
    if not CUDA:
        return fn

    def call(*args):
        out = fn(*args)
        torch.cuda.synchronize()
        return out

    return call


@pytest.mark.parametrize("config, mode, impl", PARAMS)
def test_bench(benchmark, config, mode, impl):
    variants, names, tol = CASES[config.op].variants(config, DEVICE)
    check, runs = variants[impl]
    if impl != "eager":  # the same values as eager PyTorch before anything is timed
        try:
            values = check()
        except Exception as e:  # a peer that cannot run the case (torch.compile and DReG) is not ours to fail
            if impl not in PEERS:
                raise
            pytest.skip(f"{impl} cannot run {config.op}: {type(e).__name__}")
        compare(f"{config.op} {impl}", names, values, variants["eager"][0](), "eager PyTorch", tol)
    setup, fn = runs[mode]
    for _ in range(2):  # warm-up: compiles, allocator
        fn(setup() if setup else None)
    benchmark.group = f"{config.op} {mode} {config.label()}"
    benchmark.extra_info.update(device=str(DEVICE), triton_kernels_timed=CUDA,
                                least_bytes=least_bytes(config, mode))
    if setup is None:
        benchmark(_synced(fn), None)
    else:
        benchmark.pedantic(_synced(fn), setup=lambda: ((_synced(setup)(),), {}), rounds=30, warmup_rounds=3)
