"""Time fastvae's fused ops against eager PyTorch and ``torch.compile``, on your machine.

Usage: ``python benchmarks/run.py [--quick | --small | --overhead] [--only OP] [--dtype DTYPE]
[--device cuda|cpu] [--out DIR] [--no-plots]``. OP: see ``cases.py``. ``--small``: the
small-batch sweep (B = 64 ... 8192, real kernels); ``--overhead``: host time per step at B = 4
with fastvae's Triton launches stubbed (``overhead.py``).

This is the command: its arguments and the order of the work (the script
``benchmarks/run.py`` unsets ``TRITON_INTERPRET`` before anything imports triton, then calls
``main``). What is measured: ``cases.py``, one entry per case (add a case there); checked,
timed, measured: ``checks.py``, ``timing.py``, ``measure.py``; written: ``report.py`` (how to
read it), ``plots.py``, ``metadata.py``.

Without a CUDA GPU it still runs, on small sizes, but the Triton kernels are NOT timed: the
``fastvae`` column is then fastvae's CPU path, its PyTorch reference, and the ratios only
measure overheads. The header and the JSON (``triton_kernels_timed: false``) say so.

Exit status: 0; 1 when an implementation's results differ from eager PyTorch (the run stops,
before any timing of that configuration) or eager/fastvae failed; 2 for bad arguments.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from .. import RESULTS
from . import cases, checks, measure, report, timing
from .case_types import DTYPES, PEERS
from .metadata import metadata


def _names(values, allowed, what, parser):
    names = [name for v in values or [] for name in (s.strip() for s in v.split(",")) if name]
    for name in names:
        if name not in allowed:
            parser.error(f"unknown {what} {name!r}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(names))  # each once, in order


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python benchmarks/run.py", description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few sizes, the headline configurations: minutes")
    mode.add_argument("--small", action="store_true", help="the small-batch sweep: B = 64 ... 8192, launch-bound sizes")
    mode.add_argument("--overhead", action="store_true",
                      help="host microseconds per step at B=4, fastvae's Triton launches stubbed (overhead.py)")
    p.add_argument("--only", action="append", metavar="OP",
                   help=f"run only these ops (repeat or comma-separate): {', '.join(cases.CASES)}")
    p.add_argument("--dtype", action="append", metavar="DTYPE",
                   help=f"only these dtypes (repeat or comma-separate): {', '.join(DTYPES)}")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, default=RESULTS, help="directory for the results (%(default)s)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (matplotlib)")
    p.add_argument("--max-batch", type=int, metavar="B", help="skip batch sizes above B")
    p.add_argument("--max-minutes", type=float, metavar="M",
                   help="stop cleanly (results written) before starting a configuration after M minutes")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default: 1 with --device cpu, steadier on a shared machine: two "
                        "--quick runs of a loaded 2-core machine agreed on every ratio with 1 thread, not with 2; "
                        "torch's choice with --device cuda)")
    a = p.parse_args(argv)
    a.only = _names(a.only, list(cases.CASES), "op", p) or list(cases.CASES)
    a.dtype = _names(a.dtype, list(DTYPES), "dtype", p)
    if a.threads is not None and a.threads < 1:
        p.error("--threads must be at least 1")
    if a.max_batch is not None and a.max_batch < 1:
        p.error("--max-batch must be at least 1")
    if a.max_minutes is not None and not (a.max_minutes > 0 and math.isfinite(a.max_minutes)):
        p.error("--max-minutes must be a positive number")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available (use --device cpu)")
    if a.threads is None and a.device == "cpu":
        a.threads = 1
    return a


def run_benchmarks(a, dev, timer, meta, save=lambda: None):
    """Run the sweep, appending to ``meta["records"]`` and calling ``save()`` after every
    configuration (so a run stopped for any reason keeps its results). Raises ``Mismatch`` or
    ``Fatal`` after saving; stops early at ``--max-minutes``."""
    sweep = cases.sweep_name(dev, a.quick, a.small)
    dtypes = a.dtype or cases.DEFAULT_DTYPES[sweep]
    memory = torch.cuda.get_device_properties(dev).total_memory if dev.type == "cuda" else 0
    records = meta["records"]
    t0 = time.perf_counter()
    deadline = t0 + 60 * a.max_minutes if a.max_minutes else None
    print(report.TABLE_HEAD)
    for op in a.only:
        reason = cases.CASES[op].skip_reason(dtypes)
        if reason:
            print(f"{op}: {reason}")
            continue
        for family in cases.configs(op, sweep, dtypes, memory):
            for c in family:
                if a.max_batch and c.batch > a.max_batch:
                    break
                if deadline is not None and time.perf_counter() > deadline:
                    meta["stopped_early"] = f"--max-minutes {a.max_minutes} reached before {c.op} {c.label()} {c.dtype}"
                    print(f"({meta['stopped_early']}; {len(records)} records)")
                    return records
                results = measure.bench_config(c, dev, timer)
                recs = measure.make_records(c, results, meta["copy_bandwidth"]["gb_per_s"])
                records += recs
                for g in report.group_rows(recs):
                    print(report.table_row(g), flush=True)
                save()
                checks.stop_if_broken(c, results)
                if checks.out_of_memory(results):
                    print(f"  (out of memory at B={c.batch}: larger batches of this shape skipped)")
                    break
    print(f"({len(records)} records in {time.perf_counter() - t0:.0f} s)")
    return records


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    dev = torch.device(a.device)
    problem = timing.problem(dev)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    if a.overhead:
        from . import overhead

        with timing.settings(dev, a.threads):
            return overhead.run(dev, a.out, metadata(dev, argv, False, timing.timer_for(dev, False)))
    with timing.settings(dev, a.threads):
        timer = timing.timer_for(dev, a.quick)
        meta = metadata(dev, argv, a.quick, timer)
        for line in report.header_lines(meta):
            print(line)
        meta["copy_bandwidth"] = timing.copy_bandwidth(dev, timer, a.quick)
        print(f"copy bandwidth: {meta['copy_bandwidth']['gb_per_s']:.1f} GB/s")
        meta["records"] = []
        stem = report.stem(meta, a.only, a.dtype, a.quick) + ("-small" if a.small else "")
        try:
            run_benchmarks(a, dev, timer, meta, save=lambda: report.write_results(meta, a.out, stem, False))
        except (checks.Mismatch, checks.Fatal) as e:
            meta["aborted"] = f"{'MISMATCH' if isinstance(e, checks.Mismatch) else 'FAILED'}, benchmark stopped: {e}"
            json_path, _ = report.write_results(meta, a.out, stem, False)
            print(f"{meta['aborted']} (the results before it are in {json_path})", file=sys.stderr)
            return 1
    json_path, md_path = report.write_results(meta, a.out, stem, with_plots=not a.no_plots)
    print(f"wrote {json_path} and {md_path}")
    for f in meta["failures"]:
        print(f"FAILED: {f}", file=sys.stderr)
    fatal = [r for r in meta["records"] if r["status"] == "error" and r["impl"] not in PEERS]
    return 1 if fatal else 0

