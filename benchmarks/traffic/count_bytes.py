"""Count the passes and bytes of one VAE objective step: eager PyTorch vs fastvae, eager and
under ``torch.compile``.

No timing and no GPU. The same code, ``z, kl = reparameterize_kl(mu, logvar)`` then
``loss = elbo_loss(logits, x, kl=kl)`` and a backward through the loss and z, is traced with
fake tensors three times:

* ``eager PyTorch``: the ``torch`` backend (``fastvae.reference``). Every ATen op dispatched
  counts as one pass reading its tensor inputs and writing its outputs once (views and
  allocations are free); eager launches at least one kernel per op, so this is a lower bound.
* ``fastvae``: the eager route. ATen ops count as above; each Triton kernel launch (caught at
  ``fastvae.kernels._launch.launch``, where fastvae hands work to Triton) counts its distinct
  tensor arguments once (an expanded view by the elements it holds), except the rescale of a
  stored gradient and the refresh of stored partial sums, counted as what they move when the
  upstream gradient is the expected one (as for ``loss.backward()``): their programs read the
  upstream gradient and return.
* ``fastvae compiled``: the route ``torch.compile`` takes, fastvae's ``torch.library`` custom
  ops, each counted as one pass over its inputs and outputs (the compiler treats them as opaque;
  it fuses the small (B,)-sized glue between them, counted here unfused). Its graphs are
  functional, so the Bernoulli gradient is recomputed in backward rather than stored and rescaled.

``--loss counts`` traces scVI's loss instead, at the CELLxGENE census model's shape by default
(B = 1024 cells, D = 8000 genes): the zero-inflated negative binomial with scVI's softmax
decoder, a per-gene log theta and int32 counts, ``elbo_loss(logits, x, kl=kl, likelihood=
"zero_inflated_negative_binomial", log_theta=..., log_library=..., zero_inflation_logits=...)``
and its backward; the eager route is scvi-tools' own formulation (``benchmarks/harness/scvi.py``).

Usage: ``python benchmarks/count_bytes.py [--loss elbo|counts] [--batch B --dim D --latent L
--dtype float32|bfloat16 --targets uint8|float]``.
"""

import argparse
import contextlib
from collections import Counter

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

import fastvae
from fastvae import _backend
from fastvae.ops import _route

from ..harness import scvi

_FREE = ("detach", "lift_fresh", "device", "empty", "empty_like", "empty_strided", "zeros_like", "ones_like",
         "full_like", "new_empty", "new_empty_strided")
ROUTES = ("eager PyTorch", "fastvae", "fastvae compiled")


def _nbytes(tensors):
    # distinct tensors once each; an expanded view (stride 0) by the elements it really holds
    seen = {}
    for t in tensors:
        if isinstance(t, torch.Tensor):
            held = 1
            for size, stride in zip(t.shape, t.stride()):
                held *= size if stride else 1
            seen[id(t)] = held * t.element_size()
    return sum(seen.values())


class _Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops, self.bytes = Counter(), Counter()

    def add(self, key, n):
        self.ops[key] += 1
        self.bytes[key] += n

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if func.is_view or name in _FREE:
            return out
        key = f"{func.namespace}::{name}" if func.namespace != "aten" else name
        self.add(key, _nbytes(torch.utils._pytree.tree_leaves((args, kwargs, out))))
        return out


@contextlib.contextmanager
def _count_launches(counter_box):
    """Count each kernel launch in the counter that is current (``counter_box[0]``); nothing runs."""
    from fastvae.kernels import _launch

    real = _launch.launch

    def launch(kernel, programs, args, bound):
        name = kernel.fn.__name__
        consts = _launch.constants(kernel, bound)
        if name == "_scale_rows_kernel" and consts["IN_PLACE"]:
            n = _nbytes([args[2]])  # the upstream gradient only: every row takes the early exit
        elif consts.get("SKIP_IF_ONE"):  # a refresh of partial sums: every program takes the early exit
            n = _nbytes([args[kernel.arg_names.index("g_ptr")]])
        else:
            n = _nbytes(args)
        counter_box[0].add(f"triton::{name.strip('_')}", n)

    _launch.launch = launch
    try:
        yield
    finally:
        _launch.launch = real


