#!/usr/bin/env python
"""Time fastvae's fused ops against eager PyTorch and ``torch.compile``, on your machine.

Usage: ``python benchmarks/run.py [--quick] [--only OP] [--dtype DTYPE] [--device cuda|cpu]
[--out DIR] [--no-plots]``. OP: reparameterize_kl, bernoulli_ll, elbo_loss, train_step.

Three implementations of the same computation, checked equal before they are timed:

* ``eager``: ``fastvae.reference``, plain PyTorch, what a user writes without fastvae;
* ``compile``: ``torch.compile(dynamic=False)`` of the same reference code, compiled per
  shape (Inductor fuses the elementwise work too: the strongest peer);
* ``fastvae``: fastvae's public functions (the Triton kernels on a GPU).

The training step adds ``fastvae_compile``: ``torch.compile`` of the fused model.

How to read the output (console table, ``<out>/<device>-<date>.json``, a Markdown summary
next to it and PNG plots in ``<device>-<date>-plots/``):

* ``ms`` is the median time of one call (a forward ``fwd``, a backward ``bwd`` after an untimed
  forward, or both ``fwd+bwd``; for ``train_step`` one optimizer step: zero_grad, loss,
  backward, Adam). On a GPU: ``triton.testing.do_bench`` (CUDA events, L2 flushed, warm-up
  first); on a CPU: ``time.perf_counter``. Compile time is never timed.
* ``fv/eager`` and ``fv/compile`` are time ratios in the same run: fastvae's time divided by
  the other's. Below 1 fastvae is faster (0.25 = four times as fast).
* ``GB/s`` is the op's *least bytes* (``LEAST_BYTES``: what any implementation must read and
  write at the least) divided by the time; ``%copy`` compares it with this device's
  device-to-device copy bandwidth, measured in the same run (a large ``dst.copy_(src)``).
  Memory-bound ops cannot exceed about 100%.
* ``peak MB`` is ``torch.cuda.max_memory_allocated`` during one call, after a reset, with the
  inputs already allocated (GPU only; null on CPU).
* Inputs of the forward require grad (a training forward); fastvae's Bernoulli forward then also
  writes the gradient, which its backward does not redo. That is why fastvae's ``bwd`` of
  ``bernoulli_ll`` can look faster than the copy bandwidth allows: compare ``fwd+bwd``.

Without a CUDA GPU it still runs, on small sizes, but the Triton kernels are NOT timed: the
``fastvae`` column is then fastvae's CPU path, its PyTorch reference, and the ratios only
measure overheads. The header and the JSON (``triton_kernels_timed: false``) say so.

Exit status: 0; 1 when an implementation's results differ from eager PyTorch (the run stops,
before any timing of that configuration) or eager/fastvae failed; 2 for bad arguments.
"""

import os
import sys

if __name__ == "__main__" and os.environ.pop("TRITON_INTERPRET", "0").strip().lower() not in ("", "0", "false", "off", "no"):
    # before torch or triton is imported: Triton's interpreter is for testing, never for timing
    print("note: TRITON_INTERPRET unset for this run (the interpreter is never timed)", file=sys.stderr)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

import fastvae  # noqa: E402

import cases  # noqa: E402
import checks  # noqa: E402
import timing  # noqa: E402
from checks import Fatal, Mismatch, compare  # noqa: E402,F401 - for the tests, until they import checks
from timing import CpuTimer, CudaTimer  # noqa: E402,F401 - for the tests, until they import timing
from case_types import IMPLS, PEERS, TRAIN_IMPLS, TOL, DTYPES, Config  # noqa: E402
from cases import CASES as OPS, configs, least_bytes, DEFAULT_DTYPES  # noqa: E402,F401 - OPS for the tests, until they import cases
from train_step import TRAIN_TOL  # noqa: E402

