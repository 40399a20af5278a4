"""One configuration, measured: its case's implementations built, checked against eager
PyTorch, each mode of each timed, and the results turned into the JSON's records."""

import dataclasses
import gc

import torch

from . import cases, checks, timing


def free(dev):
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def bench_config(c, dev, timer):
    """-> impl -> mode -> (``timing.Spread`` of the ms, peak bytes, peak bytes above the inputs,
    checked against), or an error string ('oom' for out of memory)."""
    torch._dynamo.reset()  # fresh compile caches: each shape compiled once, no stale graphs
    case = cases.CASES[c.op]
    built, err = checks.guard(lambda: case.variants(c, dev))
    modes = case.modes
    if err is not None:
        return {impl: {m: err for m in modes} for impl in case.impls}
    variants, names, tol = built
    errors, checked = checks.check_all(c, variants, names, tol)
    results = {impl: {} for impl in variants}
    for mode in modes:  # the implementations of a mode timed together (interleaved on a CPU)
        runs = {impl: runs[mode] for impl, (_, runs) in variants.items() if impl not in errors}
        measured = timing.measure_together(timer, runs, checks.guard, after_oom=lambda: free(dev))
        for impl in variants:
            value = errors[impl] if impl in errors else measured[impl]
            results[impl][mode] = value + (checked.get(impl),) if isinstance(value, tuple) else value
    del variants, built
    free(dev)
    return results


def _ratio(a, b):
    return a / b if a is not None and b else None


def _time_ratio(a, b):
    """(ratio of the medians, [low, high] from the quartiles: ``timing.ratio_range``), or Nones."""
    if a is None or b is None or not b.median or not b.q1:
        return None, None
    return a.median / b.median, list(timing.ratio_range(a, b))


def _ratios(results, mode):
    """The configuration's fastvae-over-peer ratios of time (with their ranges) and of peak
    memory in ``mode``."""
    spread = {impl: r[mode][0] if isinstance(r[mode], tuple) else None for impl, r in results.items()}
    peak = {impl: r[mode][1] if isinstance(r[mode], tuple) else None for impl, r in results.items()}
    out = {}
    for peer in ("eager", "compile"):
        ratio, span = _time_ratio(spread.get("fastvae"), spread.get(peer))
        out[f"time_fastvae_over_{peer}"], out[f"time_fastvae_over_{peer}_range"] = ratio, span
    out.update({"peak_memory_fastvae_over_eager": _ratio(peak.get("fastvae"), peak.get("eager")),
                "peak_memory_fastvae_over_compile": _ratio(peak.get("fastvae"), peak.get("compile"))})
    return out


_SPREAD_KEYS = ("median_ms", "q1_ms", "q3_ms", "min_ms", "max_ms", "repeats")


def make_records(c, results, copy_gbs):
    """One record per (mode, impl), with the configuration's ratios in each."""
    records = []
    for mode in cases.CASES[c.op].modes:
        ratios = _ratios(results, mode)
        nbytes = cases.least_bytes(c, mode)
        for impl, r in results.items():
            value = r[mode]
            ok = isinstance(value, tuple)
            t = value[0].median if ok else None
            gbs = nbytes / t / 1e6 if ok and nbytes else None
            spread = value[0].record() if ok else dict.fromkeys(_SPREAD_KEYS)
            records.append({
                **dataclasses.asdict(c), "mode": mode, "impl": impl,
                "status": "ok" if ok else ("oom" if value == "oom" else "error"),
                "error": None if ok or value == "oom" else value,
                **spread,
                "examples_per_s": c.batch / t * 1e3 if ok else None,
                "peak_memory_bytes": value[1] if ok else None,
                "peak_memory_over_inputs_bytes": value[2] if ok else None,
                "checked_against": value[3] if ok else None,
                "least_bytes": nbytes,
                "gb_per_s": gbs,
                "fraction_of_copy_bandwidth": gbs / copy_gbs if gbs is not None else None,
                **ratios,
            })
    return records
