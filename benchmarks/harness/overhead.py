"""Host time of one small loss step: ``python benchmarks/run.py --overhead``.

At small and medium batch the kernels take microseconds and the host work of calling them
decides the speed. The step, at B = 4, D = 784, latent 64, uint8 targets:

    z, kl = reparameterize_kl(mu, logvar); ELBOLoss()(logits, x, kl=kl).backward()

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

import torch

import fastvae
from fastvae import _backend, reference

from .. import launches
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


def measure(dev, batch=4, dim=784, latent=64, reps=400, warmup=50):
    """Host microseconds per step of each implementation: ``{impl: Spread}`` (median, quartiles,
    min, max over the ``reps`` steps), and ``launches_per_step``."""
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    args = _inputs(dev, batch, dim, latent)
    out = {}
    with fastvae.backend("torch"):
        eager = _loss(reference)
        out["eager"] = _time(lambda *a: eager(*a).backward(), args, reps, warmup, sync)
        compiled = torch.compile(eager, dynamic=False)
        out["compile"] = _time(lambda *a: compiled(*a).backward(), args, reps, warmup, sync)
    forced = _backend.assume_kernels() if dev.type == "cpu" else fastvae.backend("triton")
    with fastvae.backend("triton"), forced, launches.no_launch() as skipped:
        fused = _loss(fastvae)
        out["fastvae"] = _time(lambda *a: fused(*a).backward(), args, reps, warmup, sync)
    out["launches_per_step"] = len(skipped) / (reps + warmup)
    return out


def record(dev, result, batch=4, dim=784, latent=64):
    """The JSON record of one ``measure`` result: medians, interquartile ranges, and the ratios of
    the medians with the range their quartiles allow (``timing.ratio_range``)."""
    f = result["fastvae"]
    return dict(step=STEP, batch=batch, dim=dim, latent=latent, targets="uint8", device=str(dev),
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
    return [f"host time per step, B={rec['batch']} D={rec['dim']} latent={rec['latent']} ({rec['device']}): {STEP}",
            f"  median (interquartile range): {times} (launches stubbed, {rec['fastvae_launches_per_step']:.0f} "
            f"per step)",
            f"  {ratio} (the range the quartiles allow)"]


def run(dev, out, meta):
    """``run.py --overhead``: one record, printed and written to ``<out>/<device>-<date>-overhead.json``."""
    rec = record(dev, measure(dev))
    for line in lines(rec):
        print(line)
    meta.update(records=[], overhead=rec)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{meta['device_slug']}-{meta['date']}-overhead.json"
    path.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {path}")
    return 0
