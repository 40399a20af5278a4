"""Every kernel variant fastvae launches, at the headline shape, for ``sass_report.py``.

Each ``Variant`` calls one of fastvae's launchers (``fastvae.kernels``) exactly as the ops do,
on tensors of the headline shape (B = 65536, D = 784, latent 64) on the given device (``meta``
without a GPU). Budgets (instructions per useful element, fp32 logits with uint8 targets;
bfloat16 within 10%) are the issue's: the Bernoulli pass must stay under the rate at which an
H100/H200 issues instructions while it streams its bytes at full memory bandwidth.
"""

import math
from typing import Callable, NamedTuple, Optional

import torch

from fastvae import kernels as K
from fastvae import likelihoods
from fastvae.kernels import modes

B, D, L = 65536, 784, 64
DT = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "fp64": torch.float64,
      "u8": torch.uint8, "bool": torch.bool, "i16": torch.int16, "i32": torch.int32}
# the count kernels' budgets: see benchmarks/NOTES.md, "the count likelihoods"
COUNT_BUDGET = {
    ("count_ll_forward_grad", "negative binomial, per-gene theta"): 560,
    ("count_ll_forward_grad", "zero-inflated NB, per-gene theta"): 650,
    ("count_ll_forward_grad", "Poisson"): 180,
    ("softmax_counts", "ZINB, per-gene theta, all gradients"): 650,
    ("softmax_counts", "NB, per-gene theta, all gradients"): 520,
    ("softmax_counts", "Poisson, all gradients"): 200,
}
# the learned prior's: see benchmarks/NOTES.md, "the learned prior"
PRIOR_BUDGET = {"fp32": {"gaussian_forward": 72, "gaussian_backward": 80}}
PRIOR_BUDGET["bf16"] = {k: round(v * 1.1, 1) for k, v in PRIOR_BUDGET["fp32"].items()}
BUDGET = {"bernoulli_forward_grad": 36, "bernoulli_forward": 28, "gaussian_forward": 60, "gaussian_backward": 75}
# the other likelihoods: within 1.3 times the Bernoulli pass's budget
for _k in ("continuous_bernoulli", "gaussian_ll"):
    BUDGET[f"{_k}_forward_grad"], BUDGET[f"{_k}_forward"] = 1.3 * 36, 1.3 * 28


class Variant(NamedTuple):
    kernel: str                  # the report's kernel name
    name: str                    # what distinguishes this variant
    dtype: str                   # logits (or mu/logvar) dtype
    target: Optional[str]        # targets' dtype where it applies
    elements: int                # useful elements the whole launch covers
    launch: Callable             # launch(device): one kernel launch through fastvae's launcher
    trips: Callable = lambda kw: math.ceil(D / kw.get("BLOCK_D", D))  # main-loop trips per program
    loads_per_trip: Optional[int] = None  # global load instructions per thread in one trip
    budget: Optional[float] = None
    chunk: Optional[Callable] = None  # sweeping kernels: chunk(kw) -> elements one trip of its loops covers


def _budget(kernel, dtype, target):
    base = BUDGET.get(kernel)
    if base is None or target not in (None, "u8"):
        return None
    return {"fp32": base, "bf16": round(base * 1.1, 1)}.get(dtype)


def _t(shape, dtype, dev):
    return torch.empty(shape, dtype=DT[dtype], device=dev)


def _pass(name, *args, **kw):
    # one likelihood pass of the registry's ``name``, as fastvae.ops launches it
    spec = likelihoods.get(name)
    return K.likelihood_pass(spec.code, *args, x_scale=spec.uint8_scale, **kw)