HERE = Path(__file__).resolve().parent
def _free(dev):
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def bench_config(c, dev, timer):
    """-> impl -> mode -> (ms, peak bytes, peak bytes above the inputs, checked against), or an
    error string ('oom' for out of memory)."""
    torch._dynamo.reset()  # fresh compile caches: each shape compiled once, no stale graphs
    case = cases.CASES[c.op]
    built, err = checks.guard(lambda: case.variants(c, dev))
    modes = case.modes
    if err is not None:
        return {impl: {m: err for m in modes} for impl in case.impls}
    variants, names, tol = built
    errors, checked = checks.check_all(c, variants, names, tol)
    results = {}
    for impl, (_, runs) in variants.items():
        results[impl] = {}
        for mode in modes:
            if impl in errors:
                results[impl][mode] = errors[impl]
                continue
            value, err = checks.guard(lambda: timing.measure(timer, *runs[mode]))
            results[impl][mode] = value + (checked.get(impl),) if err is None else err
            if err == "oom":
                _free(dev)
    del variants, built
    _free(dev)
    return results


# --------------------------------------------------------------------------- records

def _ratio(a, b):
    return a / b if a is not None and b else None


def make_records(c, results, copy_gbs):
    """One record per (mode, impl), with the configuration's ratios in each."""
    records = []
    for mode in OPS[c.op].modes:
        ms = {impl: r[mode][0] if isinstance(r[mode], tuple) else None for impl, r in results.items()}
        peak = {impl: r[mode][1] if isinstance(r[mode], tuple) else None for impl, r in results.items()}
        ratios = {"time_fastvae_over_eager": _ratio(ms.get("fastvae"), ms.get("eager")),
                  "time_fastvae_over_compile": _ratio(ms.get("fastvae"), ms.get("compile")),
                  "peak_memory_fastvae_over_eager": _ratio(peak.get("fastvae"), peak.get("eager")),
                  "peak_memory_fastvae_over_compile": _ratio(peak.get("fastvae"), peak.get("compile"))}
        nbytes = least_bytes(c, mode)
        for impl, r in results.items():
            value = r[mode]
            ok = isinstance(value, tuple)
            t = value[0] if ok else None
            gbs = nbytes / t / 1e6 if ok and nbytes else None
            records.append({
                **dataclasses.asdict(c), "mode": mode, "impl": impl,
                "status": "ok" if ok else ("oom" if value == "oom" else "error"),
                "error": None if ok or value == "oom" else value,
                "median_ms": t,
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


# --------------------------------------------------------------------------- output

def _fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


def _cell(rec):
    if rec is None:
        return "-"
    return _fmt(rec["median_ms"], ".4g") if rec["status"] == "ok" else rec["status"].upper()


def _mb(rec):
    peak = (rec or {}).get("peak_memory_bytes")
    return "-" if peak is None else f"{peak / 1e6:.0f}"


def _by_impl(records):
    return {r["impl"]: r for r in records}


TABLE_HEAD = (f"{'op':18s} {'mode':8s} {'dtype':9s} {'configuration':30s} {'eager ms':>9s} {'compile ms':>10s} "
              f"{'fastvae ms':>10s} {'fv/eager':>8s} {'fv/compile':>10s} {'fv GB/s':>8s} {'%copy':>6s} "
              f"{'peak MB eager/compile/fastvae':>30s}")


def table_row(records):
    r = _by_impl(records)
    f = r.get("fastvae") or {}
    any_ = records[0]
    peaks = "/".join(_mb(r.get(i)) for i in IMPLS)
    frac = f.get("fraction_of_copy_bandwidth")
    cfg = Config(**{k: any_[k] for k in ("op", "batch", "dtype", "dim", "latent", "targets", "model")})
    return (f"{any_['op']:18s} {any_['mode']:8s} {any_['dtype']:9s} {cfg.label():30s} {_cell(r.get('eager')):>9s} "
            f"{_cell(r.get('compile')):>10s} {_cell(r.get('fastvae')):>10s} "
            f"{_fmt(any_['time_fastvae_over_eager'], '.3f'):>8s} {_fmt(any_['time_fastvae_over_compile'], '.3f'):>10s} "
            f"{_fmt(f.get('gb_per_s'), '.0f'):>8s} {_fmt(frac and frac * 100, '.0f'):>6s} {peaks:>30s}")


def group_rows(records):
    """Records grouped per configuration and mode, in run order."""
    groups = {}
    for r in records:
        key = tuple(r[k] for k in ("op", "mode", "dtype", "dim", "latent", "targets", "model", "batch"))
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
    return lines


def _headline(records):
    """The README's headline configurations that this run has."""
    want = [("elbo_loss", "fwd+bwd", 65536, 784, 64, "uint8", "float32"),
            ("elbo_loss", "fwd+bwd", 65536, 784, 64, "uint8", "bfloat16"),
            ("reparameterize_kl", "fwd+bwd", 65536, None, 64, None, "float32"),
            ("reparameterize_kl", "fwd+bwd", 256, None, 64, None, "float32")]
    return [g for g in group_rows(records)
            if (g[0]["op"], g[0]["mode"], g[0]["batch"], g[0]["dim"], g[0]["latent"], g[0]["targets"],
                g[0]["dtype"]) in want]


def _md_table(groups):
    head = ("| op | mode | dtype | configuration | eager ms | compile ms | fastvae ms | fastvae/eager | "
            "fastvae/compile | fastvae GB/s | % of copy | fastvae examples/s | peak MB eager / compile / fastvae |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for g in groups:
        r, a = _by_impl(g), g[0]
        f = r.get("fastvae") or {}
        cfg = Config(**{k: a[k] for k in ("op", "batch", "dtype", "dim", "latent", "targets", "model")})
        peaks = " / ".join(_mb(r.get(i)) for i in IMPLS)
        frac = f.get("fraction_of_copy_bandwidth")
        cells = [a["op"], a["mode"], a["dtype"], cfg.label(), _cell(r.get("eager")), _cell(r.get("compile")),
                 _cell(r.get("fastvae")), _fmt(a["time_fastvae_over_eager"], ".3f"),
                 _fmt(a["time_fastvae_over_compile"], ".3f"), _fmt(f.get("gb_per_s"), ".0f"),
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
    out += ["Times are medians per call; fastvae/eager and fastvae/compile are time ratios (below 1: fastvae "
            "is faster). GB/s: the op's least bytes (see the JSON's `least_bytes_formulas`) over fastvae's "
            "time; % of copy: that against the copy bandwidth above (over 100 only in a bwd row whose work the "
            "forward already did: fastvae's Bernoulli forward writes the gradient). OOM: out of memory; ERROR: "
            "see the JSON's failures.", ""]
    head = _headline(records)
    out += ["## Headline configurations", ""]
    out += _md_table(head) if head else ["Not part of this run (they need the GPU sweep: B = 256 and 65536)."]
    for op in OPS:
        groups = [g for g in group_rows(records) if g[0]["op"] == op]
        if groups:
            out += ["", f"## {op}", "", OPS[op].what, ""] + _md_table(groups)
    if meta.get("stopped_early"):
        out += ["", f"Stopped early: {meta['stopped_early']}."]
    if meta["failures"]:
        out += ["", "## Failures", ""] + [f"- {f}" for f in meta["failures"]]
    return "\n".join(out) + "\n"


def _plot_panel(ax, recs, title):
    from matplotlib.ticker import NullFormatter

    batches = sorted({r["batch"] for r in recs})
    for impl in TRAIN_IMPLS:
        pts = sorted((r["batch"], r["median_ms"]) for r in recs if r["impl"] == impl)
        if pts:
            ax.plot(*zip(*pts), marker="o", label=impl)
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="median ms per call", title=title)
    ax.set_xticks(batches, [str(b) for b in batches], rotation=30 if len(batches) > 4 else 0)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")


def plot(meta, directory):
    """One PNG per (op, mode, dtype): median time against batch size, log-log, one line per
    implementation, one panel per shape. Returns the paths written."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plots (pip install matplotlib, or pass --no-plots)")
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    for r in meta["records"]:
        if r["status"] == "ok":
            fam = Config(**{k: r[k] for k in ("op", "dtype", "dim", "latent", "targets", "model")}, batch=0)
            figures.setdefault((r["op"], r["mode"], r["dtype"]), {}).setdefault(fam, []).append(r)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for (op, mode, dtype), fams in figures.items():
        cols = min(3, len(fams))
        rows = math.ceil(len(fams) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(max(6.4, 4.5 * cols), 4.2 * rows), squeeze=False)
        for ax, (fam, recs) in zip(axes.flat, fams.items()):
            _plot_panel(ax, recs, fam.label(batch=False) or op)
        for ax in list(axes.flat)[len(fams):]:
            ax.set_visible(False)
        where = meta["device_name"] if meta["triton_kernels_timed"] else "CPU, Triton kernels NOT timed"
        fig.suptitle(f"{op} {mode} {dtype} ({where})", fontsize=10)
        fig.tight_layout()
        path = directory / f"{op}-{mode.replace('+', '_')}-{dtype}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- run metadata

def _git(*args):
    try:
        out = subprocess.run(["git", "-C", str(HERE), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


CPU_NOTE = ("no CUDA GPU here: the Triton kernels are NOT timed on this machine. The fastvae column runs "
            "fastvae's CPU path, which is its plain PyTorch reference (the eager column's code), so "
            "fastvae/eager and fastvae/compile only measure overheads. These are not GPU results.")


def metadata(dev, argv, quick):
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    cuda = dev.type == "cuda"
    name = torch.cuda.get_device_name(dev) if cuda else _cpu_name()
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "schema_version": 1,
        "device": dev.type,
        "device_name": name,
        "device_slug": slug(name) if cuda else "cpu",
        "triton_kernels_timed": cuda,
        "fastvae_implementation": ("fastvae's Triton kernels" if cuda else
                                   "fastvae's CPU path = its PyTorch reference (Triton kernels NOT timed)"),
        "note": None if cuda else CPU_NOTE,
        "memory_measured": cuda,
        "fastvae_version": fastvae.__version__,
        "torch_version": torch.__version__,
        "triton_version": triton_version,
        "python_version": platform.python_version(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "date": datetime.date.today().isoformat(),
        "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/run.py", *argv]),
        "quick": quick,
        "least_bytes_formulas": cases.least_bytes_formulas(),
        "tolerances": {"relative_error_vs_eager": TOL, "train_step": TRAIN_TOL},
    }


# --------------------------------------------------------------------------- main

def _names(values, allowed, what, parser):
    out = []
    for v in values or []:
        for name in filter(None, (s.strip() for s in v.split(","))):
            if name not in allowed:
                parser.error(f"unknown {what} {name!r}; choose from {', '.join(allowed)}")
            if name not in out:
                out.append(name)
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python benchmarks/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a few sizes, the headline configurations: minutes")
    p.add_argument("--only", action="append", metavar="OP",
                   help=f"run only these ops (repeat or comma-separate): {', '.join(OPS)}")
    p.add_argument("--dtype", action="append", metavar="DTYPE",
                   help=f"only these dtypes (repeat or comma-separate): {', '.join(DTYPES)}")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, default=HERE / "results", help="directory for the results (%(default)s)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (matplotlib)")
    p.add_argument("--max-batch", type=int, metavar="B", help="skip batch sizes above B")
    p.add_argument("--max-minutes", type=float, metavar="M",
                   help="stop cleanly (results written) before starting a configuration after M minutes")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default: torch's choice); 1 is steadier on a shared machine")
    a = p.parse_args(argv)
    a.only = _names(a.only, list(OPS), "op", p) or list(OPS)
    a.dtype = _names(a.dtype, list(DTYPES), "dtype", p)
    if a.threads is not None and a.threads < 1:
        p.error("--threads must be at least 1")
    if a.max_batch is not None and a.max_batch < 1:
        p.error("--max-batch must be at least 1")
    if a.max_minutes is not None and not (a.max_minutes > 0 and math.isfinite(a.max_minutes)):
        p.error("--max-minutes must be a positive number")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available (use --device cpu)")
    return a


def _failures(records):
    out = []
    for r in records:
        if r["status"] == "error":
            peer = r["impl"] in PEERS
            out.append(f"{r['op']} {r['mode']} {r['dtype']} B={r['batch']} {r['impl']}"
                       f"{' (peer, not fatal)' if peer else ''}: {r['error']}")
    return out


def run_benchmarks(a, dev, timer, meta, save=lambda: None):
    """Run the sweep, appending to ``meta["records"]`` and calling ``save()`` after every
    configuration (so a run stopped for any reason keeps its results). Raises ``Mismatch`` or
    ``Fatal`` after saving; stops early at ``--max-minutes``."""
    sweep = cases.sweep_name(dev, a.quick)
    dtypes = a.dtype or DEFAULT_DTYPES[sweep]
    memory = torch.cuda.get_device_properties(dev).total_memory if dev.type == "cuda" else 0
    records = meta["records"]
    t0 = time.perf_counter()
    deadline = t0 + 60 * a.max_minutes if a.max_minutes else None
    print(TABLE_HEAD)
    for op in a.only:
        reason = cases.CASES[op].skip_reason(dtypes)
        if reason:
            print(f"{op}: {reason}")
            continue
        for family in configs(op, sweep, dtypes, memory):
            for c in family:
                if a.max_batch and c.batch > a.max_batch:
                    break
                if deadline is not None and time.perf_counter() > deadline:
                    meta["stopped_early"] = f"--max-minutes {a.max_minutes} reached before {c.op} {c.label()} {c.dtype}"
                    print(f"({meta['stopped_early']}; {len(records)} records)")
                    return records
                results = bench_config(c, dev, timer)
                recs = make_records(c, results, meta["copy_bandwidth"]["gb_per_s"])
                records += recs
                for g in group_rows(recs):
                    print(table_row(g), flush=True)
                save()
                failed = checks.broken(results)
                if failed:
                    raise Fatal(f"{c.op} {c.label()} {c.dtype}: " + "; ".join(failed))
                if checks.out_of_memory(results):
                    print(f"  (out of memory at B={c.batch}: larger batches of this shape skipped)")
                    break
    print(f"({len(records)} records in {time.perf_counter() - t0:.0f} s)")
    return records


def _stem(meta, a):
    """``<device>-<date>``, plus what a partial run covers, so that the parts of a sweep run
    separately (``--only``, ``--dtype``, ``--quick``) do not overwrite one another."""
    parts = [meta["device_slug"], meta["date"]]
    if a.only != list(OPS):
        parts += a.only
    parts += a.dtype
    if a.quick:
        parts.append("quick")
    return "-".join(parts)


def _write_atomic(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_results(meta, out, stem, plots):
    """The JSON and the Markdown (each written whole, then renamed), then the plots."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    meta["failures"] = _failures(meta["records"]) + ([meta["aborted"]] if meta.get("aborted") else [])
    _write_atomic(json_path, json.dumps(meta, indent=1, allow_nan=False) + "\n")
    _write_atomic(md_path, markdown(meta))
    if plots:
        meta["plots"] = [p.name for p in plot(meta, out / f"{stem}-plots")]
        _write_atomic(json_path, json.dumps(meta, indent=1, allow_nan=False) + "\n")
    return json_path, md_path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    dev = torch.device(a.device)
    problem = timing.problem(dev)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    with timing.settings(dev, a.threads):
        timer = timing.timer_for(dev, a.quick)
        meta = metadata(dev, argv, a.quick)
        meta["timer"] = timer.describe
        meta["cpu_threads"] = torch.get_num_threads()
        for line in header_lines(meta):
            print(line)
        meta["copy_bandwidth"] = timing.copy_bandwidth(dev, timer, a.quick)
        print(f"copy bandwidth: {meta['copy_bandwidth']['gb_per_s']:.1f} GB/s")
        meta["records"] = []
        stem = _stem(meta, a)
        try:
            run_benchmarks(a, dev, timer, meta, save=lambda: write_results(meta, a.out, stem, plots=False))
        except (Mismatch, Fatal) as e:
            kind = "MISMATCH" if isinstance(e, Mismatch) else "FAILED"
            meta["aborted"] = f"{kind}, benchmark stopped: {e}"
            json_path, _ = write_results(meta, a.out, stem, plots=False)
            print(f"{meta['aborted']} (the results before it are in {json_path})", file=sys.stderr)
            return 1
    json_path, md_path = write_results(meta, a.out, stem, plots=not a.no_plots)
    print(f"wrote {json_path} and {md_path}")
    for f in meta["failures"]:
        print(f"FAILED: {f}", file=sys.stderr)
    fatal = [r for r in meta["records"] if r["status"] == "error" and r["impl"] not in PEERS]
    return 1 if fatal else 0


if __name__ == "__main__":
    sys.exit(main())
