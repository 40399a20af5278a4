"""Plain PyTorch twins of the discretized logistic mixture (``fastvae.ops.dmol``), and the
PixelCNN++ formulation itself.

* ``discretized_logistic_mixture_log_likelihood``: the exact bin probability, evaluated in
  float64 (``log sigmoid(a) + log sigmoid(-b) + log(-expm1(-d))`` for a bin (a, b) of width
  d, the open edge bins as one log-sigmoid), returned in the sum dtype: the tests' truth.
* ``pixelcnn_log_likelihood``: PixelCNN++'s ``discretized_mix_logistic_loss`` as VDVAE ports it
  to PyTorch (``vae_helpers.py``), in the parameters' own dtype, as a per-row log-likelihood:
  the benchmark's eager baseline and the formula the tests hold the fused op to where every bin
  probability is above 1e-5 (below it PixelCNN++ takes the density at the bin's centre times
  its width instead, a work-around for a TensorFlow gradient problem).
* ``sample_discretized_logistic_mixture``: PixelCNN++'s sampler.
"""

import math
from typing import Optional

import torch
import torch.nn.functional as F

from .. import _mixture, likelihoods
from .._checks import check_likelihood, check_mixture_sample, validate_targets
from .._rows import row_sum, sum_dtype, to_sum


def _record():
    return likelihoods.by_function("discretized_logistic_mixture_log_likelihood")


def _values(x, bits, dtype):
    # x in [-1, 1] as ``dtype``: float as it is, uint8/bool levels k as 2 k / (2**bits - 1) - 1
    if x.dtype in (torch.uint8, torch.bool):
        return x.to(dtype) * (2.0 / (2**bits - 1)) - 1.0
    return x.detach().to(dtype)  # no gradient for x: the likelihood is discrete


def _components(params, x, num_mixtures, bits, dim, dtype):
    """(log softmax of the logits (B, ..., M), the components' means (B, ..., C, M) with the
    coefficients applied, clamped log-scales (B, ..., C, M), x (B, ..., C, 1)), in ``dtype``."""
    logits, means, raw, coefficients = _mixture.parts(params.to(dtype), num_mixtures, dim)
    xv = _values(x, bits, dtype).movedim(dim % x.dim(), -1).unsqueeze(-1)
    if coefficients is not None:
        a = torch.tanh(coefficients)
        shift = torch.stack([torch.zeros_like(a[..., 0, :]), a[..., 0, :] * xv[..., 0, :],
                             a[..., 1, :] * xv[..., 0, :] + a[..., 2, :] * xv[..., 1, :]], -2)
        means = means + shift
    return torch.log_softmax(logits, -1), means, torch.clamp(raw, min=_mixture.MIN_LOG_SCALE), xv


def discretized_logistic_mixture_log_likelihood(params: torch.Tensor, x: torch.Tensor, num_mixtures: int, *,
                                                bits: int = 8, dim: int = 1,
                                                validate_args: bool = False) -> torch.Tensor:
    """Per row, the sum over every sub-pixel of log P(x's bin) under the mixture, the bin
    probability computed exactly in float64; see ``fastvae.discretized_logistic_mixture_log_likelihood``."""
    args = dict(num_mixtures=num_mixtures, bits=bits, dim=dim)
    spec = _record()
    check_likelihood(spec, params, x, args=args)
    if validate_args:
        validate_targets(spec, x, args)
    log_pi, mu, ls, xv = _components(params, x, num_mixtures, bits, dim, torch.float64)
    h = 1.0 / (2**bits - 1)
    inv = torch.exp(-ls)
    a, b, d = inv * (xv - mu + h), inv * (xv - mu - h), 2.0 * h * inv
    safe = torch.where(d > 0, d, torch.ones_like(d))  # log(1 - e^-d) -> log(2 h) - ls where e^-ls underflows
    width = torch.where(d > 0, torch.log(-torch.expm1(-safe)), math.log(2.0 * h) - ls)
    lo, hi = xv < -0.999, xv > 0.999
    log_p = torch.where(lo, F.logsigmoid(a), torch.where(hi, F.logsigmoid(-b),
                                                          F.logsigmoid(a) + F.logsigmoid(-b) + width))
    ll = torch.logsumexp(log_p.sum(-2) + log_pi, -1)
    return row_sum(ll).to(sum_dtype(params.dtype))