def _bernoulli(kernel, ld, xd):
    def fwd(store_grad):
        return lambda dev: _pass("bernoulli", _t((B, D), ld, dev), _t((B, D), xd, dev), grad_scale=-1.0 / B,
                                 store_gp=store_grad)

    run = {
        "bernoulli_forward_grad": fwd(True),
        "bernoulli_forward": fwd(False),
        "bernoulli_backward": lambda dev: _pass("bernoulli", _t((B, D), ld, dev), _t((B, D), xd, dev),
                                                g=_t((B,), "fp64" if ld == "fp64" else "fp32", dev),
                                                write_ll=False, store_gp=True),
        "bernoulli_rescale": lambda dev: K.scale_rows(_t((B, D), ld, dev),
                                                      _t((B,), "fp64" if ld == "fp64" else "fp32", dev), -1.0 / B),
    }[kernel]
    return Variant(kernel, f"B={B} D={D}", ld, xd if kernel != "bernoulli_rescale" else None, B * D, run,
                   loads_per_trip=1 if kernel == "bernoulli_rescale" else 2, budget=_budget(kernel, ld, xd))


def _likelihood(kernel, kind, ld, xd, store, logscale=None):
    """A continuous Bernoulli or Gaussian likelihood pass; ``logscale``: None (a number),
    ``shared`` (one learned value), ``feature`` (D,) or ``element`` (B, D), learned."""
    def run(dev):
        p, x = _t((B, D), ld, dev), _t((B, D), xd, dev)
        s, mode = None, modes.GS_NONE
        if logscale is not None:
            s = {"shared": lambda: _t((), ld, dev).expand(B, D), "feature": lambda: _t((D,), ld, dev).expand(B, D),
                 "element": lambda: _t((B, D), ld, dev)}[logscale]()
            mode = {"shared": modes.GS_ROW_SUMS, "feature": modes.GS_PARTIALS,
                    "element": modes.GS_ELEMENTS}[logscale] if store else modes.GS_NONE
        _pass(kind, p, x, s, 0.0, -1.0 / B, store_gp=store, gs_mode=mode)
    name = f"B={B} D={D}" + (f", {logscale} logscale" if logscale else ", fixed logscale" if kind == "gaussian" else "")
    return Variant(kernel, name, ld, xd, B * D, run, loads_per_trip=2 + (logscale not in (None, "shared")),
                   budget=_budget(kernel, ld, xd) if logscale in (None, "shared") else None)


def _prior(kind, dt, dev):
    """A learned prior's (mu, logvar): None, ``expanded`` (one (1, L) row .expand(B, L), as a
    hierarchy's top level or a learned prior has it) or ``full`` ((B, L), predicted per row)."""
    if kind is None:
        return {}
    if kind == "expanded":
        return dict(prior_mu=_t((1, L), dt, dev).expand(B, L), prior_logvar=_t((1, L), dt, dev).expand(B, L))
    return dict(prior_mu=_t((B, L), dt, dev), prior_logvar=_t((B, L), dt, dev))


def _gaussian(kernel, dt, name, **kw):
    def seed(dev):
        return torch.empty(1, dtype=torch.int64, device=dev)

    if kernel == "gaussian_forward":
        def run(dev):
            eps = _t((B, L), dt, dev) if kw.get("eps") else None
            K.reparameterize_kl_fwd(_t((B, L), dt, dev), _t((B, L), dt, dev), eps,
                                    None if eps is not None else seed(dev), kw.get("z", True), kw.get("kl", True),
                                    **_prior(kw.get("prior"), dt, dev))
    else:
        def run(dev):
            eps = _t((B, L), dt, dev) if kw.get("eps") else None
            gz = _t((B, L), dt, dev) if kw.get("gz", True) else None
            gkl = _t((B,), "fp64" if dt == "fp64" else "fp32", dev) if kw.get("gkl", True) else None
            K.reparameterize_kl_bwd(_t((B, L), dt, dev), _t((B, L), dt, dev), eps,
                                    None if eps is not None else seed(dev), gz, gkl, **_prior(kw.get("prior"), dt, dev))
    headline = not kw.get("eps") and all(kw.get(k, True) for k in ("z", "kl", "gz", "gkl"))
    budget = _budget(kernel, dt, None) if headline and not kw.get("prior") else None
    if kw.get("prior") and headline and dt in PRIOR_BUDGET:  # the learned prior's own budgets (NOTES.md)
        budget = PRIOR_BUDGET[dt][kernel]
    return Variant(kernel, name, dt, None, B * L, run, trips=lambda k: math.ceil(k["Q"] / k["BLOCK_Q"]),
                   loads_per_trip=None, budget=budget)


