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

try:  # first: a folder named fastvae may hide the package (see fastvae/_shadow.py)
    from fastvae import _shadow  # noqa: F401
except ImportError as e:
    sys.exit(f"python -m fastvae: {e}")

import fastvae  # noqa: E402
from fastvae import likelihoods, reference  # noqa: E402

TOL = {torch.float32: 1e-4, torch.bfloat16: 3e-2, torch.float16: 5e-3, torch.float64: 1e-9}


def _rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


def _check_op(name, run, inputs, in_names, out_names, tol):
    """run(module, *tensors) -> output tuple; returns [(label, value, limit, unit)] for the
    outputs and input gradients."""
    ins = [t.detach().requires_grad_(t.is_floating_point()) for t in inputs]
    ins64 = [t.detach().double().requires_grad_(True) if t.is_floating_point() else t for t in inputs]
    outs = run(fastvae, *ins)
    refs = run(reference, *ins64)
    ups = [torch.randn_like(r) for r in refs]
    torch.autograd.backward(outs, [u.to(o.dtype) for u, o in zip(ups, outs)])
    torch.autograd.backward(refs, ups)
    rows = [(f"{name}: {n}", _rel(o, r), tol, "relative error") for n, o, r in zip(out_names, outs, refs)]
    rows += [(f"{name}: grad {n}", _rel(a.grad, b.grad), tol, "relative error")
             for n, a, b in zip(in_names, ins, ins64) if a.grad is not None]
    return rows


def _check_noise(mu, logvar):
    """The in-kernel noise: recover eps from z, check its moments, and check that backward
    regenerated the same eps (its gradients match the reference run with the recovered eps)."""
    mu_, lv_ = mu.detach().requires_grad_(True), logvar.detach().requires_grad_(True)
    z, kl = fastvae.reparameterize_kl(mu_, lv_)
    up = torch.randn_like(z)
    torch.autograd.backward([z, kl], [up, torch.ones_like(kl)])
    mu64, lv64 = mu.detach().double().requires_grad_(True), logvar.detach().double().requires_grad_(True)
    eps = (z.detach().double() - mu64.detach()) / torch.exp(0.5 * lv64.detach())
    z64, kl64 = reference.reparameterize_kl(mu64, lv64, eps=eps)
    torch.autograd.backward([z64, kl64], [up.double(), torch.ones_like(kl64)])
    n = eps.numel()
    # eps's mean and variance, as multiples of their standard errors for N(0, 1); bounded at 5
    sigmas = max(abs(eps.mean().item()) * n**0.5, abs(eps.var().item() - 1) * (n / 2) ** 0.5)
    tol = TOL[mu.dtype]
    return [("drawn noise: mean, variance of eps", sigmas, 5.0, "standard errors"),
            ("drawn noise: grad logvar (regenerated eps)", _rel(lv_.grad, lv64.grad), tol, "relative error")]


IMPLEMENTATIONS = {"triton": "the Triton kernels", "triton-interpreter": "the Triton kernels through the Triton "
                   "interpreter", "torch": "the PyTorch reference (fastvae.reference)"}


def _likelihood_inputs(spec, B, D, dev, dtype):
    """(parameters, targets, keyword arguments) a record of the registry reads: logits or means,
    targets in its support, a logscale or log theta per feature, dropout logits where needed."""
    if spec.counts:
        p = torch.randn(B, D, device=dev).mul(1.5).exp().mul(2).to(dtype)
        x = torch.poisson(torch.rand(B, D, device=dev) * 8).to(torch.int32)
    else:
        p = (3 * torch.randn(B, D, device=dev)).to(dtype)
        x = (torch.rand(B, D, device=dev) < 0.3).to(torch.uint8) if spec.uint8 == likelihoods.BINARY else \
            torch.rand(B, D, device=dev).to(dtype)
    args = {}
    for name, default in spec.arguments:
        if name in ("logscale", "log_theta"):
            args[name] = torch.full((D,), -1.0 if name == "logscale" else 0.5, device=dev).to(dtype)
        elif name == "zero_inflation_logits" and default is likelihoods.REQUIRED:
            args[name] = torch.randn(B, D, device=dev).to(dtype)
    return p, x, args


