"""Test setup: run the real Triton kernels everywhere.

Without a CUDA device, TRITON_INTERPRET=1 must be set before anything imports triton
(``torch.compile`` imports it too), so this happens at the very top, before fastvae.
FASTVAE_BACKEND is forced to ``triton`` so that no test silently compares the reference
with itself.
"""

import os

import torch  # importing torch does not import triton

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ["TRITON_INTERPRET"] = "1"
os.environ["FASTVAE_BACKEND"] = "triton"
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import pytest  # noqa: E402

import fastvae  # noqa: E402

DEVICE = torch.device("cuda" if HAS_CUDA else "cpu")


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped without one)")
    config.addinivalue_line("markers", "slow: compiles or runs a subprocess; a few seconds or more")


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def device():
    return DEVICE


@pytest.fixture(autouse=True)
def _triton_backend():
    # every test starts on the kernels, whatever an earlier test switched to
    fastvae.set_backend("triton")
    yield
    fastvae.set_backend("triton")


@pytest.fixture(autouse=True)
def _fresh_random_inputs():
    # Every run draws new inputs; a failure prints the seed to reproduce it with.
    seed = int(os.environ.get("FASTVAE_TEST_SEED", "0")) or int.from_bytes(os.urandom(4), "little")
    torch.manual_seed(seed)
    print(f"torch seed {seed} (rerun with FASTVAE_TEST_SEED={seed})")
    yield
