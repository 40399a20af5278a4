"""``benchmarks/harness/timing.py``: the CPU timer, the measurement of one call, the copy bandwidth and the
run's settings (the CUDA timer needs a GPU: the end-to-end runs on one exercise it)."""

import time

import pytest
import torch

import fastvae
from benchmarks.harness import checks, timing


def test_the_cpu_timer_times_the_call_not_its_setup():
    timer = timing.CpuTimer(warmup=1, min_reps=3, max_reps=3, budget_s=0)
    calls = []
    ms = timer.time(lambda state: (calls.append(state), time.sleep(0.002)), setup=lambda: time.sleep(0.2) or "s")
    assert calls == ["s"] * 4  # one warm-up, three timed, each after its own setup
    assert 2 <= ms < 150
    spread, *memory = timing.measure(timer, None, lambda _: None)
    assert memory == [None, None] and spread.n == 3  # no memory figures on CPU


def test_the_timer_gives_every_repeat_and_the_spread_summarises_them():
    timer = timing.CpuTimer(warmup=0, min_reps=4, max_reps=4, budget_s=0)
    assert len(timer.samples(lambda _: None)) == 4
    s = timing.Spread.of([4.0, 1.0, 3.0, 2.0, 100.0])
    assert (s.median, s.q1, s.q3, s.min, s.max, s.n) == (3.0, 2.0, 4.0, 1.0, 100.0, 5)
    assert s.record() == {"median_ms": 3.0, "q1_ms": 2.0, "q3_ms": 4.0, "min_ms": 1.0, "max_ms": 100.0, "repeats": 5}
    one = timing.Spread.of([2.5])
    assert (one.median, one.q1, one.q3) == (2.5, 2.5, 2.5)
    with pytest.raises(ValueError):
        timing.Spread.of([])


def test_on_a_cpu_the_implementations_are_timed_in_rotating_rounds():
    timer = timing.CpuTimer(warmup=1, min_reps=3, max_reps=3, budget_s=0)
    order = []
    runs = {name: (None, lambda _, name=name: order.append(name)) for name in "abc"}
    times = timer.samples_interleaved(runs)
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}
    assert order[3:] == list("abcbcacab")  # after one warm-up call each: a round each, rotating

    def broken(_):
        raise RuntimeError("no")

    out = timing.measure_together(timer, {**runs, "x": (None, broken)}, checks.guard)
    assert out["x"] == "RuntimeError: no" and all(out[k][0].n == 3 for k in "abc")
    assert out["a"][1:] == (None, None)
    alone = timing.measure_together(timing.CpuTimer(0, 2, 2, 0), {"a": runs["a"]}, checks.guard)
    assert alone["a"][0].n == 2  # one implementation: measured on its own


def test_a_ratios_range_spans_what_the_quartiles_allow():
    fast, slow = timing.Spread.of([1.0, 2.0, 3.0]), timing.Spread.of([4.0, 5.0, 6.0])
    low, high = timing.ratio_range(fast, slow)
    assert (low, high) == pytest.approx((1.5 / 5.5, 2.5 / 4.5))
    assert low <= fast.median / slow.median <= high


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
    assert set(overhead.IMPLS) <= set(res) and all(0 < res[k].q1 <= res[k].median <= res[k].q3
                                                   for k in overhead.IMPLS)
    # two kernels forward (reparameterize_kl, the ELBO's log-likelihood), two backward
    assert res["launches_per_step"] == 4
    rec = overhead.record(torch.device("cpu"), res)
    assert rec["fastvae_over_eager"] == round(res["fastvae"].median / res["eager"].median, 3)
    low, high = rec["fastvae_over_eager_range"]
    assert low <= rec["fastvae_over_eager"] <= high
    assert "fastvae/eager" in "\n".join(overhead.lines(rec))