def _check_likelihoods(B, D, dev, dtype, tol):
    """Every likelihood of the registry, and the softmax form of the count likelihoods."""
    rows = []
    for spec in likelihoods.records():
        p, x, args = _likelihood_inputs(spec, B, D, dev, dtype)
        names = list(args)

        def run(m, p, x, *ts, spec=spec, names=names):
            return (spec.call(p, x, dict(zip(names, ts)), fused=m is fastvae),)

        label = spec.function + ("" if spec.function.startswith(spec.name) else f" ({spec.title})")
        rows += _check_op(label, run, [p, x, *args.values()], [spec.param, "x", *names], ["ll"], tol)
        if spec.counts and spec.function == "negative_binomial_log_likelihood" and not names[1:]:
            lib = torch.log(torch.rand(B, device=dev) * 900 + 100).to(dtype)
            rows += _check_op(likelihoods.SOFTMAX_FUNCTION, lambda m, l, x, lt, lib: (getattr(
                m, likelihoods.SOFTMAX_FUNCTION)(l, x, lt, lib),), [p.log(), x, args["log_theta"], lib],
                ["logits", "x", "log_theta", "log_library"], ["ll"], tol)
    return rows


def _check_ops(B, D, L, dev, dtype):
    """Every fused op against the float64 reference, and the in-kernel noise."""
    torch.manual_seed(0)
    K, tol = 3, TOL[dtype]
    mu, logvar = torch.randn(B, L, device=dev).to(dtype), torch.randn(B, L, device=dev).to(dtype)
    eps, eps_k = torch.randn(B, L, device=dev).to(dtype), torch.randn(K, B, L, device=dev).to(dtype)
    logits = (3 * torch.randn(B, D, device=dev)).to(dtype)
    x = (torch.rand(B, D, device=dev) < 0.3).to(torch.uint8)
    recon = (3 * torch.randn(K, B, D, device=dev)).to(dtype)
    rows = _check_op("reparameterize_kl", lambda m, mu, lv: m.reparameterize_kl(mu, lv, eps=eps),
                     [mu, logvar], ["mu", "logvar"], ["z", "kl"], tol)
    rows += _check_likelihoods(B, D, dev, dtype, tol)
    rows += _check_op("elbo_loss", lambda m, l, x, mu, lv: (m.elbo_loss(l, x, mu, lv),),
                      [logits, x, mu, logvar], ["logits", "x", "mu", "logvar"], ["loss"], tol)
    rows += _check_op("reparameterize_iw", lambda m, mu, lv: m.reparameterize_iw(mu, lv, K, eps=eps_k),
                      [mu, logvar], ["mu", "logvar"], ["z", "log_ratio"], tol)
    pm, pv = torch.randn(B, L, device=dev).to(dtype), torch.randn(B, L, device=dev).to(dtype)
    rows += _check_op("reparameterize_kl, learned prior", lambda m, mu, lv, pm, pv: m.reparameterize_kl(
        mu, lv, prior_mu=pm, prior_logvar=pv, eps=eps), [mu, logvar, pm, pv],
        ["mu", "logvar", "prior_mu", "prior_logvar"], ["z", "kl"], tol)
    rows += _check_op("reparameterize_iw, learned prior", lambda m, mu, lv, pm, pv: m.reparameterize_iw(
        mu, lv, K, prior_mu=pm, prior_logvar=pv, eps=eps_k), [mu, logvar, pm, pv],
        ["mu", "logvar", "prior_mu", "prior_logvar"], ["z", "log_ratio"], tol)
    rows += _check_op("iwae_loss", lambda m, r, x, lr: (m.iwae_loss(r, x, lr),),
                      [recon, x, torch.randn(K, B, device=dev)], ["recon", "x", "log_ratio"], ["loss"], tol)
    return rows + _check_noise(mu, logvar)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastvae", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--dim", type=int, default=784, help="data dimension D")
    p.add_argument("--latent", type=int, default=32)
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16", "float64"], default="float32")
    a = p.parse_args(argv)
    for name in ("batch", "dim", "latent"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be at least 1")
    try:
        dev = torch.device(a.device)
        probe = torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as e:
        p.error(f"--device {a.device}: {str(e).splitlines()[0]}")
    dtype = getattr(torch, a.dtype)
    try:
        impl = fastvae.implementation(probe)
    except RuntimeError as e:  # FASTVAE_BACKEND=triton where the kernels cannot run
        p.error(str(e).splitlines()[0])
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    print(f"fastvae {fastvae.__version__}, torch {torch.__version__}, device {dev} ({name})")
    print(f"backend {fastvae.get_backend()!r}: running {IMPLEMENTATIONS[impl]}")
    if impl == "torch":
        print("  (this compares the reference with itself; on a CPU, set TRITON_INTERPRET=1 before "
              "running to check the Triton kernels through Triton's interpreter)")
    rows = _check_ops(a.batch, a.dim, a.latent, dev, dtype)
    bad = 0
    for label, value, limit, unit in rows:
        ok = value <= limit  # NaN fails
        bad += not ok
        print(f"  {label:52s} {unit} {value:.2e} (limit {limit:.0e}){'' if ok else '  <-- FAIL'}")
    ok = bad == 0
    print(f"{'PASS' if ok else 'FAIL'}: {len(rows) - bad} of {len(rows)} checks within their limits ({a.dtype})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
