"""``benchmarks/harness/timing.py``: the CPU timer, the measurement of one call, the copy bandwidth and the
run's settings (the CUDA timer needs a GPU: the end-to-end runs on one exercise it)."""

import time

import pytest
import torch

import fastvae
from benchmarks.harness import timing


def test_the_cpu_timer_times_the_call_not_its_setup():
    timer = timing.CpuTimer(warmup=1, min_reps=3, max_reps=3, budget_s=0)
    calls = []
    ms = timer.time(lambda state: (calls.append(state), time.sleep(0.002)), setup=lambda: time.sleep(0.2) or "s")
    assert calls == ["s"] * 4  # one warm-up, three timed, each after its own setup
    assert 2 <= ms < 150
    assert timing.measure(timer, None, lambda _: None)[1:] == (None, None)  # no memory figures on CPU


def test_copy_bandwidth():
    cb = timing.copy_bandwidth(torch.device("cpu"), timing.CpuTimer(0, 1, 1, 0), quick=True)
    assert cb["bytes_moved"] == 2 * cb["bytes_copied"] == 2 * 64 * 2**20
    assert cb["gb_per_s"] == pytest.approx(cb["bytes_moved"] / cb["median_ms"] / 1e6)


def test_settings_are_restored(monkeypatch):
    threads = torch.get_num_threads()
    with timing.settings(torch.device("cpu"), threads=1):
        assert torch.get_num_threads() == 1 and fastvae.get_backend() == "auto"
    assert torch.get_num_threads() == threads and fastvae.get_backend() == "triton"


@pytest.mark.slow
def test_overhead_times_the_three_and_stubs_fastvaes_launches():
    from benchmarks.harness import overhead

    res = overhead.measure(torch.device("cpu"), reps=20, warmup=5)
    assert set(overhead.IMPLS) <= set(res) and all(res[k] > 0 for k in overhead.IMPLS)
    # two kernels forward (reparameterize_kl, the ELBO's log-likelihood), two backward
    assert res["launches_per_step"] == 4
    rec = overhead.record(torch.device("cpu"), res)
    assert rec["fastvae_over_eager"] == round(res["fastvae"] / res["eager"], 3)
    assert "fastvae/eager" in "\n".join(overhead.lines(rec))
