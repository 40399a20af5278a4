"""``python -m fastvae``: check this install on this machine.

Runs every fused op forward and backward on fresh random inputs on the chosen device and
compares it with ``fastvae.reference`` in float64. Prints which implementation ran and the
largest relative error per output; exits 1 if any error exceeds its dtype's tolerance.
(Timings and memory are the job of ``benchmarks/``.)
"""

import argparse
import platform
import sys

import torch

import fastvae
from fastvae import _backend, reference

TOL = {torch.float32: 1e-4, torch.bfloat16: 3e-2, torch.float16: 5e-3, torch.float64: 1e-9}


def _rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


def _check_op(name, run, inputs, in_names, out_names):
    """run(module, *tensors) -> output tuple; returns [(label, rel_error)] for outputs and input grads."""
    ins = [t.detach().requires_grad_(t.is_floating_point()) for t in inputs]
    ins64 = [t.detach().double().requires_grad_(True) if t.is_floating_point() else t for t in inputs]
    outs = run(fastvae, *ins)
    refs = run(reference, *ins64)
    ups = [torch.randn_like(r) for r in refs]
    torch.autograd.backward(outs, [u.to(o.dtype) for u, o in zip(ups, outs)])
    torch.autograd.backward(refs, ups)
    rows = [(f"{name}: {n}", _rel(o, r)) for n, o, r in zip(out_names, outs, refs)]
    rows += [(f"{name}: grad {n}", _rel(a.grad, b.grad)) for n, a, b in zip(in_names, ins, ins64)
             if a.grad is not None]
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastvae", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--dim", type=int, default=784, help="data dimension D")
    p.add_argument("--latent", type=int, default=32)
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16", "float64"], default="float32")
    a = p.parse_args(argv)
    dev, dtype = torch.device(a.device), getattr(torch, a.dtype)
    probe = torch.empty(0, device=dev)
    impl = "Triton kernels" if _backend.use_triton(probe) else "PyTorch reference (fastvae.reference)"
    if _backend.use_triton(probe) and dev.type == "cpu":
        impl += " through the Triton interpreter"
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    print(f"fastvae {fastvae.__version__}, torch {torch.__version__}, device {dev} ({name})")
    print(f"backend {fastvae.get_backend()!r}: running the {impl}")
    torch.manual_seed(0)
    B, D, L = a.batch, a.dim, a.latent
    mu, logvar = torch.randn(B, L, device=dev).to(dtype), torch.randn(B, L, device=dev).to(dtype)
    eps = torch.randn(B, L, device=dev).to(dtype)
    logits = (3 * torch.randn(B, D, device=dev)).to(dtype)
    x = (torch.rand(B, D, device=dev) < 0.3).to(torch.uint8)
    rows = []
    rows += _check_op("reparameterize_kl", lambda m, mu, lv: m.reparameterize_kl(mu, lv, eps=eps),
                      [mu, logvar], ["mu", "logvar"], ["z", "kl"])
    rows += _check_op("bernoulli_log_likelihood", lambda m, l, x: (m.bernoulli_log_likelihood(l, x),),
                      [logits, x], ["logits", "x"], ["ll"])
    rows += _check_op("elbo_loss", lambda m, l, x, mu, lv: (m.elbo_loss(l, x, mu, lv),),
                      [logits, x, mu, logvar], ["logits", "x", "mu", "logvar"], ["loss"])
    worst = 0.0
    for label, err in rows:
        print(f"  {label:40s} relative error {err:.2e}")
        worst = max(worst, err)
    ok = worst <= TOL[dtype]
    print(f"{'PASS' if ok else 'FAIL'}: largest relative error {worst:.2e} (tolerance {TOL[dtype]:.0e} for {a.dtype})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