def _importance(kernel, dt, K, **kw):
    """``reparameterize_iw`` with K samples, drawn noise, B = 65536, latent 64."""
    def run(dev):
        mu, lv, seed = _t((B, L), dt, dev), _t((B, L), dt, dev), torch.empty(1, dtype=torch.int64, device=dev)
        prior = _prior(kw.get("prior"), dt, dev)
        if kernel == "importance_forward":
            kern.reparameterize_iw_fwd(mu, lv, K, seed=seed, **prior)
        else:
            sd = "fp64" if dt == "fp64" else "fp32"
            kern.reparameterize_iw_bwd(mu, lv, K, None, seed, _t((K, B, L), dt, dev), _t((K, B), sd, dev),
                                       _t((K, B), sd, dev) if kw.get("dreg") else None, path=kw.get("dreg", False),
                                       **prior)
    kern = globals()["K"]
    name = f"K={K}, drawn noise" + (", DReG" if kw.get("dreg") else "") + \
        (f", {kw['prior']} learned prior" if kw.get("prior") else "")
    backward = kernel == "importance_backward"
    return Variant(kernel, name, dt, None, K * B * L, run, trips=lambda k: K if backward else 1,
                   loads_per_trip=(6 if kw.get("dreg") else 5) if backward else None)


CB, CG = 1024, 8000  # the count kernels at the CELLxGENE census model's shape: cells, genes


def _counts(kernel, name, dt, xd, **kw):
    """A count likelihood: the elementwise kernel on means (``kind``: poisson or a negative
    binomial with a per-gene log theta, ``zi``: and dropout logits), or the softmax form
    (``softmax``), all gradients stored, as ``elbo_loss`` launches them."""
    def run(dev):
        p, x = _t((CB, CG), dt, dev), _t((CB, CG), xd, dev)
        lt = _t((CG,), dt, dev).expand(CB, CG) if kw.get("nb", True) else None
        q = _t((CB, CG), dt, dev) if kw.get("zi") else None
        mode = modes.GS_PARTIALS if lt is not None else modes.GS_NONE
        if kw.get("softmax"):
            K.softmax_counts(p, x, _t((CB,), "fp32", dev), lt, 0.0, q, -1.0 / CB, nb=lt is not None, store_gl=True,
                             store_glib=True, gs_mode=mode, store_gq=q is not None)
        else:
            spec = likelihoods.get("negative_binomial" if lt is not None else "poisson")
            K.likelihood_pass(spec.code, p, x, lt, 0.0, -1.0 / CB, q=q, store_gp=True, gs_mode=mode,
                              store_gq=q is not None)
    if kw.get("softmax"):
        return Variant(kernel, name, dt, xd, CB * CG, run, chunk=lambda k: k["BLOCK_R"] * k["BLOCK_G"],
                       budget=COUNT_BUDGET.get((kernel, name)) if dt == "fp32" else None)
    return Variant(kernel, name, dt, xd, CB * CG, run, trips=lambda k: math.ceil(CG / k["BLOCK_D"]),
                   loads_per_trip="not unrolled", budget=COUNT_BUDGET.get((kernel, name)) if dt == "fp32" else None)


def _count_variants():
    out = []
    for dt in ("fp32", "bf16"):
        out.append(_counts("count_ll_forward_grad", "negative binomial, per-gene theta", dt, "i32"))
        out.append(_counts("count_ll_forward_grad", "zero-inflated NB, per-gene theta", dt, "i32", zi=True))
        out.append(_counts("softmax_counts", "ZINB, per-gene theta, all gradients", dt, "i32", softmax=True, zi=True))
    out.append(_counts("count_ll_forward_grad", "Poisson", "fp32", "i32", nb=False))
    out.append(_counts("softmax_counts", "NB, per-gene theta, all gradients", "fp32", "i32", softmax=True))
    out.append(_counts("softmax_counts", "Poisson, all gradients", "fp32", "i16", softmax=True, nb=False))
    return out


