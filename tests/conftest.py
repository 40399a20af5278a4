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
from hypothesis import HealthCheck, settings  # noqa: E402

import fastvae  # noqa: E402

# The fuzzing's profiles (tests/ops/test_fuzz_*.py), picked by FASTVAE_FUZZ (or pytest's
# --hypothesis-profile): "ci" (default) a few dozen cases per op, the same every run
# (derandomized: CI is reproducible); "long" many more, still the same every run; "random"
# fresh cases every run, failures remembered in .hypothesis/ (git-ignored). Each case runs the
# kernels through the interpreter, so no deadline.
_FUZZ = dict(deadline=None, print_blob=True,
             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("ci", max_examples=12, derandomize=True, database=None, **_FUZZ)
settings.register_profile("long", max_examples=400, derandomize=True, database=None, **_FUZZ)
settings.register_profile("random", max_examples=200, derandomize=False, **_FUZZ)
_fuzz_profile = os.environ.get("FASTVAE_FUZZ", "ci").strip().lower()
if _fuzz_profile not in ("ci", "long", "random"):
    raise pytest.UsageError(f"FASTVAE_FUZZ must be ci, long or random, got {_fuzz_profile!r}")
settings.load_profile(_fuzz_profile)

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


def test_seed():
    """The seed every test starts from: ``FASTVAE_TEST_SEED`` (default 0, so a run is
    repeatable), or a fresh one per test with ``FASTVAE_TEST_SEED=random``."""
    value = os.environ.get("FASTVAE_TEST_SEED", "0").strip().lower()
    if value == "random":
        return int.from_bytes(os.urandom(4), "little")
    try:
        return int(value)
    except ValueError:
        raise pytest.UsageError(f"FASTVAE_TEST_SEED must be an integer or 'random', got {value!r}") from None


test_seed.__test__ = False  # a helper, not a test


@pytest.fixture(autouse=True)
def _seeded(request):
    # The inputs of every test are drawn from a known seed; a failure says which (the captured
    # output and a report section), and how to draw other inputs.
    seed = test_seed()
    torch.manual_seed(seed)
    request.node.fastvae_seed = seed
    print(f"torch seed {seed} (rerun with FASTVAE_TEST_SEED={seed}; FASTVAE_TEST_SEED=random draws new inputs)")
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    seed = getattr(item, "fastvae_seed", None)
    if report.failed and seed is not None:
        report.sections.append(("fastvae", f"inputs drawn from torch seed {seed}: rerun with FASTVAE_TEST_SEED={seed}"))
