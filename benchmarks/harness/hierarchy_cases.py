"""The hierarchical case: a top-down VAE's latents, VDVAE-style, 20 levels of (B, 16, 8, 8) with
a learned prior each (predicted per example, as a top-down path gives it), every level's sample
and KL forward and backward. Merged into ``cases.CASES``.

eager and compile: VDVAE's formulation per level (``vae_helpers.py`` of openai/vdvae,
``draw_gaussian_diag_samples`` and ``gaussian_analytical_kl`` in log standard deviations,
logsigma = logvar / 2, the KL summed per example), written out below; fastvae: one
``reparameterize_kl(mu, logvar, prior_mu=..., prior_logvar=...)`` per level. The levels' KLs are
added in both. The per-level draw + KL is about ten elementwise kernels forward and more
backward in eager PyTorch; fastvae's is one launch each way.
"""

import torch

import fastvae

from .case_types import Case, DTYPES, Inputs

LEVELS, LATENT_SHAPE = 20, (16, 8, 8)  # VDVAE's 8x8 groups, 16 channels of z each
LATENT = 16 * 8 * 8


def vdvae_level(mu, logvar, prior_mu, prior_logvar, eps=None):
    """One level as VDVAE computes it (its two functions, in logvar terms): z and the KL per example."""
    logsigma, prior_logsigma = 0.5 * logvar, 0.5 * prior_logvar
    if eps is None:
        eps = torch.randn_like(mu)
    z = torch.exp(logsigma) * eps + mu
    kl = -0.5 + prior_logsigma - logsigma + 0.5 * (logsigma.exp() ** 2 + (mu - prior_mu) ** 2) / (
        prior_logsigma.exp() ** 2)
    return z, kl.sum(dim=tuple(range(1, mu.dim())))


def _inputs(c, dev):
    dt, B = DTYPES[c.dtype], c.batch
    shape = (B, *LATENT_SHAPE)
    args = []
    for _ in range(c.levels):  # mu, logvar, prior_mu, prior_logvar of one level
        for scale in (1.0, 0.5, 1.0, 0.5):
            args.append((torch.randn(shape, device=dev) * scale).to(dt).requires_grad_(True))
    # what the decoder sends back to each z, and 1 to the summed KL
    upstream = (torch.ones(B, device=dev), *[torch.randn(shape, device=dev).to(dt) for _ in range(c.levels)])
    eps = torch.randn((c.levels, *shape), device=dev).to(dt)
    return Inputs(tuple(args), tuple(args), upstream, eps)


def _forward(lib, *args, eps=None):
    """(kl summed over the levels, z of every level): fastvae's fused op, or VDVAE's formulation."""
    zs, kl = [], 0
    for level in range(len(args) // 4):
        mu, logvar, pm, pv = args[4 * level:4 * level + 4]
        e = None if eps is None else eps[level]
        if lib is fastvae:
            z, k = fastvae.reparameterize_kl(mu, logvar, prior_mu=pm, prior_logvar=pv, eps=e)
        else:  # eager and compile
            z, k = vdvae_level(mu, logvar, pm, pv, e)
        zs.append(z)
        kl = kl + k
    return (kl, *zs)


GRADS = tuple(f"{n}{lv}" for lv in range(LEVELS) for n in ("mu", "logvar", "prior_mu", "prior_logvar"))
HIERARCHY_BYTES = {"fwd+bwd": (
    "per level: forward reads mu, logvar, prior_mu, prior_logvar and writes z (5 x B*L), backward reads them again "
    "and grad_z and writes the four gradients (9 x B*L); kl written and its gradient read (B, float32); times the "
    "levels",
    lambda c, e, t, B: (c.levels or LEVELS) * B * (14 * c.latent * e + 8))}
FAMILY = dict(latent=LATENT, levels=LEVELS)

HIERARCHY_CASES = [
    Case("hierarchy", ("fwd+bwd",),
         f"{LEVELS} levels of (B, 16, 8, 8): z, kl = reparameterize_kl(mu, logvar, prior_mu=pm, prior_logvar=pv) "
         "per level, the KLs summed; backward from every z and the KL (eager: VDVAE's draw_gaussian_diag_samples "
         "and gaussian_analytical_kl)",
         inputs=_inputs, forward=_forward, outputs=("kl", *[f"z{lv}" for lv in range(LEVELS)]), grads=GRADS,
         noise_free=("kl",), least_bytes=HIERARCHY_BYTES,
         sweeps={s: [FAMILY] for s in ("gpu", "gpu_quick", "cpu", "cpu_quick", "small")},
         batches={"gpu": [16, 64, 256, 1024], "gpu_quick": [32, 256], "cpu": [8, 32], "cpu_quick": [8],
                  "small": [8, 32, 128, 512]},
         dtypes=("float32", "bfloat16")),
]
