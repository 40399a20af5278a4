"""What a run reports: the console table, ``<out>/<stem>.json`` (every figure, with the run's
metadata), a Markdown summary next to it, and the plots (``plots.py``) in ``<stem>-plots/``.

How to read it:

* ``ms`` is the median time of one call (a forward ``fwd``, a backward ``bwd`` after an untimed
  forward, or both ``fwd+bwd``; for ``train_step`` one optimizer step: zero_grad, loss,
  backward, Adam), and ``±N%`` its spread: half the interquartile range of the repeats, as a
  share of the median (the JSON has the quartiles, min, max and the number of repeats). On a
  GPU: ``triton.testing.do_bench`` (CUDA events, L2 flushed, warm-up first); on a CPU:
  ``time.perf_counter``. Compile time is never timed.
* ``fv/eager`` and ``fv/compile`` are time ratios in the same run: fastvae's median divided by
  the other's. Below 1 fastvae is faster (0.25 = four times as fast). In brackets the ratio's
  own range, from the quartiles (``timing.ratio_range``: fastvae's lower quartile over the
  other's upper one, to the reverse): a ratio whose range holds 1 does not tell the two apart,
  and two runs whose ranges overlap agree. On a CPU, especially a shared one, the ratios are
  noisy: the header says so.
* ``GB/s`` is the op's *least bytes* (each case's ``least_bytes`` in ``cases.py``: what any
  implementation must read and write at the least) divided by the time; ``%copy`` compares it
  with this device's device-to-device copy bandwidth, measured in the same run (a large
  ``dst.copy_(src)``). Memory-bound ops cannot exceed about 100%.
* ``peak MB`` is ``torch.cuda.max_memory_allocated`` during one call, after a reset, with the
  inputs already allocated (GPU only; null on CPU).
* Inputs of the forward require grad (a training forward); fastvae's Bernoulli forward then also
  writes the gradient, which its backward does not redo. That is why fastvae's ``bwd`` of
  ``bernoulli_ll`` can look faster than the copy bandwidth allows: compare ``fwd+bwd``.
"""

import json
import os

from . import cases, plots
from .case_types import Config, IMPLS, PEERS


def _fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


def _cell(rec):
    """The median ms and ``±`` half the interquartile range as a share of it."""
    if rec is None:
        return "-"
    if rec["status"] != "ok":
        return rec["status"].upper()
    half = (rec["q3_ms"] - rec["q1_ms"]) / 2 / rec["median_ms"] * 100 if rec["median_ms"] else 0.0
    return f"{rec['median_ms']:.4g} ±{half:.0f}%"


def _ratio_cell(rec, peer):
    """fastvae's time over ``peer``'s, with its range: ``1.03 (0.95-1.12)``."""
    ratio, span = rec[f"time_fastvae_over_{peer}"], rec.get(f"time_fastvae_over_{peer}_range")
    if ratio is None:
        return "-"
    return f"{ratio:.3f}" + (f" ({span[0]:.2f}-{span[1]:.2f})" if span else "")


def _mb(rec):
    peak = (rec or {}).get("peak_memory_bytes")
    return "-" if peak is None else f"{peak / 1e6:.0f}"


def _by_impl(records):
    return {r["impl"]: r for r in records}


TABLE_HEAD = (f"{'op':18s} {'mode':8s} {'dtype':9s} {'configuration':30s} {'eager ms':>13s} {'compile ms':>13s} "
              f"{'fastvae ms':>13s} {'fv/eager (range)':>19s} {'fv/compile (range)':>19s} {'fv GB/s':>8s} "
              f"{'%copy':>6s} {'peak MB eager/compile/fastvae':>30s}")


def table_row(records):
    r = _by_impl(records)
    f = r.get("fastvae") or {}
    any_ = records[0]
    peaks = "/".join(_mb(r.get(i)) for i in IMPLS)
    frac = f.get("fraction_of_copy_bandwidth")
    cfg = Config.of(any_)
    return (f"{any_['op']:18s} {any_['mode']:8s} {any_['dtype']:9s} {cfg.label():30s} {_cell(r.get('eager')):>13s} "
            f"{_cell(r.get('compile')):>13s} {_cell(r.get('fastvae')):>13s} "
            f"{_ratio_cell(any_, 'eager'):>19s} {_ratio_cell(any_, 'compile'):>19s} "
            f"{_fmt(f.get('gb_per_s'), '.0f'):>8s} {_fmt(frac and frac * 100, '.0f'):>6s} {peaks:>30s}")


def group_rows(records):
    """Records grouped per configuration and mode, in run order."""
    groups = {}
    for r in records:
        key = (r["op"], r["mode"]) + tuple(r[k] for k in Config.keys())
        groups.setdefault(key, []).append(r)
    return list(groups.values())


def header_lines(meta):
    lines = [f"fastvae benchmark: {meta['device_name']} ({meta['device']}), torch {meta['torch_version']}, "
             f"triton {meta['triton_version']}, python {meta['python_version']}, commit "
             f"{(meta['git_commit'] or 'unknown')[:12]}{' (with local changes)' if meta['git_dirty'] else ''}, "
             f"{meta['date']}",
             f"fastvae column: {meta['fastvae_implementation']}"]
    if not meta["triton_kernels_timed"]:
        lines.append("NOTE: " + meta["note"])
    if meta["device"] == "cpu":
        lines.append(CPU_NOISE)
    return lines


