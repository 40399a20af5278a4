"""Host time of one small loss step: ``python benchmarks/run.py --overhead``.

At small and medium batch the kernels take microseconds and the host work of calling them
decides the speed. The steps (``STEPS``): ``elbo``, at B = 4, D = 784, latent 64, uint8 targets,

    z, kl = reparameterize_kl(mu, logvar); ELBOLoss()(logits, x, kl=kl).backward()

``zinb``, scVI's loss at B = 4 cells of 2000 genes, int32 counts (eager: scvi-tools'
formulation, ``scvi.py``),

    softmax_negative_binomial_log_likelihood(logits, x, log_theta, log_library,
                                             zero_inflation_logits=zi).sum().backward()

and ``hierarchy``, a VDVAE-style hierarchy's latents: 20 levels of (4, 16, 8, 8), each level's
sample and KL to its learned prior (eager: VDVAE's ``draw_gaussian_diag_samples`` and
``gaussian_analytical_kl`` per level, ``hierarchy_cases.py``),

    for each level: z, kl = reparameterize_kl(mu, logvar, prior_mu=pm, prior_logvar=pv)
    (sum of the levels' kl.sum() and z.sum()).backward()

timed per call (``time.perf_counter``, median after warm-up, one call at a time) for:

* ``eager``: ``fastvae.reference``, what a user writes without fastvae (its ATen kernels run:
  at B = 4 they cost next to nothing next to their dispatch);
* ``compile``: ``torch.compile`` of that reference step (forward compiled, backward through
  AOTAutograd), after compilation;
* ``fastvae``: fastvae's public functions with every Triton launch made a no-op where fastvae
  hands the kernel to Triton (``JITFunction.run``): all of fastvae's own host work runs
  (validation, autograd, tiling, output allocation), Triton's launch does not. On a CPU the
  kernel path is forced (it would otherwise run the reference).

Works on a CPU or a GPU. ``fastvae/eager`` at most 0.6 is the project's target.
"""

import json
import time
from typing import Callable, NamedTuple, Optional

import torch

import fastvae
from fastvae import _backend, reference

from .. import launches
from . import scvi
from .hierarchy_cases import LATENT_SHAPE, LEVELS, vdvae_level
from .timing import ratio_range, Spread

STEP = "z, kl = reparameterize_kl(mu, logvar); ELBOLoss()(logits, x, kl=kl).backward()"
IMPLS = ("eager", "compile", "fastvae")


def _inputs(dev, B, D, L):
    g = torch.Generator(device=dev).manual_seed(0)
    mu = torch.randn(B, L, device=dev, generator=g).requires_grad_(True)
    logvar = torch.randn(B, L, device=dev, generator=g).requires_grad_(True)
    logits = torch.randn(B, D, device=dev, generator=g).requires_grad_(True)
    x = (torch.rand(B, D, device=dev, generator=g) < 0.5).to(torch.uint8)
    return mu, logvar, logits, x


def _loss(lib):
    def loss(mu, logvar, logits, x):
        z, kl = lib.reparameterize_kl(mu, logvar)
        return lib.ELBOLoss()(logits, x, kl=kl)
    return loss


def _count_inputs(dev, B, D, L=None):
    g = torch.Generator(device=dev).manual_seed(0)
    logits = torch.randn(B, D, device=dev, generator=g).requires_grad_(True)
    x = torch.randint(0, 5, (B, D), device=dev, generator=g).to(torch.int32)
    log_theta = torch.randn(D, device=dev, generator=g).requires_grad_(True)
    zi = torch.randn(B, D, device=dev, generator=g).requires_grad_(True)
    return logits, x, log_theta, torch.full((B,), 8.0, device=dev), zi


def _count_loss(lib):
    def loss(logits, x, log_theta, log_library, zi):
        if lib is reference:  # eager and compile: scvi-tools' formulation
            return scvi.softmax_count_ll(logits, x, log_theta, log_library, zi).sum()
        return lib.softmax_negative_binomial_log_likelihood(logits, x, log_theta, log_library,
                                                            zero_inflation_logits=zi).sum()
    return loss


def _hierarchy_inputs(dev, B, D=None, L=None):
    g = torch.Generator(device=dev).manual_seed(0)
    return tuple(torch.randn(B, *LATENT_SHAPE, device=dev, generator=g).requires_grad_(True)
                 for _ in range(4 * LEVELS))  # mu, logvar, prior_mu, prior_logvar of each level


def _hierarchy_loss(lib):
    def loss(*args):
        total = 0
        for level in range(LEVELS):
            mu, logvar, pm, pv = args[4 * level:4 * level + 4]
            if lib is reference:  # eager and compile: VDVAE's per-level draw + KL
                z, kl = vdvae_level(mu, logvar, pm, pv)
            else:
                z, kl = lib.reparameterize_kl(mu, logvar, prior_mu=pm, prior_logvar=pv)
            total = total + kl.sum() + z.sum()  # z.sum(): stands for the decoder, so z gets a gradient
        return total
    return loss


class Step(NamedTuple):
    """One timed step: what it runs (``text``), its inputs ``inputs(dev, B, D, L)``, the loss
    ``loss(lib)`` of ``fastvae.reference`` (eager) or ``fastvae``, and its sizes."""

    text: str
    inputs: Callable
    loss: Callable
    batch: int
    dim: int
    latent: Optional[int]
    targets: str


