"""A second eager baseline of the mixture's memory cases: the sequence of tensor operations of
VDVAE's ``discretized_mix_logistic_loss`` (``vae_helpers.py``, PixelCNN++'s TensorFlow loss
ported to PyTorch), written here from its published formulation, as its users run it.

It computes what ``fastvae.reference.pixelcnn_log_likelihood`` computes, but keeps more for
backward, and that is the point of measuring it: x is expanded to a (B, H, W, C, M) tensor
(``x + zeros``) so the edge-bin conditions are full-size, the clamps of the log-scales and of the
bin probability are ``torch.max`` against a full-size constant (``const_max``: both operands
kept), the shifted means are a ``torch.cat``, the logits' log-softmax is spelled out. The tidy
reference broadcasts x and uses ``clamp`` and ``log_softmax``. Channels-last, C = 3 only (as
VDVAE). Returns the per-row log-likelihood (VDVAE returns minus its mean per dimension).
"""

import math

import torch
import torch.nn.functional as F


def _const_max(t, constant):
    return torch.max(t, torch.ones_like(t) * constant)


def _log_prob_from_logits(t):
    m = t.max(dim=-1, keepdim=True)[0]
    return t - m - torch.log(torch.exp(t - m).sum(dim=-1, keepdim=True))


def log_likelihood(l, x, bits=8):
    """l: (B, H, W, 10 M) (any strides, e.g. a permuted conv output); x: (B, H, W, 3) uint8
    levels or floats in [-1, 1]. Returns (B,) in l's dtype."""
    if x.dtype == torch.uint8:
        x = x.to(l.dtype) * (2.0 / (2**bits - 1)) - 1.0
    xs = list(x.shape)
    m = l.shape[-1] // 10
    logit_probs = l[..., :m]
    rest = torch.reshape(l[..., m:], xs + [3 * m])
    means = rest[..., :m]
    log_scales = _const_max(rest[..., m:2 * m], -7.0)
    coeffs = torch.tanh(rest[..., 2 * m:3 * m])
    x = torch.reshape(x, xs + [1]) + torch.zeros(xs + [m], device=x.device, dtype=x.dtype)
    m2 = torch.reshape(means[..., 1, :] + coeffs[..., 0, :] * x[..., 0, :], xs[:3] + [1, m])
    m3 = torch.reshape(means[..., 2, :] + coeffs[..., 1, :] * x[..., 0, :] + coeffs[..., 2, :] * x[..., 1, :],
                       xs[:3] + [1, m])
    means = torch.cat([torch.reshape(means[..., 0, :], xs[:3] + [1, m]), m2, m3], dim=3)
    h = 1.0 / (2**bits - 1)
    centered_x = x - means
    inv_stdv = torch.exp(-log_scales)
    plus_in = inv_stdv * (centered_x + h)
    cdf_plus = torch.sigmoid(plus_in)
    min_in = inv_stdv * (centered_x - h)
    cdf_min = torch.sigmoid(min_in)
    log_cdf_plus = plus_in - F.softplus(plus_in)
    log_one_minus_cdf_min = -F.softplus(min_in)
    cdf_delta = cdf_plus - cdf_min
    mid_in = inv_stdv * centered_x
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in)
    log_probs = torch.where(x < -0.999, log_cdf_plus, torch.where(
        x > 0.999, log_one_minus_cdf_min, torch.where(cdf_delta > 1e-5, torch.log(_const_max(cdf_delta, 1e-12)),
                                                      log_pdf_mid - math.log((2**bits - 1) / 2))))
    log_probs = log_probs.sum(dim=3) + _log_prob_from_logits(logit_probs)
    return torch.logsumexp(log_probs, -1).sum(dim=[1, 2])
