"""What every benchmark case is made of, and how a fused op becomes timed calls.

A ``Case`` (one entry of ``cases.CASES``) describes one op; a ``Config`` is one point of its
sweep. For a fused op, ``op_variants`` builds three implementations of the same computation,
checked equal before they are timed:

* ``eager``: the case's ``forward`` on ``fastvae.reference``, plain PyTorch, what a user writes
  without fastvae;
* ``compile``: ``torch.compile(dynamic=False, fullgraph=True)`` of that same forward, compiled
  per shape (Inductor fuses the elementwise work too: the strongest peer);
* ``fastvae``: the case's ``forward`` on ``fastvae``'s public functions (the Triton kernels on
  a GPU).

The training step (``train_step.py``) builds its own and adds ``fastvae_compile``.
"""

import dataclasses
import math
from typing import Callable, NamedTuple, Optional

import torch

import fastvae
from fastvae import reference

IMPLS = ("eager", "compile", "fastvae")
TRAIN_IMPLS = IMPLS + ("fastvae_compile",)
PEERS = ("compile", "fastvae_compile")  # their failures are reported, not fatal
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
# largest relative error (2-norm, in float64) allowed against eager PyTorch, per dtype
TOL = {"float32": 1e-4, "bfloat16": 3e-2}


@dataclasses.dataclass(frozen=True)
class Config:
    op: str
    batch: int
    dtype: str
    dim: Optional[int] = None       # D: elements per example of the data / logits, as a (B, D) matrix
    latent: Optional[int] = None    # L: latent size
    targets: Optional[str] = None   # "uint8" (0/1, one byte), "float" (logits' dtype), or counts' "int32"
    model: Optional[str] = None     # train_step: "mlp" or "conv"
    image: Optional[str] = None     # "CxHxW": the data are (B, C, H, W) images instead of (B, D)
    samples: Optional[int] = None   # K: importance samples per example
    levels: Optional[int] = None    # a hierarchy's levels, each with a latent of L elements

    def label(self, batch=True):
        parts = [f"B={self.batch}"] if batch else []
        parts += [f"{k}={v}" for k, v in (("model", self.model), ("K", self.samples), ("D", self.dim),
                                          ("image", self.image), ("levels", self.levels), ("L", self.latent),
                                          ("x", self.targets))
                  if v is not None]
        return " ".join(parts)

    def sizes(self):
        """(e, t, B): bytes per element of the float inputs and of the targets, and the batch."""
        e = DTYPES[self.dtype].itemsize
        t = {"uint8": 1, "int16": 2, "int32": 4, "int64": 8}.get(self.targets, e)
        return e, t, self.batch

    def example_shape(self):
        """One example's data shape: (D,) or (C, H, W)."""
        return tuple(int(n) for n in self.image.split("x")) if self.image else (self.dim,)

    def elements(self):
        """Data elements per example: D, or C*H*W."""
        return math.prod(self.example_shape())

    @classmethod
    def keys(cls):
        """The fields, in order: what identifies a configuration in a record."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def of(cls, record):
        """The configuration of a result record (a dict with the fields, and more)."""
        return cls(**{k: record[k] for k in cls.keys()})


class Inputs(NamedTuple):
    args: tuple                   # the op's tensor arguments
    wrt: tuple                    # the arguments that get gradients
    upstream: tuple               # the gradients of the outputs (what the loss sends back)
    eps: Optional[torch.Tensor]   # noise for the equality check (None: the op draws none)


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmarked op: what it computes, how to build and run it, what it must move, where
    it is swept. The fields after ``sweeps`` have defaults that suit a fused op."""

    name: str                     # the --only name and the records' "op"
    modes: tuple                  # of "fwd", "bwd", "fwd+bwd", "train": the last is the one swept to fill memory
    what: str                     # one line for the Markdown: the code that is timed
    sweeps: dict                  # sweep name -> families: dicts of Config fields, all but batch and dtype
    least_bytes: dict = dataclasses.field(default_factory=dict)  # mode -> (text, f(config, e, t, B))
    inputs: Optional[Callable] = None     # inputs(config, device) -> Inputs
    forward: Optional[Callable] = None    # forward(lib, *args, eps=None) -> tuple of outputs
    outputs: tuple = ()           # names of the outputs, for messages
    grads: tuple = ()             # names of the arguments in Inputs.wrt, for messages
    noise_free: tuple = ()        # values that do not depend on the noise (checked on the timed path too)
    impls: tuple = IMPLS
    batches: Optional[dict] = None        # sweep name -> batch sizes; None: the sweep's op batches
    dtypes: Optional[tuple] = None        # the only dtypes it runs in; None: any
    build: Optional[Callable] = None      # build(case, config, device) -> variants; None: op_variants
    skip: Optional[Callable] = None       # skip(dtypes) -> why it cannot run here, or None

    def variants(self, c, dev):
        """-> (impl -> (check(): values compared with eager, modes: mode -> (setup, run)), the
        values' names, the tolerance)."""
        return (self.build or op_variants)(self, c, dev)

    def nbytes(self, c, mode):
        entry = self.least_bytes.get(mode)
        return None if entry is None else int(entry[1](c, *c.sizes()))

    def skip_reason(self, dtypes):
        return self.skip(dtypes) if self.skip is not None else None


def _op_fn(case, impl):
    lib = fastvae if impl == "fastvae" else reference

    def fn(*args, eps=None):
        return case.forward(lib, *args, eps=eps)

    # fullgraph: a graph break would time eager pieces under the "compile" name
    return torch.compile(fn, dynamic=False, fullgraph=True) if impl == "compile" else fn


def _op_check_values(fn, inputs):
    outs = fn(*inputs.args, eps=inputs.eps)
    grads = torch.autograd.grad(outs, inputs.wrt, inputs.upstream)
    return [o.detach() for o in outs] + list(grads)


def op_modes(fn, inputs):
    """mode -> (setup, run): ``setup()`` runs untimed, ``run(state)`` is timed."""
    def forward(_=None):
        return fn(*inputs.args)

    def backward(outs):
        torch.autograd.grad(outs, inputs.wrt, inputs.upstream)

    def forward_backward(_=None):
        backward(forward())

    return {"fwd": (None, forward), "bwd": (forward, backward), "fwd+bwd": (None, forward_backward)}


def op_variants(case, c, dev):
    """The three implementations of a fused op's case at configuration ``c``."""
    inputs = case.inputs(c, dev)
    names = list(case.outputs) + ["grad " + n for n in case.grads]
    # The timed calls draw their own noise (eps=None: fastvae's in-kernel Philox path, the
    # reference's randn); the values that do not depend on it are compared on that path too.
    drawn = [names.index(n) for n in case.noise_free] if inputs.eps is not None else []

    def check(fn):
        values = _op_check_values(fn, inputs)
        if drawn:
            timed = _op_check_values(fn, inputs._replace(eps=None))
            values += [timed[i] for i in drawn]
        return values

    variants = {}
    for impl in case.impls:
        fn = _op_fn(case, impl)
        variants[impl] = (lambda fn=fn: check(fn), op_modes(fn, inputs))
    return variants, names + [f"{names[i]} (noise drawn in the op, as timed)" for i in drawn], TOL[c.dtype]