CPU_NOISE = ("NOTE: these are CPU timings, and on a CPU (more so a shared one) the ratios are noisy: another "
             "process, the CPU's clock or the allocator moves them from run to run. Read each ratio with its range "
             "(from the quartiles of the repeats); ranges that overlap do not tell two runs apart. More than one "
             "thread (--threads) makes them noisier still on a shared machine.")


def _headline(records):
    """The README's headline configurations (``cases.HEADLINE``) and the launch-bound one
    beside them (``cases.LAUNCH_BOUND``) that this run has."""
    want = set(cases.HEADLINE + cases.LAUNCH_BOUND)
    return [g for g in group_rows(records) if (Config.of(g[0]), g[0]["mode"]) in want]


def _md_table(groups):
    head = ("| op | mode | dtype | configuration | eager ms | compile ms | fastvae ms | fastvae/eager | "
            "fastvae/compile | fastvae GB/s | % of copy | fastvae examples/s | peak MB eager / compile / fastvae |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for g in groups:
        r, a = _by_impl(g), g[0]
        f = r.get("fastvae") or {}
        peaks = " / ".join(_mb(r.get(i)) for i in IMPLS)
        frac = f.get("fraction_of_copy_bandwidth")
        cells = [a["op"], a["mode"], a["dtype"], Config.of(a).label(), _cell(r.get("eager")), _cell(r.get("compile")),
                 _cell(r.get("fastvae")), _ratio_cell(a, "eager"), _ratio_cell(a, "compile"),
                 _fmt(f.get("gb_per_s"), ".0f"),
                 _fmt(frac and frac * 100, ".0f"), _fmt(f.get("examples_per_s"), ".3g"), peaks]
        if "fastvae_compile" in r:
            cells[6] += f" (compiled: {_cell(r['fastvae_compile'])})"
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(meta):
    records = meta["records"]
    cb = meta["copy_bandwidth"]
    out = [f"# fastvae benchmark: {meta['device_name']}, {meta['date']}", ""]
    out += [f"- {line}" for line in header_lines(meta)]
    out += [f"- command: `{meta['command']}`", f"- timer: {meta['timer']}",
            f"- copy bandwidth (device to device, {cb['bytes_copied'] / 2**20:.0f} MiB): "
            f"{cb['gb_per_s']:.1f} GB/s", ""]
    out += ["Times are medians per call, ± half the interquartile range of the repeats as a share of the median; "
            "fastvae/eager and fastvae/compile are ratios of the medians (below 1: fastvae is faster), in brackets "
            "the range the quartiles allow (a range holding 1 does not tell the two apart). GB/s: the op's least "
            "bytes (see the JSON's `least_bytes_formulas`) over fastvae's "
            "time; % of copy: that against the copy bandwidth above (over 100 only in a bwd row whose work the "
            "forward already did: fastvae's Bernoulli forward writes the gradient). OOM: out of memory; ERROR: "
            "see the JSON's failures.", ""]
    head = _headline(records)
    out += ["## Headline configurations", ""]
    out += _md_table(head) if head else ["Not part of this run (they need the GPU sweep: B = 256 and 65536)."]
    for op, case in cases.CASES.items():
        groups = [g for g in group_rows(records) if g[0]["op"] == op]
        if groups:
            out += ["", f"## {op}", "", case.what, ""] + _md_table(groups)
    if meta.get("stopped_early"):
        out += ["", f"Stopped early: {meta['stopped_early']}."]
    if meta["failures"]:
        out += ["", "## Failures", ""] + [f"- {f}" for f in meta["failures"]]
    return "\n".join(out) + "\n"


def failures(records):
    out = []
    for r in records:
        if r["status"] == "error":
            peer = r["impl"] in PEERS
            out.append(f"{r['op']} {r['mode']} {r['dtype']} B={r['batch']} {r['impl']}"
                       f"{' (peer, not fatal)' if peer else ''}: {r['error']}")
    return out


def stem(meta, only, dtypes, quick):
    """``<device>-<date>``, plus what a partial run covers, so that the parts of a sweep run
    separately (``--only``, ``--dtype``, ``--quick``) do not overwrite one another."""
    parts = [meta["device_slug"], meta["date"]]
    if list(only) != list(cases.CASES):
        parts += only
    parts += dtypes
    if quick:
        parts.append("quick")
    return "-".join(parts)


def _write_atomic(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_results(meta, out, stem, with_plots):
    """The JSON and the Markdown (each written whole, then renamed), then the plots."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    meta["failures"] = failures(meta["records"]) + ([meta["aborted"]] if meta.get("aborted") else [])
    _write_atomic(json_path, json.dumps(meta, indent=1, allow_nan=False) + "\n")
    _write_atomic(md_path, markdown(meta))
    if with_plots:
        meta["plots"] = [p.name for p in plots.plot(meta, out / f"{stem}-plots")]
        _write_atomic(json_path, json.dumps(meta, indent=1, allow_nan=False) + "\n")
    return json_path, md_path
