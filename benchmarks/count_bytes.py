"""Count the passes and bytes of one VAE objective step: eager PyTorch vs fastvae.

No timing and no GPU. The same code, ``z, kl = reparameterize_kl(mu, logvar)`` then
``loss = elbo_loss(logits, x, kl=kl)`` and a backward through the loss and z, is traced with
fake tensors twice: once on the ``torch`` backend (``fastvae.reference``, what eager
PyTorch runs) and once on the ``triton`` backend (fastvae's ops). Every op dispatched forward
and backward counts as one pass reading its tensor inputs and writing its outputs once (views
and allocations are free). Eager launches at least one kernel per ATen op
(``binary_cross_entropy_with_logits`` runs several inside), so its count is a lower bound.
fastvae's ops count exactly their kernels' reads and writes, except the in-place rescale of the
stored gradient, which is counted as what it moves when the upstream gradient is the expected
one (as for ``loss.backward()``): its programs read one scalar per row and return.

Usage: ``python benchmarks/count_bytes.py [--batch B --dim D --latent L --dtype float32|bfloat16
--targets uint8|float]``.
"""

import argparse
import contextlib
from collections import Counter

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

import fastvae
from fastvae import _backend

_FREE = ("detach", "lift_fresh", "device", "empty", "empty_like", "empty_strided", "zeros_like", "ones_like",
         "full_like", "new_empty", "new_empty_strided")


class _Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops, self.bytes = Counter(), Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if func.is_view or name in _FREE:
            return out
        ns = func.namespace
        key = f"{ns}::{name}" if ns != "aten" else name
        if key == "fastvae::bernoulli_ll_scale_grad_":
            n = args[1].numel() * args[1].element_size()  # the per-row upstream gradient only
        else:
            flat = torch.utils._pytree.tree_leaves((args, kwargs, out))
            n = sum(t.numel() * t.element_size() for t in flat if isinstance(t, torch.Tensor))
        self.ops[key] += 1
        self.bytes[key] += n
        return out


def trace(backend, B, D, L, dtype, targets):
    """Forward and backward counters for one step on ``backend``."""
    kernels = _backend.assume_kernels() if backend == "triton" else contextlib.nullcontext()
    with fastvae.backend(backend), kernels, FakeTensorMode():
        dev = "cpu"
        logits = torch.empty(B, D, dtype=dtype, device=dev).requires_grad_(True)
        x = torch.empty(B, D, dtype=torch.uint8 if targets == "uint8" else dtype, device=dev)
        mu = torch.empty(B, L, dtype=dtype, device=dev).requires_grad_(True)
        logvar = torch.empty(B, L, dtype=dtype, device=dev).requires_grad_(True)
        grad_z = torch.empty(B, L, dtype=dtype, device=dev)  # what the decoder sends back to z
        with _Count() as fwd:
            z, kl = fastvae.reparameterize_kl(mu, logvar)
            loss = fastvae.elbo_loss(logits, x, kl=kl)
        with _Count() as bwd:
            torch.autograd.backward([loss, z], [torch.ones_like(loss), grad_z])
    return fwd, bwd


def _line(c):
    return ", ".join(f"{k} x{v}" for k, v in sorted(c.ops.items()))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=65536)
    p.add_argument("--dim", type=int, default=784)
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    p.add_argument("--targets", choices=["uint8", "float"], default="uint8")
    a = p.parse_args(argv)
    for name in ("batch", "dim", "latent"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be at least 1")
    dtype = getattr(torch, a.dtype)
    B, D, L = a.batch, a.dim, a.latent
    print(f"reparameterize_kl + elbo_loss, forward + backward: B={B}, D={D}, latent={L}, "
          f"{a.dtype} logits, {a.targets} targets")
    mb = 1e6
    totals = {}
    for label, backend in (("eager PyTorch", "torch"), ("fastvae", "triton")):
        fwd, bwd = trace(backend, B, D, L, dtype, a.targets)
        f, b = sum(fwd.bytes.values()), sum(bwd.bytes.values())
        totals[label] = f + b
        print(f"{label}: {sum(fwd.ops.values())} ops forward, {sum(bwd.ops.values())} backward; "
              f"{f / mb:.1f} MB + {b / mb:.1f} MB = {(f + b) / mb:.1f} MB moved")
        print(f"  forward:  {_line(fwd)}")
        print(f"  backward: {_line(bwd)}")
        big = sorted(((v, k) for k, v in (fwd.bytes + bwd.bytes).items()), reverse=True)[:4]
        print("  most bytes: " + ", ".join(f"{k} {v / mb:.1f} MB" for v, k in big))
    print(f"ratio eager / fastvae bytes: {totals['eager PyTorch'] / totals['fastvae']:.1f}x")
    return totals


if __name__ == "__main__":
    main()
