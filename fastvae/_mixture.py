"""The discretized logistic mixture's parameters: their layout, and what a decoder output of them
means (the registry's shape, mean and output bias for this likelihood).

The layout of PixelCNN++, VDVAE and NVAE: along the channel dim ``dim``, the M mixture logits,
then for each channel c in order its M means, its M log-scales and (C = 3) its M coefficients:
``M * (1 + 3 C)`` entries for C = 3 (10 M), ``3 M`` for C = 1. x has C in {1, 3} channels at
``dim``, in [-1, 1]. Pure torch, no checks beyond the layout's own (``shape`` raises on settings
that do not fit).
"""

import math
from numbers import Integral

import torch

from ._rows import to_sum
from .kernels._env import mixture_channels  # noqa: F401 - one home (kernels/_env.py), used from here

MIN_LOG_SCALE = -7.0  # log-scales are clamped below here (PixelCNN++)
CHANNELS = (1, 3)


def per_channel(channels: int) -> int:
    """Parameters per mixture per channel: mean, log-scale, and for C = 3 a coefficient."""
    return 3 if channels == 3 else 2


def entries(channels: int, num_mixtures: int) -> int:
    """K, the parameters along the channel dim: 10 M for C = 3, 3 M for C = 1."""
    return num_mixtures * (1 + per_channel(channels) * channels)


def _int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {f'in {low}..{high}' if high is not None else f'>= {low}'}, got {value}")
    return int(value)


def channel_dim(dim, ndim: int) -> int:
    """``dim`` of a (B, ...) tensor of ``ndim`` dims as a non-negative index; never the batch."""
    if ndim < 2:
        raise ValueError(f"x must have a batch and a channel dimension (B, C, ...), got {ndim} dimension(s)")
    dim = _int("dim", dim, -ndim, ndim - 1) % ndim
    if dim == 0:
        raise ValueError("dim must name the channel dimension, not the batch dimension 0")
    return dim


def shape(x_shape, num_mixtures, bits=8, dim=1) -> tuple:
    """The parameters' shape for targets of ``x_shape`` (B, ..., C at ``dim``, ...): x's with
    its C channels replaced by ``entries(C, M)``; ValueError/TypeError for settings that do
    not fit (M >= 1, bits in 1..8, dim a channel dim of x, C in {1, 3})."""
    m = _int("num_mixtures", num_mixtures, 1)
    _int("bits", bits, 1, 8)
    x_shape = tuple(x_shape)
    if len(x_shape) < 2:
        raise ValueError(f"x must have shape (B, C, ...), a batch and a channel dimension, got shape {x_shape}")
    d = channel_dim(dim, len(x_shape))
    if x_shape[d] not in CHANNELS:
        raise ValueError(f"x must have 1 or 3 channels along dim {dim} (grey or RGB), got {x_shape[d]} in shape "
                         f"{x_shape}")
    return x_shape[:d] + (entries(x_shape[d], m),) + x_shape[d + 1:]


def parts(params: torch.Tensor, num_mixtures: int, dim: int = 1):
    """``(logits, means, log_scales, coefficients)`` of ``params`` (B, ..., K at dim, ...), as
    views with the channel dim moved last: logits (B, ..., M), the others (B, ..., C, M) (raw
    log-scales, before the clamp; raw coefficients, before tanh; None for C = 1)."""
    p = params.movedim(dim % params.dim(), -1)
    m = num_mixtures
    c = mixture_channels(p.shape[-1], m)
    rest = p[..., m:].unflatten(-1, (c, per_channel(c) * m))
    coefficients = rest[..., 2 * m:] if c == 3 else None
    return p[..., :m], rest[..., :m], rest[..., m:2 * m], coefficients


def mean(params: torch.Tensor, num_mixtures: int, dim: int = 1, bits: int = 8) -> torch.Tensor:
    """NVAE's mean of the mixture as an image in [0, 1]: the means weighted by the mixture's
    probabilities (not resampled), red clamped to [-1, 1], then green and blue shifted by their
    coefficients times the channels before them and clamped, mapped to [0, 1]; (B, C, ...) with
    the channels at ``dim``, float32 (float64 for float64 params). ``bits`` is not used (the
    layout's arguments are passed together)."""
    logits, means, _, coefficients = parts(to_sum(params), num_mixtures, dim)
    w = torch.softmax(logits, -1).unsqueeze(-2)
    mu = (means * w).sum(-1)
    out = [mu[..., 0].clamp(-1.0, 1.0)]
    if coefficients is not None:
        a = (torch.tanh(coefficients) * w).sum(-1)
        out.append((mu[..., 1] + a[..., 0] * out[0]).clamp(-1.0, 1.0))
        out.append((mu[..., 2] + a[..., 1] * out[0] + a[..., 2] * out[1]).clamp(-1.0, 1.0))
    return (torch.stack(out, -1).movedim(-1, dim % params.dim()) + 1.0) / 2.0


def output_bias(means: torch.Tensor, eps: float = 1e-3, num_mixtures: int = 1, bits: int = 8, dim: int = 1):
    """The output (float64) of one example whose mixture has ``means`` (an image in [0, 1] of one
    example's shape, channels at ``dim`` counted as in a batch): equal logits, every component's
    mean at ``2 m - 1`` (m clamped to [eps, 1 - eps]), its log-scale that of a bin's width
    ``log(2 / (2**bits - 1))``, zero coefficients."""
    m = 2.0 * means.double().clamp(eps, 1 - eps) - 1.0
    d = dim - 1 if dim > 0 else dim  # the example has no batch dim
    mc = m.movedim(d, -1)
    c, shape = mc.shape[-1], (*mc.shape, num_mixtures)
    pieces = [mc.unsqueeze(-1).expand(shape), torch.full(shape, math.log(2.0 / (2**bits - 1)), dtype=m.dtype)]
    rest = torch.cat(pieces + ([torch.zeros(shape, dtype=m.dtype)] if c == 3 else []), -1).flatten(-2)
    return torch.cat([torch.zeros(*rest.shape[:-1], num_mixtures, dtype=m.dtype), rest], -1).movedim(-1, d)
