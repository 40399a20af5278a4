"""The count cases: scVI's likelihood with its softmax decoder, alone and in a whole training
step, at the CELLxGENE census model's settings (batch 1,024, 8,000 genes, hidden 512, latent 200)
and at scVI's defaults (batch 128, 2,000 or 4,000 genes, hidden 128, latent 10); eager is
scvi-tools' formulation (``scvi.py``). Merged into ``cases.CASES``."""

import functools

import torch

import fastvae
from fastvae import reference

from . import scvi, train_step
from .case_types import Case, DTYPES, Inputs, TRAIN_IMPLS

MODELS = {"scvi": dict(hidden=(128,), latent=10), "census": dict(hidden=(512,), latent=200)}


def _count_inputs(c, dev, zero_inflated=True):
    B, G, dt = c.batch, c.dim, DTYPES[c.dtype]
    g = torch.Generator(device="cpu").manual_seed(0)
    logits = (torch.randn(B, G, generator=g) * 2).to(dev, dt).requires_grad_(True)
    lib = torch.log(torch.rand(B, generator=g) * 4000 + 1000).to(dev)
    mean = torch.exp(lib[:, None] + torch.log_softmax(logits.detach().float(), -1))
    x = torch.poisson(mean).to(getattr(torch, c.targets))
    log_theta = torch.randn(G, generator=g).to(dev, dt).requires_grad_(True)
    zi = (torch.randn(B, G, generator=g) - 2).to(dev, dt).requires_grad_(True) if zero_inflated else None
    args = (logits, x, log_theta, lib) + ((zi,) if zero_inflated else ())
    wrt = (logits, log_theta) + ((zi,) if zero_inflated else ())
    return Inputs(args, wrt, (torch.ones(B, device=dev),), None)


def _count_fwd(lib, logits, x, log_theta, log_library, zi=None, eps=None):
    if lib is reference:  # eager and compile: scvi-tools' formulation
        return (scvi.softmax_count_ll(logits, x, log_theta, log_library, zi),)
    return (lib.softmax_negative_binomial_log_likelihood(logits, x, log_theta, log_library, zero_inflation_logits=zi),)


def _train_variants(case, c, dev):
    """One Adam step of the scVI-style count VAE, same initial weights: ``eager`` and ``compile``
    with scvi-tools' loss, ``fastvae`` and ``fastvae_compile`` with the fused one."""
    torch.manual_seed(0)
    size = MODELS[c.model]
    base = fastvae.models.CountVAE(c.dim, size["latent"], size["hidden"], fused=False).to(dev)
    x = _count_inputs(c, dev).args[1]
    eps = torch.randn(c.batch, size["latent"], device=dev)

    def loss_of(model):  # the same weights, two losses
        return model.loss if model.fused else functools.partial(scvi.loss, model)
    return train_step.adam_variants(case, base, x, eps, loss_of) + (train_step.TRAIN_TOL,)


# least bytes: logits, counts and dropout logits read once, their gradients written once; the
# per-gene log theta and the per-cell library, read once with their gradients, add (B + G) words
ZINB_BYTES = {"fwd+bwd": (
    "read logits, dropout logits (B*G each), counts (B*G, 4 bytes for int32); write their gradients once; "
    "log theta (G) and library (B) with their gradients",
    lambda c, e, t, B: B * c.dim * (4 * e + t) + 2 * c.dim * e + 8 * B)}
NB_BYTES = {"fwd+bwd": (
    "read logits, counts once; write grad_logits once; log theta (G) and library (B) with their gradients",
    lambda c, e, t, B: B * c.dim * (2 * e + t) + 2 * c.dim * e + 8 * B)}
FAMILIES = [dict(dim=G, targets="int32") for G in (2000, 4000, 8000)]
SWEEPS = {"gpu": FAMILIES, "gpu_quick": FAMILIES[2:], "cpu": FAMILIES[:1], "cpu_quick": FAMILIES[:1],
          "small": FAMILIES[:1]}
BATCHES = {"gpu": [128, 1024, 4096], "gpu_quick": [128, 1024], "cpu": [128, 1024], "cpu_quick": [128],
           "small": [64, 128, 256]}
TRAIN_SWEEPS = {"gpu": [dict(model="scvi", dim=2000, targets="int32"), dict(model="scvi", dim=4000, targets="int32"),
                        dict(model="census", dim=8000, targets="int32")],
                "gpu_quick": [dict(model="census", dim=8000, targets="int32")],
                "cpu": [dict(model="scvi", dim=2000, targets="int32")],
                "cpu_quick": [dict(model="scvi", dim=2000, targets="int32")],
                "small": [dict(model="scvi", dim=2000, targets="int32")]}
TRAIN_BATCHES = {"gpu": [128, 1024], "gpu_quick": [1024], "cpu": [128], "cpu_quick": [128], "small": [128]}

COUNT_CASES = [
    Case("zinb_ll", ("fwd+bwd",),
         "ll = softmax_negative_binomial_log_likelihood(logits, x, log_theta, log_library, "
         "zero_inflation_logits=zi); backward as ll.sum() (eager: scvi-tools' log_zinb_positive)",
         inputs=_count_inputs, forward=_count_fwd, outputs=("ll",), grads=("logits", "log_theta", "zi"),
         least_bytes=ZINB_BYTES, sweeps=SWEEPS, batches=BATCHES, dtypes=("float32", "bfloat16")),
    Case("nb_ll", ("fwd+bwd",),
         "ll = softmax_negative_binomial_log_likelihood(logits, x, log_theta, log_library); backward as ll.sum() "
         "(eager: scvi-tools' log_nb_positive)",
         inputs=lambda c, dev: _count_inputs(c, dev, zero_inflated=False), forward=_count_fwd, outputs=("ll",),
         grads=("logits", "log_theta"), least_bytes=NB_BYTES, sweeps=SWEEPS, batches=BATCHES,
         dtypes=("float32", "bfloat16")),
    Case("count_train_step", ("train",),
         "opt.zero_grad(); model.loss(x).backward(); opt.step() with Adam; fastvae.models.CountVAE (ZINB), "
         "int32 counts; eager and compile: the same model with scvi-tools' loss",
         outputs=("loss",), impls=TRAIN_IMPLS, build=_train_variants, skip=train_step.skip, dtypes=("float32",),
         batches=TRAIN_BATCHES, sweeps=TRAIN_SWEEPS),
]
