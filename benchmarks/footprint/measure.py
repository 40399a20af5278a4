"""``python benchmarks/memory.py [--only OP] [--out DIR]``: for each configuration of
``harness.cases.MEMORY`` (the discretized logistic mixture at VDVAE's and NVAE's sizes) and each
implementation (``eager``: ``fastvae.reference``'s baseline, here PixelCNN++'s formulation;
``vdvae``: the same loss as VDVAE's code spells it, ``harness/vdvae.py``, which keeps more;
``compile``: ``torch.compile(fullgraph=True)`` of the reference; ``fastvae``), two figures:

* **kept for backward**: the bytes of every tensor autograd saves during the forward, counted
  once per storage with ``torch.autograd.graph.saved_tensors_hooks`` (an input saved by
  reference counts: it is kept alive for backward); and **of which new**: those that are not
  the inputs' storages (what backward holds beyond what the caller holds anyway);
* **peak of a forward+backward**: in a fresh process per implementation, after the inputs are
  made and one warm-up step (``torch.compile`` compiles in it), the kernel's peak resident set
  (``VmHWM``) is reset (``/proc/self/clear_refs``) and one forward+backward runs: its peak above
  the resident set just before it, and the process's peak over its whole life. glibc's
  ``MALLOC_MMAP_THRESHOLD_`` is fixed so that every large tensor is mapped and unmapped as it
  lives (the resident set follows the live tensors). On a GPU the CUDA allocator's peak instead.

Without a GPU, fastvae runs its Triton kernels through Triton's interpreter (``TRITON_INTERPRET=1``,
set in the child before anything imports triton, with ``FASTVAE_BACKEND=triton``): the route is
the one a GPU takes (the op's autograd function, which saves what it saves on any device; each
row records the ``grad_fn`` measured), its tensors are the kernels' own, and the interpreter's
NumPy tiles add to its resident set. Writes into ``benchmarks/results/<tag>-memory-<device>-<date>/``
``records.json`` (the command, the commit, the machine and every row) and ``results.md``, the
table computed from the records alone (``table``; ``--from-records`` recomputes it; committed:
these are not timings). No timing is reported.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from .. import ROOT

IMPLS = ("eager", "vdvae", "compile", "fastvae")
MIB = 2**20


def _config(text):
    from ..harness.case_types import Config

    return Config(**json.loads(text))


def kept_bytes(fn, args):
    """``(kept, new, out)``: the bytes of the storages autograd keeps for backward while
    ``fn(*args)`` runs (each storage once), those of them not shared with a tensor of ``args``,
    and fn's outputs."""
    import torch

    seen = {}

    def key(t):
        return (t.untyped_storage().data_ptr(), str(t.device))

    def pack(t):
        seen[key(t)] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*args)
    inputs = {key(a) for a in args if isinstance(a, torch.Tensor)}
    return sum(seen.values()), sum(n for k, n in seen.items() if k not in inputs), out


def _status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None


def child(config, impl):
    """In a fresh process: inputs, one warm-up step, then one measured forward+backward."""
    import torch

    from ..harness import cases
    from ..harness.case_types import _op_fn

    case = cases.CASES[config.op]
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    inputs = case.inputs(config, dev)
    fn = cases.MEMORY_BASELINES[impl] if impl in cases.MEMORY_BASELINES else _op_fn(case, impl)

    def step():
        torch.autograd.grad(fn(*inputs.args), inputs.wrt, inputs.upstream)

    kept, new, out = kept_bytes(fn, inputs.args)
    path = type(out[0].grad_fn).__name__  # which route ran (fastvae: its autograd function's backward)
    del out
    step()  # warm-up (compiles)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return dict(kept=kept, kept_new=new, base=base, step_peak=torch.cuda.max_memory_allocated() - base,
                    process_peak=None, grad_fn=path)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
    base = _status("VmRSS")
    step()
    peak = _status("VmHWM")
    return dict(kept=kept, kept_new=new, base=base, step_peak=peak - base, process_peak=peak, grad_fn=path)


