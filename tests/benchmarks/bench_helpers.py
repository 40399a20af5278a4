"""Shared checks of the benchmark's result records (tests of ``benchmarks/harness/``)."""

import math

import pytest

from benchmarks.harness import cases
from benchmarks.harness.case_types import Config, TRAIN_IMPLS
from benchmarks.harness.cases import CASES

RECORD_KEYS = set(Config.keys()) | {"mode", "impl", "status", "error",
               "median_ms", "q1_ms", "q3_ms", "min_ms", "max_ms", "repeats", "examples_per_s",
               "peak_memory_bytes", "peak_memory_over_inputs_bytes",
               "checked_against", "least_bytes", "gb_per_s", "fraction_of_copy_bandwidth",
               "time_fastvae_over_eager", "time_fastvae_over_compile", "time_fastvae_over_eager_range",
               "time_fastvae_over_compile_range", "peak_memory_fastvae_over_eager",
               "peak_memory_fastvae_over_compile"}


def check_records(records, copy_gbs):
    assert records
    groups = {}
    for r in records:
        assert set(r) == RECORD_KEYS, set(r) ^ RECORD_KEYS
        assert r["status"] == "ok", r
        assert r["impl"] in TRAIN_IMPLS and r["mode"] in CASES[r["op"]].modes
        assert math.isfinite(r["median_ms"]) and r["median_ms"] > 0
        assert r["min_ms"] <= r["q1_ms"] <= r["median_ms"] <= r["q3_ms"] <= r["max_ms"] and r["repeats"] >= 1
        assert r["examples_per_s"] == pytest.approx(r["batch"] / r["median_ms"] * 1e3)
        assert r["checked_against"] == ("baseline" if r["impl"] == "eager" else "eager")
        cfg = Config.of(r)
        assert r["least_bytes"] == cases.least_bytes(cfg, r["mode"])
        if r["least_bytes"] is not None:
            assert r["gb_per_s"] == pytest.approx(r["least_bytes"] / r["median_ms"] / 1e6)
            assert r["fraction_of_copy_bandwidth"] == pytest.approx(r["gb_per_s"] / copy_gbs)
        key = (r["op"], r["mode"]) + tuple(r[k] for k in Config.keys())
        groups.setdefault(key, {})[r["impl"]] = r
    for impls in groups.values():
        assert {"eager", "compile", "fastvae"} <= set(impls)
        ms = {i: r["median_ms"] for i, r in impls.items()}
        for r in impls.values():  # the configuration's ratios, in every record of it
            assert r["time_fastvae_over_eager"] == pytest.approx(ms["fastvae"] / ms["eager"])
            assert r["time_fastvae_over_compile"] == pytest.approx(ms["fastvae"] / ms["compile"])
            for peer in ("eager", "compile"):
                low, high = r[f"time_fastvae_over_{peer}_range"]
                assert low <= r[f"time_fastvae_over_{peer}"] <= high
                assert low == pytest.approx(impls["fastvae"]["q1_ms"] / impls[peer]["q3_ms"])
    return groups