def pixelcnn_log_likelihood(params: torch.Tensor, x: torch.Tensor, num_mixtures: int, *, bits: int = 8,
                            dim: int = 1) -> torch.Tensor:
    """PixelCNN++'s formulation (VDVAE's PyTorch port, its ``torch.where`` cascade and its 1e-5
    fallback to the density at the bin's centre), per row the sum of the log-likelihood (VDVAE
    returns minus its mean per dimension), in params' dtype (the sum dtype for half precision):
    the eager baseline. x: float in [-1, 1] or uint8 levels. Unchecked."""
    dt = to_sum(params).dtype
    log_pi, mu, ls, xv = _components(params, x, num_mixtures, bits, dim, dt)
    h = 1.0 / (2**bits - 1)
    centered = xv - mu
    inv_stdv = torch.exp(-ls)
    plus_in = inv_stdv * (centered + h)
    cdf_plus = torch.sigmoid(plus_in)
    min_in = inv_stdv * (centered - h)
    cdf_min = torch.sigmoid(min_in)
    log_cdf_plus = plus_in - F.softplus(plus_in)
    log_one_minus_cdf_min = -F.softplus(min_in)
    cdf_delta = cdf_plus - cdf_min
    mid_in = inv_stdv * centered
    log_pdf_mid = mid_in - ls - 2.0 * F.softplus(mid_in)
    log_probs = torch.where(xv < -0.999, log_cdf_plus, torch.where(
        xv > 0.999, log_one_minus_cdf_min, torch.where(cdf_delta > 1e-5, torch.log(torch.clamp(cdf_delta, min=1e-12)),
                                                       log_pdf_mid - math.log((2**bits - 1) / 2))))
    return row_sum(torch.logsumexp(log_probs.sum(-2) + log_pi, -1))


def sample_from_uniforms(params, num_mixtures, dim, u_mixture, u_logistic):
    """PixelCNN++'s sampler given its uniforms in (0, 1): ``u_mixture`` (B, ..., M) for the
    Gumbel-max choice of a component, ``u_logistic`` (B, ..., C) for the logistic draws (both
    with the channel dim last), each mapped to [1e-5, 1 - 1e-5] as PixelCNN++ draws them."""
    logits, means, raw, coefficients = _mixture.parts(to_sum(params), num_mixtures, dim)
    u1, u2 = (1e-5 + (1 - 2e-5) * u.to(logits.dtype) for u in (u_mixture, u_logistic))
    pick = torch.argmax(logits - torch.log(-torch.log(u1)), -1, keepdim=True).unsqueeze(-2)  # (B, ..., 1, 1)
    c = means.shape[-2]
    chosen = [t.gather(-1, pick.expand(*t.shape[:-1], 1)).squeeze(-1) for t in (means, raw)]
    v = chosen[0] + torch.exp(torch.clamp(chosen[1], min=_mixture.MIN_LOG_SCALE)) * (torch.log(u2) - torch.log(1 - u2))
    out = [v[..., 0].clamp(-1.0, 1.0)]
    if c == 3:
        a = torch.tanh(coefficients.gather(-1, pick.expand(*coefficients.shape[:-1], 1)).squeeze(-1))
        out.append((v[..., 1] + a[..., 0] * out[0]).clamp(-1.0, 1.0))
        out.append((v[..., 2] + a[..., 1] * out[0] + a[..., 2] * out[1]).clamp(-1.0, 1.0))
    return torch.stack(out, -1).movedim(-1, dim % params.dim())


def sample_discretized_logistic_mixture(params: torch.Tensor, num_mixtures: int, *, dim: int = 1,
                                        generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """One draw x in [-1, 1] of the mixture, PixelCNN++'s sampler (not rounded to the bins);
    see ``fastvae.sample_discretized_logistic_mixture``."""
    check_mixture_sample(params, num_mixtures, dim, generator)
    logits, means, _, _ = _mixture.parts(params, num_mixtures, dim)
    kw = dict(device=params.device, generator=generator)
    return sample_from_uniforms(params, num_mixtures, dim, torch.rand(logits.shape, **kw),
                                torch.rand(means.shape[:-1], **kw))