def _run_child(config, impl):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", FASTVAE_BACKEND="triton", PYTHONPATH=str(ROOT))
    if impl == "fastvae":
        env["TRITON_INTERPRET"] = "1"  # no effect with a GPU (the launchers pick CUDA tensors' kernels)
    cfg = json.dumps({k: v for k, v in config.__dict__.items() if v is not None})
    out = subprocess.run([sys.executable, "-m", "benchmarks.footprint.measure", "--child", cfg, impl], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        return dict(error=(out.stderr.strip().splitlines() or ["failed"])[-1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(meta):
    """The Markdown table of a records file (``records.json``) alone."""
    rows = meta["rows"]
    lines = [f"# Memory of a forward+backward, {meta['device']}, {meta['date']}", "",
             f"torch {meta['torch']}, triton {meta['triton']}, commit {meta['commit'][:12]}"
             + ("+changes" if meta["dirty"] else "") + f". {meta['note']}", "",
             "| configuration | impl | grad_fn | kept for backward (MiB) | of which new (MiB) | kept: impl/fastvae | "
             "step peak above its start (MiB) | process peak (MiB) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['config']} | {r['impl']} | | error: {r['error']} | | | | |")
            continue
        peak = "" if r["process_peak"] is None else f"{r['process_peak'] / MIB:.0f}"
        ratio = "" if r["kept_ratio"] is None else f"{r['kept_ratio']:.2f}x"
        lines.append(f"| {r['config']} | {r['impl']} | {r['grad_fn']} | {r['kept'] / MIB:.1f} | "
                     f"{r['kept_new'] / MIB:.1f} | {ratio} | {r['step_peak'] / MIB:.1f} | {peak} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python benchmarks/memory.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", metavar="OP", help="only the configurations of this op")
    p.add_argument("--batch", type=int, help="every configuration at this batch instead (a quick check)")
    p.add_argument("--image", help="every configuration at this image shape instead, e.g. 8x8x3")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output directory")
    p.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated, of {', '.join(IMPLS)} (fastvae "
                   "always: the ratios are to it)")
    p.add_argument("--tag", default="dmol", help="the folder's prefix: <tag>-memory-<device>-<date>/")
    p.add_argument("--from-records", metavar="RECORDS", help="only recompute results.md beside this records.json")
    p.add_argument("--child", nargs=2, metavar=("CONFIG", "IMPL"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    from ..studies.records import git_state, recompute, RECORDS, TABLE, write_json

    if a.from_records:
        return recompute(a.from_records, table)
    if a.child:
        print(json.dumps(child(_config(a.child[0]), a.child[1])))
        return 0
    import torch

    from ..harness.cases import MEMORY
    from ..harness.metadata import _cpu_name

    commit, dirty = git_state(ROOT)  # at the start: the code measured

    rows, configs = [], []
    for config in MEMORY:
        config = dataclasses.replace(config, **{k: v for k, v in (("batch", a.batch), ("image", a.image)) if v})
        if (a.only and config.op != a.only) or config in configs:
            continue
        configs.append(config)
        got = {impl: _run_child(config, impl) for impl in IMPLS if impl in a.impls.split(",") + ["fastvae"]}
        for impl, r in got.items():
            ok = "error" not in r and "error" not in got["fastvae"]
            rows.append(dict(r, config=config.label(), op=config.op, impl=impl,
                             kept_ratio=r["kept"] / max(got["fastvae"]["kept"], 1) if ok else None))
            print(f"{config.label():40s} {impl:8s} " + (r.get("error") or
                  f"kept {r['kept'] / MIB:8.1f} MiB (new {r['kept_new'] / MIB:.1f}), peak"
                  f" {r['step_peak'] / MIB:8.1f} MiB"), flush=True)
    gpu = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if gpu else f"{_cpu_name()}, {os.cpu_count()} logical cores"
    meta = dict(tool="memory", device=device, date=datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
                command=" ".join(["python benchmarks/memory.py"] + list(sys.argv[1:] if argv is None else argv)),
                torch=torch.__version__, triton=_triton_version(), python=platform.python_version(),
                commit=commit, dirty=dirty, note=_note(gpu), rows=rows)
    folder = Path(a.out) / f"{a.tag}-memory-{'gpu' if gpu else 'cpu'}-{meta['date']}"
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / RECORDS, meta)
    (folder / TABLE).write_text(table(meta))
    print(f"wrote {folder / RECORDS} and {folder / TABLE}")
    return 0


def _note(gpu):
    if gpu:
        return "Memory only (no timing). Peaks: the CUDA allocator's."
    return ("Memory only (no timing). No GPU: fastvae is its eager route (the autograd function "
            "fastvae_mixture, FASTVAE_BACKEND=triton, which stores the parameters' gradient in the forward and "
            "saves only that: the route and the saved tensors of a GPU), its Triton kernels run through Triton's "
            "interpreter (TRITON_INTERPRET=1), whose NumPy copies add to its resident set. Peaks: resident set "
            "(VmHWM after resetting it, minus VmRSS before the step), at the kernel's page-accounting resolution.")


def _triton_version():
    try:
        import triton

        return triton.__version__
    except ImportError:
        return None


if __name__ == "__main__":
    sys.exit(main())
