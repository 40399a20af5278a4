"""The count likelihoods of single-cell VAEs (scVI and the models built on it): Poisson, negative
binomial and zero-inflated negative binomial, fused and exact in float32 (``kernels/_counts.py``).

The elementwise forms (a mean per cell and gene) run in the one likelihood kernel
(``ops.likelihood``: the forward stores the gradients, the usual backward does nothing over
(B, G)); the softmax form (``mean = library * softmax(logits)``, scVI's decoder) has its own
row-wise kernel (``ops.softmax_counts``).
"""

from typing import Optional

import torch

from .. import likelihoods, reference
from .._backend import use_triton
from .._checks import check_counts, validate_targets
from ..kernels import modes
from . import _route
from .likelihood import log_likelihood

Tensor = torch.Tensor


def _record(log_theta):
    # the record that runs: the negative binomial, or its Poisson limit without a log theta
    return likelihoods.by_code(modes.POISSON if log_theta is None else modes.NEGATIVE_BINOMIAL)


def _fused(name, p, x, log_theta, q, validate_args, reference_fn, *args, **kw):
    # q: the zero-inflation logits, or None
    spec = _record(log_theta)
    check_counts(spec, p, x, log_theta, q)
    if validate_args:
        validate_targets(spec, x)
    if not use_triton(p):
        return _route.guard(name, reference_fn(p, x, *args, **kw))
    return log_likelihood(spec, p, x, log_theta, 0.0, q=q)


def negative_binomial_log_likelihood(mean: Tensor, x: Tensor, log_theta: Optional[Tensor], *,
                                     zero_inflation_logits: Optional[Tensor] = None,
                                     validate_args: bool = False) -> Tensor:
    """log NB(x; mean, theta) of independent counts per row, theta = exp(log_theta) the inverse
    dispersion (variance ``mean + mean^2 / theta``): the sum over all non-batch dims of
    ``lgamma(x + theta) - lgamma(theta) - lgamma(x + 1) + theta log(theta / (theta + mean)) +
    x log(mean / (theta + mean))``, scvi-tools' ``log_nb_positive`` without its eps.

    Exact in float32 where that formula is not: Loader's saddle-point form keeps every piece
    about as large as the result (the textbook form loses up to a nat per gene once theta
    reaches 1e5-1e6, and its eps biases means below 1e-6); tested against float64 truth for
    theta from 1e-4 to 1e6, means from 1e-8 to 1e5 and counts up to 1e5.

    Args:
        mean: (B, ...) float16, bfloat16, float32 or float64, >= 0; any strides.
        x: counts of mean's shape: a float dtype, or uint8, int16, int32, int64 (count matrices
            stay integer on the device), or bool. No gradient flows to x.
        log_theta: log inverse dispersion, broadcastable to mean's shape without changing it: per
            gene ``mean.shape[1:]``, per cell and gene ``mean.shape``, or 0-d; its gradient comes
            back in its own shape (a per-gene one summed over the batch inside the pass). None:
            the Poisson limit (theta -> infinity).
        zero_inflation_logits: the zero-inflated model (scvi-tools' ``log_zinb_positive``), of
            mean's shape: dropout probability ``sigmoid(zero_inflation_logits)``.
        validate_args: check that x holds non-negative integers (a reduction and a host sync).

    Returns:
        (B,) float32 (float64 for float64 mean). Gradients to mean, log_theta and the dropout
        logits, formed in the forward's pass; differentiable once.
    """
    return _fused("negative_binomial_log_likelihood", mean, x, log_theta, zero_inflation_logits, validate_args,
                  reference.negative_binomial_log_likelihood, log_theta, zero_inflation_logits=zero_inflation_logits)


def poisson_log_likelihood(rate: Tensor, x: Tensor, *, validate_args: bool = False) -> Tensor:
    """log Poisson(x; rate) of independent counts per row: the sum of ``x log(rate) - rate -
    lgamma(x + 1)``, exact in float32 (``-log(2 pi x)/2 - stirlerr(x) - bd0(x, rate)`` above 0).

    rate: (B, ...) float, >= 0, any strides; x: counts of its shape (float, uint8, int16, int32,
    int64 or bool; no gradient). Returns (B,) float32 (float64 for float64 rate).
    """
    return _fused("poisson_log_likelihood", rate, x, None, None, validate_args, reference.poisson_log_likelihood)
