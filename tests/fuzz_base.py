"""The building blocks of the differential fuzzing (``fuzz_cases``): the drawn case (``Spec``),
a fuzzed op (``Entry``), the choices the strategy draws from, and value helpers."""

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

CPU = torch.device("cpu")
DTYPES = ("float32", "bfloat16", "float16", "float64")
UPSTREAMS = ("ones", "random", "strided", "zero", "bf16-strided", "scaled", "one-row", "none")
BATCHES = (1, 2, 3, 5, 7, 8, 13, 16, 17, 31, 33, 64)
ROW_LENGTHS = (1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 64, 65, 100, 127, 129, 255, 257, 784, 1031)
SMALL_DIMS = (1, 2, 3, 4, 5, 7, 8)
SAMPLES = (1, 2, 3, 5)


@dataclass(frozen=True)
class Spec:
    """One drawn case of entry ``entry``: batch ``B``, one row's shape ``F``, dtype (its name),
    K samples, the tiles (``interpreter`` or ``gpu``), the entry's options, each input's layout
    and each output's upstream gradient, as (name, value) pairs; ``seed`` for the values."""

    entry: str
    B: int
    F: tuple
    dtype: str
    seed: int
    K: int = 1
    tiles: str = "interpreter"
    options: tuple = ()
    layouts: tuple = ()
    upstream: tuple = ()

    def option(self, name, default=None):
        return dict(self.options).get(name, default)

    @property
    def torch_dtype(self):
        return getattr(torch, self.dtype)

    @property
    def shape(self):
        return (self.B, *self.F)

    @property
    def D(self):
        return math.prod(self.F)


@dataclass(frozen=True)
class Entry:
    """A fuzzed op. ``tensors(spec)``: its inputs, name -> (value, differentiable); a value is a
    tensor (laid out as drawn) or anything else (passed as it is). ``call(lib, spec, inputs)``:
    the op through ``lib`` (``fastvae`` or ``fastvae.reference``), a tuple of outputs.
    ``options(B, F, dtype)``: the entry's own choices, name -> tuple. ``outputs(spec)``: how many.
    ``sums(spec, i)``: how many terms output i sums (its atol grows with them). ``noise(spec)``:
    for an op that draws noise (option ``noise``: ``given`` or ``drawn``), the noise a drawn call
    uses, for the reference. ``covers``: the public functions it exercises."""

    name: str
    tensors: Callable
    call: Callable
    outputs: Callable
    covers: tuple
    options: Callable = lambda B, F, dtype: {}
    sums: Callable = lambda spec, i: spec.D
    noise: Optional[Callable] = None
    dtypes: tuple = DTYPES
    samples: bool = False
    extra_grad_scale: dict = field(default_factory=dict)
    softmax: bool = False  # results weighted by a softmax of float32 sums: held to their conditioning
    flat: bool = False  # rows of one dim only (an op over (B, G))
    steep: float = 0.0  # inputs scaled by up to this (the mixture's e^7 at its log-scale clamp): ulp x steep

    def out_dtype(self, spec, i):
        return torch.float64 if spec.dtype == "float64" else torch.float32

    def out_scale(self, spec, i):
        return max(1.0, self.sums(spec, i) / 64)

    def tol_dtype(self, spec, own):
        """The dtype whose tolerance a result of dtype ``own`` is held to: its own; float32's
        for float64 at extreme values, where the float64 reference's own formulas cancel (log
        q's ``(z - mu) / std`` at std << |mu| loses ~1e-8 relative: the kernels, which use eps
        itself, are the more accurate there)."""
        if own == torch.float64 and spec.option("values") == "extreme":
            return torch.float32
        return own

    def grad_scale(self, spec, name):
        """How many more terms than its own elements the gradient of input ``name`` sums, on top
        of its layout's: the entry's own factor, and K for the targets and extra arguments that
        every one of K samples reads."""
        shared = self.samples and (name == "x" or name.startswith("extra"))
        return self.extra_grad_scale.get(name, 1.0) * (spec.K if shared else 1)


def sprinkle(t, values, share=0.5):
    """``t`` with about ``share`` of its elements replaced by values drawn from ``values``."""
    pick = torch.tensor(values, dtype=torch.float64)[torch.randint(0, len(values), t.shape)]
    return torch.where(torch.rand(t.shape) < share, pick.to(t.dtype), t)


def normal(shape, dtype, scale=1.0):
    return (torch.randn(shape, dtype=torch.float64) * scale).to(dtype)


def dataclass_replace(spec, **kw):
    return dataclasses.replace(spec, **kw)
