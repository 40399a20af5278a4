"""Machine-code report: what each fastvae kernel costs per element on an sm_90 GPU (H100/H200).

Usage: ``python benchmarks/sass_report.py [--json FILE] [--check] [--only TEXT] [--sass TEXT]``
(the script unsets ``TRITON_INTERPRET`` before anything imports triton, then calls ``main``).

Compiles every kernel variant the library launches, through fastvae's own launchers and
Triton's own launch path, with the specialisation a real launch gets at B = 65536, D = 784,
latent 64 (16-byte-aligned pointers, sizes and row strides divisible by 16, unit column
strides), without launching anything and without a GPU (on a machine with one, the real device
and real allocations are used). Prints per kernel: registers, stack (local memory) bytes, the
widest global load and store, special-function (MUFU) and all instructions per useful element
(see ``sass.py`` here for the definition), and the budget where one applies.

``--json FILE`` writes one object per variant (keys ``kernel``, ``logits_dtype``,
``target_dtype``, ``triton``, ``registers``, ``stack_bytes``, ``widest_load_bits``,
``widest_store_bits``, ``instructions_per_element`` and a few more). ``--check`` exits 1 when a
budget is missed. Exit status 2 when nothing can be compiled here.
"""

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

import torch

from .. import launches
from . import sass, variants


def _device():
    if torch.cuda.is_available():
        return contextlib.nullcontext(torch.device("cuda"))
    return launches.sm90_without_a_gpu()


def measure(variant, dev):
    """Compile one variant; returns its report row (a dict)."""
    with launches.compile_only() as caught:
        variant.launch(dev)
    if len(caught) != 1:
        raise RuntimeError(f"{variant.name}: expected one launch, got {[c.name for c in caught]}")
    launch = caught[0]
    code = sass.of_cubin(launch.compiled.asm["cubin"])
    threads = 32 * launch.compiled.metadata.num_warps
    programs = math.prod(launch.grid) if isinstance(launch.grid, tuple) else launch.grid
    per_program = variant.elements / programs
    if variant.chunk is not None:  # a kernel that sweeps its rows: its loops per chunk of elements
        dyn, mufu = sass.sweep_instructions(code)
        ipe, mufu = (v * threads / variant.chunk(launch.kwargs) for v in (dyn, mufu))
    else:
        trips = variant.trips(launch.kwargs)
        dyn = sass.dynamic_instructions(code, trips, variant.loads_per_trip)
        ipe = dyn * threads / per_program
        mufu = sass.dynamic_mufu(code, trips, variant.loads_per_trip) * threads / per_program
    return dict(
        kernel=variant.kernel, variant=variant.name, logits_dtype=variant.dtype, target_dtype=variant.target,
        triton=launches.triton_version(), registers=code.registers, stack_bytes=code.stack_bytes,
        shared_bytes=code.shared_bytes, widest_load_bits=code.widest_load_bits,
        widest_store_bits=code.widest_store_bits, instructions_per_element=round(ipe, 2),
        mufu_per_element=round(mufu, 3),
        instructions=code.instructions, dynamic_instructions=round(dyn, 1),
        loop_body=code.loop_body, threads=threads, programs=programs, budget=variant.budget,
        within_budget=None if variant.budget is None else bool(ipe <= variant.budget and code.stack_bytes == 0),
    ), code


def _table(rows):
    head = (f"{'kernel':24s} {'dtypes':12s} {'variant':34s} {'regs':>4s} {'stack':>5s} {'ld':>4s} {'st':>4s} "
            f"{'mufu/el':>7s} {'instr/el':>8s} {'budget':>6s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        dt = r["logits_dtype"] + ("/" + r["target_dtype"] if r["target_dtype"] else "")
        budget = "" if r["budget"] is None else f"{r['budget']:g}" + ("" if r["within_budget"] else " MISS")
        lines.append(f"{r['kernel']:24s} {dt:12s} {r['variant']:34s} {r['registers']:4d} {r['stack_bytes']:5d} "
                     f"{r['widest_load_bits']:4d} {r['widest_store_bits']:4d} {r['mufu_per_element']:7.2f} "
                     f"{r['instructions_per_element']:8.1f} {budget:>6s}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python benchmarks/sass_report.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", metavar="FILE", help="write the rows as a JSON list to FILE ('-' for stdout)")
    p.add_argument("--check", action="store_true", help="exit 1 when a kernel misses its budget")
    p.add_argument("--only", metavar="TEXT", help="only variants whose kernel or variant name contains TEXT")
    p.add_argument("--sass", metavar="TEXT", help="also print the SASS of the variants matching TEXT")
    a = p.parse_args(argv)
    try:
        import triton  # noqa: F401
        from triton import knobs  # noqa: F401
    except ImportError as e:
        print(f"sass_report: cannot compile here: {e}", file=sys.stderr)
        return 2
    rows = []
    with _device() as dev:
        for v in variants.VARIANTS:
            if a.only and a.only not in v.kernel and a.only not in v.name:
                continue
            row, code = measure(v, dev)
            rows.append(row)
            if a.sass and (a.sass in v.kernel or a.sass in v.name):
                print(f"==== {v.kernel} {v.name}\n{code.text}")
    print(f"sm_90 machine code, triton {launches.triton_version()}, torch {torch.__version__}, "
          f"B={variants.B} D={variants.D} latent={variants.L}")
    print(_table(rows))
    if a.json:
        text = json.dumps(rows, indent=1)
        if a.json == "-":
            print(text)
        else:
            Path(a.json).write_text(text + "\n")
    missed = [r for r in rows if r["within_budget"] is False]
    if missed:
        print(f"{len(missed)} kernel(s) over budget: " + ", ".join(f"{r['kernel']} {r['variant']}" for r in missed))
    return 1 if (a.check and missed) else 0

