"""Intercept the point where fastvae hands a kernel to Triton, for the tools that must not launch.

fastvae's launchers (``fastvae.kernels``) end in ``JITFunction.run`` (what ``kernel[grid](...)``
calls): it specialises the arguments (dtypes, 16-byte alignment, integers divisible
by 16 or equal to 1), compiles on a cache miss and launches. Two tools replace that one call:

* ``compile_only()``: compile exactly what a real launch would (same specialisation) and record
  it, without launching; with ``sm90_without_a_gpu()`` this works on a machine with no GPU
  (the machine-code report, ``codegen/``).
* ``no_launch()``: make every launch a no-op, so that everything of fastvae's own (validation,
  autograd, output allocation, tiling) still runs and can be timed on its own
  (``benchmarks/run.py --overhead``, ``harness/overhead.py``).

Run these without ``TRITON_INTERPRET``: the interpreter's kernels are not ``JITFunction``s.
"""

import contextlib
from typing import NamedTuple

import torch
import triton
from triton.runtime import driver
from triton.runtime.jit import JITFunction

_run = JITFunction.run


class Launch(NamedTuple):
    """One intercepted launch: the kernel's name, its compiled form, grid and arguments (every
    argument by name, however it was passed, and the options such as ``num_warps``)."""

    name: str
    compiled: object  # triton CompiledKernel (asm["cubin"], metadata)
    grid: tuple
    kwargs: dict


class _Sm90:
    """Just enough of Triton's CUDA driver for compiling, on a machine without a GPU: the target
    is sm_90 (H100/H200). Tensors given to kernels are ``meta`` tensors, whose ``data_ptr()`` is
    0, so every pointer specialises as 16-byte aligned, as a real allocation does."""

    def get_current_target(self):
        from triton.backends.compiler import GPUTarget

        return GPUTarget("cuda", 90, 32)

    def get_current_device(self):
        return 0

    def get_current_stream(self, device=None):
        return 0

    def get_active_torch_device(self):
        return torch.device("meta")

    def get_device_interface(self):  # pragma: no cover - only for Triton's own benchmarking
        raise RuntimeError("no GPU: this driver only compiles")


@contextlib.contextmanager
def sm90_without_a_gpu():
    """Make Triton compile for sm_90 although no GPU is here (restored afterwards)."""
    previous = driver._active  # None until Triton first looks for a driver
    driver.set_active(_Sm90())
    try:
        yield torch.device("meta")
    finally:
        driver._active = previous


@contextlib.contextmanager
def compile_only():
    """Record every launch (``Launch``) in the yielded list, compiled but not run."""
    launches = []

    def run(self, *args, grid, warmup, **kwargs):
        compiled = _run(self, *args, grid=grid, warmup=True, **kwargs)
        launches.append(Launch(self.fn.__name__, compiled, grid, dict(zip(self.arg_names, args), **kwargs)))
        return compiled

    JITFunction.run = run
    try:
        yield launches
    finally:
        JITFunction.run = _run


@contextlib.contextmanager
def no_launch():
    """Every ``kernel[grid](...)`` returns at once: no compile, no launch (nor interpretation,
    under ``TRITON_INTERPRET=1``). Yields a list of the kernel names whose launches were skipped."""
    from triton.runtime.interpreter import InterpretedFunction

    skipped = []

    def run(self, *args, grid, warmup, **kwargs):
        skipped.append(self.fn.__name__)

    interpreted = InterpretedFunction.run
    JITFunction.run = InterpretedFunction.run = run
    try:
        yield skipped
    finally:
        JITFunction.run, InterpretedFunction.run = _run, interpreted


def triton_version():
    return triton.__version__
