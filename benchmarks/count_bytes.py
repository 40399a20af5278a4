"""Count the passes and bytes of the VAE objective: eager PyTorch vs fastvae's fused kernels.

No timing and no GPU: the eager reference (``fastvae.reference``) is traced with fake tensors
and every ATen op it dispatches, forward and backward, is counted as one pass that reads its
tensor inputs and writes its outputs once (views are free). Eager launches at least one kernel
per op (``binary_cross_entropy_with_logits`` runs several inside), so its count is a lower
bound. fastvae's bytes are its kernels' own reads and writes, from their code (kernels/*.py).
Usage: ``python benchmarks/count_bytes.py [--batch B --dim D --latent L
--dtype float32|bfloat16 --targets uint8|float]``.
"""

import argparse
from collections import Counter

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

from fastvae import reference


class _Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops, self.bytes = Counter(), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.is_view or func.overloadpacket.__name__ in ("detach", "lift_fresh", "device", "empty_like", "empty", "zeros_like", "ones_like", "full_like"):
            return out
        flat = torch.utils._pytree.tree_leaves((args, kwargs, out))
        n = sum(t.numel() * t.element_size() for t in flat if isinstance(t, torch.Tensor))
        self.ops[func.overloadpacket.__name__] += 1
        self.bytes += n
        return out


def eager_elbo(B, D, L, dtype, targets):
    with FakeTensorMode():
        logits = torch.empty(B, D, dtype=dtype).requires_grad_(True)
        x = torch.empty(B, D, dtype=torch.uint8 if targets == "uint8" else dtype)
        mu = torch.empty(B, L, dtype=dtype).requires_grad_(True)
        logvar = torch.empty(B, L, dtype=dtype).requires_grad_(True)
        eps = torch.empty(B, L, dtype=dtype)
        with _Count() as fwd:
            z = reference.reparameterize(mu, logvar, eps=eps)
            loss = reference.elbo_loss(logits, x, mu, logvar)
        with _Count() as bwd:
            torch.autograd.backward([loss, z], [torch.ones_like(loss), torch.empty_like(z)])
    return fwd, bwd


def fused_elbo(B, D, L, dtype, targets):
    """Bytes fastvae's kernels move for the same computation (its launches, one pass each)."""
    e = torch.empty(0, dtype=dtype).element_size()
    tx = 1 if targets == "uint8" else e
    acc = 8 if dtype == torch.float64 else 4
    fwd = {
        "bernoulli_ll fwd: read logits, x; write ll, grad": B * D * (e + tx + e) + B * acc,
        "reparameterize_kl fwd: read mu, logvar; write z, kl": B * L * 3 * e + B * acc,
    }
    bwd = {
        "bernoulli_ll bwd: read the upstream scalar (early exit)": B * acc,
        "reparameterize_kl bwd: read mu, logvar, grad_z, grad_kl; write 2 grads": B * L * 5 * e + B * acc,
    }
    return fwd, bwd


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=65536)
    p.add_argument("--dim", type=int, default=784)
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    p.add_argument("--targets", choices=["uint8", "float"], default="uint8")
    a = p.parse_args(argv)
    dtype = getattr(torch, a.dtype)
    B, D, L = a.batch, a.dim, a.latent
    print(f"ELBO loss + reparameterized sample, forward + backward: B={B}, D={D}, latent={L}, "
          f"{a.dtype} logits, {a.targets} targets")
    fwd, bwd = eager_elbo(B, D, L, dtype, a.targets)
    ffwd, fbwd = fused_elbo(B, D, L, dtype, a.targets)
    mb = 1e6
    print(f"eager PyTorch: {sum(fwd.ops.values())} ATen ops forward, {sum(bwd.ops.values())} backward; "
          f"{fwd.bytes / mb:.1f} MB + {bwd.bytes / mb:.1f} MB = {(fwd.bytes + bwd.bytes) / mb:.1f} MB moved")
    print("  forward ops:  " + ", ".join(f"{k} x{v}" for k, v in sorted(fwd.ops.items())))
    print("  backward ops: " + ", ".join(f"{k} x{v}" for k, v in sorted(bwd.ops.items())))
    tf, tb = sum(ffwd.values()), sum(fbwd.values())
    print(f"fastvae: 2 kernels forward, 2 backward; {tf / mb:.1f} MB + {tb / mb:.1f} MB = {(tf + tb) / mb:.1f} MB moved")
    for k, v in {**ffwd, **fbwd}.items():
        print(f"  {k}: {v / mb:.1f} MB")
    print(f"ratio eager / fastvae bytes: {(fwd.bytes + bwd.bytes) / (tf + tb):.1f}x")
    return fwd, bwd, ffwd, fbwd


if __name__ == "__main__":
    main()