STEPS = {
    "elbo": Step(STEP, _inputs, _loss, 4, 784, 64, "uint8"),
    # scVI's loss at scVI's smallest gene count; eager and compile: scvi-tools' formulation
    "zinb": Step("softmax_negative_binomial_log_likelihood(logits, x, log_theta, log_library, "
                 "zero_inflation_logits=zi).sum().backward()", _count_inputs, _count_loss, 4, 2000, None, "int32"),
    # a hierarchy's latents (D: one level's latent elements); eager and compile: VDVAE's formulation
    "hierarchy": Step(f"{LEVELS} levels of (4, 16, 8, 8): z, kl = reparameterize_kl(mu, logvar, prior_mu=pm, "
                      "prior_logvar=pv) per level; (sum of kl.sum() + z.sum()).backward()", _hierarchy_inputs,
                      _hierarchy_loss, 4, 16 * 8 * 8, None, "none"),
}


def _time(step, args, reps, warmup, sync):
    """The ``Spread`` of the host time per step, in microseconds (its fields say ms)."""
    for _ in range(warmup):
        step(*args)
    sync()
    times = []
    for _ in range(reps):
        for t in args:
            t.grad = None  # as after optimizer.zero_grad()
        t0 = time.perf_counter()
        step(*args)
        times.append((time.perf_counter() - t0) * 1e6)
    sync()
    return Spread.of(times)


def measure(dev, batch=None, dim=None, latent=None, reps=400, warmup=50, step="elbo"):
    """Host microseconds per step of each implementation: ``{impl: Spread}`` (median, quartiles,
    min, max over the ``reps`` steps), and ``launches_per_step``; ``step``: a name of ``STEPS``
    (sizes default to its own)."""
    st = STEPS[step]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    args = st.inputs(dev, batch or st.batch, dim or st.dim, latent or st.latent)
    out = {}
    with fastvae.backend("torch"):
        eager = st.loss(reference)
        out["eager"] = _time(lambda *a: eager(*a).backward(), args, reps, warmup, sync)
        compiled = torch.compile(eager, dynamic=False)
        out["compile"] = _time(lambda *a: compiled(*a).backward(), args, reps, warmup, sync)
    forced = _backend.assume_kernels() if dev.type == "cpu" else fastvae.backend("triton")
    with fastvae.backend("triton"), forced, launches.no_launch() as skipped:
        fused = st.loss(fastvae)
        out["fastvae"] = _time(lambda *a: fused(*a).backward(), args, reps, warmup, sync)
    out["launches_per_step"] = len(skipped) / (reps + warmup)
    return out


def record(dev, result, batch=None, dim=None, latent=None, step="elbo"):
    """The JSON record of one ``measure`` result: medians, interquartile ranges, and the ratios of
    the medians with the range their quartiles allow (``timing.ratio_range``)."""
    st, f = STEPS[step], result["fastvae"]
    return dict(name=step, step=st.text, batch=batch or st.batch, dim=dim or st.dim, latent=latent or st.latent,
                targets=st.targets, device=str(dev),
                host_us={k: round(result[k].median, 2) for k in IMPLS},
                host_us_iqr={k: [round(result[k].q1, 2), round(result[k].q3, 2)] for k in IMPLS},
                fastvae_over_eager=round(f.median / result["eager"].median, 3),
                fastvae_over_eager_range=[round(v, 3) for v in ratio_range(f, result["eager"])],
                fastvae_over_compile=round(f.median / result["compile"].median, 3),
                fastvae_over_compile_range=[round(v, 3) for v in ratio_range(f, result["compile"])],
                fastvae_launches_per_step=result["launches_per_step"],
                method=f"time.perf_counter per call, median and quartiles of {f.n} calls after warm-up calls, grads "
                       f"set to None before each; fastvae's Triton launches are no-ops (JITFunction.run stubbed)")


def lines(rec):
    us, iqr = rec["host_us"], rec["host_us_iqr"]
    times = "   ".join(f"{k} {us[k]:.1f} us ({iqr[k][0]:.1f}-{iqr[k][1]:.1f})" for k in IMPLS)
    ratio = "   ".join(f"fastvae/{k} {rec[f'fastvae_over_{k}']:.2f} ({rec[f'fastvae_over_{k}_range'][0]:.2f}-"
                       f"{rec[f'fastvae_over_{k}_range'][1]:.2f})" for k in ("eager", "compile"))
    sizes = f"B={rec['batch']} D={rec['dim']}" + (f" latent={rec['latent']}" if rec.get("latent") else "")
    return [f"host time per step, {sizes} ({rec['device']}): {rec['step']}",
            f"  median (interquartile range): {times} (launches stubbed, {rec['fastvae_launches_per_step']:.0f} "
            f"per step)",
            f"  {ratio} (the range the quartiles allow)"]


def run(dev, out, meta):
    """``run.py --overhead``: one record, printed and written to ``<out>/<device>-<date>-overhead.json``."""
    recs = [record(dev, measure(dev, step=name), step=name) for name in STEPS]
    for rec in recs:
        for line in lines(rec):
            print(line)
    meta.update(records=[], overhead=recs[0], overhead_steps=recs)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{meta['device_slug']}-{meta['date']}-overhead.json"
    path.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {path}")
    return 0
