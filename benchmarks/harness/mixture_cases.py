"""The discretized logistic mixture's cases: its log-likelihood forward+backward at the sizes of
VDVAE and NVAE, against PixelCNN++'s formulation (``fastvae.reference.pixelcnn_log_likelihood``,
VDVAE's PyTorch port) run eagerly and under ``torch.compile``. Merged into ``cases.CASES``; the
configurations ``benchmarks/memory.py`` measures are ``MEMORY``.

``image`` is one example's x: ``HxWxC`` (channels last: VDVAE's head, ``conv(h).permute(0, 2,
3, 1)``, with ``dim=-1``) or ``CxHxW`` (NCHW: NVAE's, ``dim=1``); the parameters are a conv's
(B, 10 M, H, W) output, permuted for the channels-last form, never copied. The components are
wide (log-scales ~ N(0, 0.3), means near the pixels), so every bin probability is above 1e-5
and the two formulations agree (below it PixelCNN++ approximates: ``tests/ops/test_dmol.py``).
"""

import torch

from fastvae import _mixture, reference

from . import vdvae
from .case_types import Case, Config, DTYPES, Inputs


def layout(c):
    """(C, H, W, channels last) of configuration ``c``'s images (a flat D: one grey row)."""
    shape = c.example_shape()
    if len(shape) == 1:
        return 1, 1, shape[0], False
    a, b, d = shape
    return (d, a, b, True) if d in (1, 3) and a not in (1, 3) else (a, b, d, False)


def _inputs(c, dev):
    C, H, W, last = layout(c)
    g = torch.Generator(device="cpu").manual_seed(0)
    conv = torch.randn(c.batch, _mixture.entries(C, c.mixtures), H, W, generator=g)
    with torch.no_grad():
        _, means, raw, coefficients = _mixture.parts(conv, c.mixtures, 1)
        raw.mul_(0.3)
        means.mul_(0.5)
        if coefficients is not None:
            coefficients.mul_(0.5)
    params = conv.to(dev, DTYPES[c.dtype]).requires_grad_(True)
    x = torch.randint(0, 256, (c.batch, H, W, C) if last else (c.batch, C, H, W), generator=g, dtype=torch.uint8)
    view = params.permute(0, 2, 3, 1) if last else params
    return Inputs((view, x.to(dev)), (params,), (torch.ones(c.batch, device=dev),), None)


def _forward(lib, params, x, eps=None):
    dim = -1 if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3) else 1
    M = params.shape[dim] // (10 if x.shape[dim] == 3 else 3)
    if lib is reference:  # eager and compile: PixelCNN++'s formulation
        return (reference.pixelcnn_log_likelihood(params, x, M, dim=dim),)
    return (lib.discretized_logistic_mixture_log_likelihood(params, x, M, dim=dim),)


def vdvae_forward(params, x):
    """The case's forward as VDVAE's code computes it (``vdvae.log_likelihood``), on
    channels-last views (a permute of NCHW inputs, never a copy)."""
    if x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
        params, x = params.permute(0, 2, 3, 1), x.permute(0, 2, 3, 1)
    return (vdvae.log_likelihood(params, x),)


# least bytes: the parameters read once and their gradient written once (10 M values per pixel
# each), x read once (3 bytes per pixel), ll and its upstream gradient per row
MIXTURE_BYTES = {"fwd+bwd": (
    "read params (B*H*W*10M), x (B*H*W*C, 1 byte); write grad_params once; ll and grad_ll (B, float32)",
    lambda c, e, t, B: B * (c.elements() // layout(c)[0] * _mixture.entries(layout(c)[0], c.mixtures or 10) * 2 * e
                            + c.elements() + 8))}
VDVAE = [dict(image="32x32x3", mixtures=10, targets="uint8")]
NVAE = [dict(image="3x256x256", mixtures=10, targets="uint8")]
MIXTURE_CASES = [
    Case("mixture_ll", ("fwd+bwd",),
         "ll = discretized_logistic_mixture_log_likelihood(params, x, 10, dim=-1) on conv(h).permute(0, 2, 3, 1), "
         "uint8 x; backward as ll.sum() (eager: PixelCNN++'s formulation, VDVAE's port)",
         inputs=_inputs, forward=_forward, outputs=("ll",), grads=("params",), least_bytes=MIXTURE_BYTES,
         sweeps={"gpu": VDVAE + NVAE, "gpu_quick": VDVAE, "cpu": VDVAE, "cpu_quick": VDVAE, "small": VDVAE},
         batches={"gpu": [4, 16, 256], "gpu_quick": [16, 256], "cpu": [16], "cpu_quick": [16],
                  "small": [4, 16, 64]}, dtypes=("float32", "bfloat16")),
]
# benchmarks/memory.py's eager baselines besides the case's own ("eager": PixelCNN++'s formulation)
MEMORY_BASELINES = {"vdvae": vdvae_forward}
# the memory measured (benchmarks/memory.py): VDVAE's CIFAR-10 step, a large batch, NVAE's 256x256 setting
MEMORY = [Config("mixture_ll", 16, "float32", image="32x32x3", mixtures=10, targets="uint8"),
          Config("mixture_ll", 256, "float32", image="32x32x3", mixtures=10, targets="uint8"),
          Config("mixture_ll", 4, "float32", image="3x256x256", mixtures=10, targets="uint8")]