def _count_step(route, B, G, dtype):
    """scVI's loss, forward (returns the loss and what backward needs) on ``route``."""
    logits = torch.empty(B, G, dtype=dtype).requires_grad_(True)
    x = torch.empty(B, G, dtype=torch.int32)
    log_theta = torch.empty(G, dtype=dtype).requires_grad_(True)
    lib = torch.empty(B, dtype=torch.float32)
    zi = torch.empty(B, G, dtype=dtype).requires_grad_(True)
    kl = torch.empty(B, dtype=torch.float32).requires_grad_(True)
    if route == "eager PyTorch":
        return (kl - scvi.softmax_count_ll(logits, x, log_theta, lib, zi)).mean()
    return fastvae.elbo_loss(logits, x, kl=kl, likelihood="zero_inflated_negative_binomial", log_theta=log_theta,
                             log_library=lib, zero_inflation_logits=zi)


def trace(route, B, D, L, dtype, targets, loss="elbo"):
    """Forward and backward counters for one step on ``route`` (one of ``ROUTES``)."""
    box = [None]
    stack = contextlib.ExitStack()
    stack.enter_context(fastvae.backend("torch" if route == "eager PyTorch" else "triton"))
    if route != "eager PyTorch":
        stack.enter_context(_backend.assume_kernels())
        stack.enter_context(_count_launches(box))
    if route == "fastvae compiled":
        stack.enter_context(_compile_route())
    with stack, FakeTensorMode():
        if loss == "counts":
            with _Count() as fwd:
                box[0] = fwd
                value = _count_step(route, B, D, dtype)
            with _Count() as bwd:
                box[0] = bwd
                value.backward()
            return fwd, bwd
        logits = torch.empty(B, D, dtype=dtype).requires_grad_(True)
        x = torch.empty(B, D, dtype=torch.uint8 if targets == "uint8" else dtype)
        mu = torch.empty(B, L, dtype=dtype).requires_grad_(True)
        logvar = torch.empty(B, L, dtype=dtype).requires_grad_(True)
        grad_z = torch.empty(B, L, dtype=dtype)  # what the decoder sends back to z
        with _Count() as fwd:
            box[0] = fwd
            z, kl = fastvae.reparameterize_kl(mu, logvar)
            loss = fastvae.elbo_loss(logits, x, kl=kl)
        with _Count() as bwd:
            box[0] = bwd
            torch.autograd.backward([loss, z], [torch.ones_like(loss), grad_z])
    return fwd, bwd


@contextlib.contextmanager
def _compile_route():
    # what the public functions run while torch.compile traces them: the custom ops
    real = _route.compiling
    _route.compiling = lambda: True
    try:
        yield
    finally:
        _route.compiling = real


def _line(c):
    return ", ".join(f"{k} x{v}" for k, v in sorted(c.ops.items()))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loss", choices=["elbo", "counts"], default="elbo",
                   help="elbo: reparameterize_kl + elbo_loss; counts: scVI's ZINB loss with its softmax decoder")
    p.add_argument("--batch", type=int, default=None, help="B (default 65536; 1024 for --loss counts)")
    p.add_argument("--dim", type=int, default=None, help="D (default 784; 8000 genes for --loss counts)")
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    p.add_argument("--targets", choices=["uint8", "float"], default="uint8")
    a = p.parse_args(argv)
    counts = a.loss == "counts"
    a.batch = a.batch if a.batch is not None else (1024 if counts else 65536)
    a.dim = a.dim if a.dim is not None else (8000 if counts else 784)
    for name in ("batch", "dim", "latent"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be at least 1")
    dtype = getattr(torch, a.dtype)
    B, D, L = a.batch, a.dim, a.latent
    if counts:
        print(f"scVI's loss (zero-inflated negative binomial, softmax decoder, per-gene log theta), forward + "
              f"backward: B={B} cells, D={D} genes, {a.dtype} logits, int32 counts")
    else:
        print(f"reparameterize_kl + elbo_loss, forward + backward: B={B}, D={D}, latent={L}, "
              f"{a.dtype} logits, {a.targets} targets")
    mb = 1e6
    totals = {}
    for label in ROUTES:
        fwd, bwd = trace(label, B, D, L, dtype, a.targets, a.loss)
        f, b = sum(fwd.bytes.values()), sum(bwd.bytes.values())
        totals[label] = f + b
        print(f"{label}: {sum(fwd.ops.values())} ops forward, {sum(bwd.ops.values())} backward; "
              f"{f / mb:.1f} MB + {b / mb:.1f} MB = {(f + b) / mb:.1f} MB moved")
        print(f"  forward:  {_line(fwd)}")
        print(f"  backward: {_line(bwd)}")
        big = sorted(((v, k) for k, v in (fwd.bytes + bwd.bytes).items()), reverse=True)[:4]
        print("  most bytes: " + ", ".join(f"{k} {v / mb:.1f} MB" for v, k in big))
    for label in ROUTES[1:]:
        print(f"ratio eager / {label} bytes: {totals['eager PyTorch'] / totals[label]:.1f}x")
    return totals