def _variants():
    out = []
    for ld, xd in [("fp32", "u8"), ("fp32", "fp32"), ("bf16", "u8"), ("bf16", "bf16"), ("fp64", "fp64")]:
        out.append(_bernoulli("bernoulli_forward_grad", ld, xd))
    for ld, xd in [("fp32", "u8"), ("fp32", "fp32"), ("bf16", "u8"), ("fp16", "u8"), ("fp64", "fp64")]:
        out.append(_bernoulli("bernoulli_forward", ld, xd))
    for ld, xd in [("fp16", "u8"), ("fp16", "fp16"), ("fp32", "u8")]:
        out.append(_bernoulli("bernoulli_backward", ld, xd))
    for ld in ("fp32", "bf16"):
        out.append(_bernoulli("bernoulli_rescale", ld, None))
    for kind, kernel in (("continuous_bernoulli", "continuous_bernoulli"), ("gaussian", "gaussian_ll")):
        for ld, xd in [("fp32", "u8"), ("fp32", "fp32"), ("bf16", "u8")]:
            out.append(_likelihood(f"{kernel}_forward_grad", kind, ld, xd, True))
            out.append(_likelihood(f"{kernel}_forward", kind, ld, xd, False))
    for ls in ("shared", "feature", "element"):
        out.append(_likelihood("gaussian_ll_forward_grad", "gaussian", "fp32", "u8", True, ls))
    for dt in ("fp32", "bf16"):
        out.append(_importance("importance_forward", dt, 5))
        out.append(_importance("importance_backward", dt, 5))
    out.append(_importance("importance_backward", "fp32", 5, dreg=True))
    for dt in ("fp32", "bf16", "fp16", "fp64"):
        out.append(_gaussian("gaussian_forward", dt, "drawn noise, z and kl"))
    out.append(_gaussian("gaussian_forward", "fp32", "given eps", eps=True))
    out.append(_gaussian("gaussian_forward", "fp32", "kl only", z=False))
    out.append(_gaussian("gaussian_forward", "fp32", "z only (drawn)", kl=False))
    for dt in ("fp32", "bf16", "fp16", "fp64"):
        out.append(_gaussian("gaussian_backward", dt, "drawn noise, grad z and kl"))
    out.append(_gaussian("gaussian_backward", "fp32", "given eps", eps=True, gkl=False))
    out.append(_gaussian("gaussian_backward", "fp32", "grad kl only", gz=False))
    return out + _prior_variants()


def _prior_variants():
    """The learned prior (``HAS_PRIOR``): the expanded (1, L) row and a full (B, L) prior."""
    out = []
    for dt in ("fp32", "bf16"):
        for kernel in ("gaussian_forward", "gaussian_backward"):
            what = "z and kl" if kernel == "gaussian_forward" else "all four gradients"
            out.append(_gaussian(kernel, dt, f"expanded learned prior, drawn noise, {what}", prior="expanded"))
    for kernel in ("gaussian_forward", "gaussian_backward"):
        what = "z and kl" if kernel == "gaussian_forward" else "all four gradients"
        out.append(_gaussian(kernel, "fp32", f"(B, L) learned prior, drawn noise, {what}", prior="full"))
        out.append(_gaussian(kernel, "fp64", f"expanded learned prior, drawn noise, {what}", prior="expanded"))
    out.append(_gaussian("gaussian_forward", "fp32", "expanded learned prior, kl only", prior="expanded", z=False))
    for K_ in (1, 5):  # K = 1: a hierarchy's levels below the top
        out.append(_importance("importance_forward", "fp32", K_, prior="full"))
        out.append(_importance("importance_backward", "fp32", K_, prior="full"))
    return out


VARIANTS = _variants() + _count_variants()
