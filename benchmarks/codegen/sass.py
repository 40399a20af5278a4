"""Read a compiled Triton kernel's machine code (SASS): registers, stack, access widths, and
the instructions it issues per element. No GPU needed: Triton's wheel carries ``cuobjdump``.

Instructions per useful element: every thread of a program runs the kernel's instructions, so a
program issues ``dynamic instructions x threads`` thread-instructions for the elements it covers
that lie inside the tensor (masked lanes are not useful). The dynamic count is the whole kernel,
prologue and final reductions included, with its main loop (the one holding the global loads)
counted once per trip: a loop the compiler unrolled ``u`` times holds ``u`` trips' loads, so its
body runs ``trips / u`` times. Code that a normal run skips (slow paths) is counted as if run,
so the figure is an upper bound of what the hot path issues.
"""

import os
import re
import subprocess
import tempfile
from typing import NamedTuple, Optional

_INSTR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);")
_BRA_TARGET = re.compile(r"(?:0x)?([0-9a-f]+)\s*$")
_RESOURCES = re.compile(r"REG:(\d+)\s+STACK:(\d+)\s+SHARED:(\d+)\s+LOCAL:(\d+)")


class Sass(NamedTuple):
    registers: int
    stack_bytes: int
    shared_bytes: int
    instructions: int          # static count, up to the last EXIT (no padding)
    loop_body: int             # instructions in the main loop (0: straight-line)
    loop_loads: int            # global loads in the main loop's body
    loop_mufu: int             # special-function instructions in the main loop's body
    mufu: int                  # special-function unit instructions (exp2, log2, rcp, sin, ...)
    widest_load_bits: int      # global loads
    widest_store_bits: int     # global stores
    text: str
    inner_loops: tuple = ()    # (instructions, global loads, mufu) of each innermost loop that loads


def _tool(name):
    from triton import knobs

    return getattr(knobs.nvidia, name).path


def _run(tool, *args):
    out = subprocess.run([_tool(tool), *args], capture_output=True, text=True, check=True)
    return out.stdout


def _width(opcode: str) -> int:
    parts = opcode.split(".")
    for p in parts[1:]:
        if p in ("128", "64"):
            return int(p)
        if p in ("U8", "S8"):
            return 8
        if p in ("U16", "S16"):
            return 16
    return 32


def parse(sass_text: str, resources_text: str = "") -> Sass:
    """Summarise one function's SASS (``cuobjdump -sass`` of a cubin holding one kernel)."""
    instrs = [(int(a, 16), op, rest) for a, op, rest in _INSTR.findall(sass_text)]
    last_exit = max((i for i, (_, op, _) in enumerate(instrs) if op == "EXIT"), default=len(instrs) - 1)
    body = instrs[: last_exit + 1]
    # a trailing `BRA` to itself after the last EXIT is padding; loops branch backwards before it
    addr_index = {a: i for i, (a, _, _) in enumerate(body)}
    loop, loop_loads, loop_start = 0, 0, 0
    for i, (addr, op, rest) in enumerate(body):
        m = _BRA_TARGET.search(rest.strip()) if op.startswith("BRA") else None
        if m and int(m.group(1), 16) < addr and int(m.group(1), 16) in addr_index:
            start = addr_index[int(m.group(1), 16)]
            loads = sum(o.startswith("LDG") for _, o, _ in body[start:i + 1])
            if loads > loop_loads or (loads == loop_loads and i - start + 1 > loop):
                loop, loop_loads, loop_start = i - start + 1, loads, start
    spans = []  # every loop: (start, end) of its body
    for i, (addr, op, rest) in enumerate(body):
        m = _BRA_TARGET.search(rest.strip()) if op.startswith("BRA") else None
        if m and int(m.group(1), 16) < addr and int(m.group(1), 16) in addr_index:
            spans.append((addr_index[int(m.group(1), 16)], i))
    inner = tuple((e - s + 1, sum(o.startswith("LDG") for _, o, _ in body[s:e + 1]),
                   sum(o.startswith("MUFU") for _, o, _ in body[s:e + 1]))
                  for s, e in spans if not any(s <= s2 and e2 <= e and (s2, e2) != (s, e) for s2, e2 in spans))
    inner = tuple(loop for loop in inner if loop[1])
    loads = [_width(op) for _, op, _ in body if op.startswith("LDG")]
    stores = [_width(op) for _, op, _ in body if op.startswith("STG")]
    res = _RESOURCES.search(resources_text)
    reg, stack, shared, _ = (int(g) for g in res.groups()) if res else (0, 0, 0, 0)
    loop_mufu = sum(op.startswith("MUFU") for _, op, _ in body[loop_start:loop_start + loop])
    mufu = sum(op.startswith("MUFU") for _, op, _ in body)
    return Sass(reg, stack, shared, len(body), loop, loop_loads, loop_mufu, mufu,
                max(loads, default=0), max(stores, default=0), sass_text, inner)


def of_cubin(cubin: bytes) -> Sass:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        return parse(_run("cuobjdump", "-sass", path), _run("cuobjdump", "--dump-resource-usage", path))


def body_runs(s: Sass, trips: int = 1, loads_per_trip: Optional[int] = None) -> float:
    """How often the main loop's body runs per program: ``trips / u``, ``u`` its unroll factor
    (its global loads over ``loads_per_trip``); 1 for straight-line code."""
    if not s.loop_body or not s.loop_loads:
        return 1.0
    if loads_per_trip == "not unrolled":  # one trip per run of the body, whatever it loads
        return float(trips)
    if not loads_per_trip or s.loop_loads % loads_per_trip:
        raise ValueError(f"main loop holds {s.loop_loads} global loads, not a multiple of {loads_per_trip} per trip")
    return trips / (s.loop_loads // loads_per_trip)


def dynamic_instructions(s: Sass, trips: int = 1, loads_per_trip: Optional[int] = None) -> float:
    """Instructions one thread issues per program (see the module docstring)."""
    return s.instructions + s.loop_body * (body_runs(s, trips, loads_per_trip) - 1)


def dynamic_mufu(s: Sass, trips: int = 1, loads_per_trip: Optional[int] = None) -> float:
    """Special-function instructions one thread issues per program."""
    return s.mufu + s.loop_mufu * (body_runs(s, trips, loads_per_trip) - 1)


def sweep_instructions(s: Sass) -> tuple:
    """(instructions, mufu) one thread issues per trip of all the innermost loops that load: a
    kernel that sweeps its rows several times (``kernels/softmax_counts.py``), per chunk of
    elements; what runs once per row outside the loops is left out (a row has G elements)."""
    return sum(n for n, _, _ in s.inner_loops), sum(m for _, _, m in s.inner_loops)


def instructions_per_element(s: Sass, threads: int, elements_per_program: float, trips: int = 1,
                             loads_per_trip: Optional[int] = None) -> float:
    """Thread-instructions per useful element (see the module docstring)."""
    return dynamic_instructions(s, trips, loads_per_trip) * threads / elements_per_program
