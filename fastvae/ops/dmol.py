"""The discretized logistic mixture of PixelCNN++, VDVAE and NVAE, fused
(``fastvae.kernels.dmol``): ``discretized_logistic_mixture_log_likelihood`` and its sampler
``sample_discretized_logistic_mixture``.

Eager: the forward's one pass also stores the gradient for the parameters, pre-multiplied by
the upstream gradient the caller expects (``grad_scale``), so the usual backward has nothing
to do but check that upstream gradient (``rescale.scale_rows`` returns at once); any other
rescales the stored buffer. Nothing of size (B, H, W, C, M) is ever in memory: what backward
keeps is that one buffer of the parameters' size. float16 parameters recompute in backward (a
pre-scaled float16 gradient would underflow). Under ``torch.compile``: the custom ops
``fastvae::mixture`` and ``fastvae::mixture_backward`` (the gradient recomputed in one pass,
as compiled graphs are functional) and ``fastvae::mixture_sample``.
"""

from typing import Optional

import torch

from .. import likelihoods, reference
from .._backend import use_triton
from .._checks import check_likelihood, check_mixture_sample, validate_targets
from .._rows import sum_dtype
from . import _route
from ._route import draw_seed, graph_kept, kernels, once_differentiable

Tensor = torch.Tensor
FUNCTION = "discretized_logistic_mixture_log_likelihood"


class fastvae_mixture(torch.autograd.Function):  # noqa: N801 - the name grad_fn shows
    """Eager route: (params, x, (num_mixtures, bits, dim), grad_scale, store) -> ll (B,); with
    ``store`` the forward stores the gradient (decided outside, where grad mode is visible)."""

    @staticmethod
    def forward(ctx, params, x, settings, grad_scale, store):
        ll, grad = kernels().dmol_pass(params, x, *settings, grad_scale, store=store)
        ctx.settings, ctx.grad_scale, ctx.store = settings, grad_scale, store
        # what backward keeps: the gradient alone, or (recomputing) the inputs
        ctx.save_for_backward(grad, None if store else params, None if store else x)
        ctx.set_materialize_grads(False)
        return ll

    @staticmethod
    def backward(ctx, grad_ll):
        if grad_ll is None:
            return (None,) * 5
        once_differentiable(FUNCTION)
        grad, params, x = ctx.saved_tensors
        if not ctx.store:  # float16: recomputed for this upstream gradient
            return kernels().dmol_pass(params, x, *ctx.settings, 1.0, grad_ll, store=True)[1], None, None, None, None
        factor = grad_ll if ctx.grad_scale == 1.0 else grad_ll / ctx.grad_scale
        return kernels().scale_rows(grad, factor, 1.0, in_place=not graph_kept()), None, None, None, None


# ------------------------------------------------------------- the same under torch.compile

@torch.library.custom_op("fastvae::mixture", mutates_args=())
def _op(params: Tensor, x: Tensor, num_mixtures: int, bits: int, dim: int) -> Tensor:
    return kernels().dmol_pass(params, x, num_mixtures, bits, dim)[0]


@_op.register_fake
def _(params, x, num_mixtures, bits, dim):
    return params.new_empty((params.shape[0],), dtype=sum_dtype(params.dtype))


@torch.library.custom_op("fastvae::mixture_backward", mutates_args=())
def _op_backward(params: Tensor, x: Tensor, g: Tensor, num_mixtures: int, bits: int, dim: int) -> Tensor:
    return kernels().dmol_pass(params, x, num_mixtures, bits, dim, 1.0, g, store=True)[1]


@_op_backward.register_fake
def _(params, x, g, num_mixtures, bits, dim):
    from ..kernels.dmol import grad_like

    return grad_like(params, symbolic=True)


def _op_setup(ctx, inputs, output):
    params, x, *settings = inputs
    ctx.settings = settings
    ctx.save_for_backward(params, x)


def _op_grads(ctx, grad_ll):
    if grad_ll is None or not ctx.needs_input_grad[0]:
        return None, None, None, None, None
    params, x = ctx.saved_tensors
    return _op_backward(params, x, grad_ll, *ctx.settings), None, None, None, None


_op.register_autograd(_op_grads, setup_context=_op_setup)


@torch.library.custom_op("fastvae::mixture_sample", mutates_args=())
def _sample_op(params: Tensor, seed: Tensor, num_mixtures: int, dim: int) -> Tensor:
    return kernels().dmol_sample(params, num_mixtures, dim, seed)


@_sample_op.register_fake
def _(params, seed, num_mixtures, dim):
    from ..kernels.dmol_sampler import sample_like

    return sample_like(params, num_mixtures, dim, symbolic=True)


# --------------------------------------------------------------------- public functions

def mixture_log_likelihood(params: Tensor, x: Tensor, args: dict, grad_scale: float = 1.0, store: bool = True):
    """The registry record's op (``Likelihood.rows``; inputs already checked): eager or compiled
    route. ``args``: num_mixtures, bits, dim; ``grad_scale``: the upstream gradient the caller
    expects for ll, folded into the stored gradient; ``store`` False (the upstream gradient is
    not known ahead, as in the importance-weighted bound): recomputed in backward."""
    settings = (int(args["num_mixtures"]), int(args["bits"]), int(args["dim"]))
    if _route.compiling() or not store:
        return _op(params, x, *settings)
    store = torch.is_grad_enabled() and params.requires_grad and params.dtype != torch.float16
    return fastvae_mixture.apply(params, x, settings, float(grad_scale), store)


def discretized_logistic_mixture_log_likelihood(params: Tensor, x: Tensor, num_mixtures: int, *, bits: int = 8,
                                                dim: int = 1, validate_args: bool = False) -> Tensor:
    """log p(x | params) of PixelCNN++'s discretized logistic mixture, per row: the sum over every
    sub-pixel of the log-probability of its bin under the mixture.

    Args:
        params: (B, ..., K, ...) float16, bfloat16, float32 or float64, K at ``dim``: the M
            mixture logits, then for each channel c in order its M means, its M log-scales and
            (C = 3) its M coefficients (10 M entries for C = 3, 3 M for C = 1; PixelCNN++'s,
            VDVAE's and NVAE's layout). Any strides: a permuted conv output
            (``out.permute(0, 2, 3, 1)``) is read through its strides, never copied.
        x: (B, ..., C, ...) of params' shape but C in {1, 3} at ``dim``: float in [-1, 1], or
            uint8 levels k read as ``2 k / (2**bits - 1) - 1``. No gradient (x is discrete).
        num_mixtures: M >= 1.
        bits: 1..8, the bins are the 2**bits levels (8; VDVAE's FFHQ-256 setting is 5).
        dim: the channel dim of params and x (1: NCHW, NVAE's; -1: channels-last, VDVAE's and
            PixelCNN++'s).
        validate_args: check that x lies in [-1, 1] (uint8: below 2**bits), a host sync.

    Semantics as PixelCNN++: log-scales clamped below at -7 (no gradient below the clamp),
    coefficients through tanh, green's mean shifted by ``c0 * x_red``, blue's by ``c1 * x_red +
    c2 * x_green``, bins of half-width ``1 / (2**bits - 1)``, the lowest open to -inf and the
    highest to +inf (x below -0.999, above 0.999), the mixture by log-sum-exp with the
    log-softmax of the logits. One difference: the bin probability is computed exactly and
    stably everywhere, where PixelCNN++ takes the density at the bin's centre times its width
    once it is below 1e-5 (a work-around for a TensorFlow gradient problem); above 1e-5 the two
    agree. Finite for any finite input (|mean| = 30 at log-scale -7 included).

    Returns:
        (B,) float32 (float64 for float64 params), computed in float32 for half precision. The
        gradient for params (in their dtype, shape and memory order) is formed in the same pass
        and stored; the usual ``loss.backward()`` then only checks the upstream gradient.
        Differentiable once.
    """
    args = dict(num_mixtures=num_mixtures, bits=bits, dim=dim)
    check_likelihood(likelihoods.by_function(FUNCTION), params, x, args=args)
    if validate_args:
        validate_targets(likelihoods.by_function(FUNCTION), x, args)
    if not use_triton(params):
        return _route.guard(FUNCTION, reference.discretized_logistic_mixture_log_likelihood(params, x, **args))
    return mixture_log_likelihood(params, x, args)


def sample_discretized_logistic_mixture(params: Tensor, num_mixtures: int, *, dim: int = 1,
                                        generator: Optional[torch.Generator] = None) -> Tensor:
    """One draw x of PixelCNN++'s discretized logistic mixture, in one kernel: per pixel the
    component by Gumbel-max over the logits, a logistic sample of its mean and scale per channel,
    green and blue shifted by their coefficients times the channels drawn before them, each
    clamped to [-1, 1] (not rounded to the bins, as PixelCNN++'s sampler).

    params: as ``discretized_logistic_mixture_log_likelihood``'s (any strides). Returns x
    (B, ..., C, ...) with C at ``dim``, float32 (float64 for float64 params), laid out like
    params; no gradient. The noise is drawn in the kernel from a seed drawn from ``generator``
    (or the device's default one): ``torch.manual_seed`` reproduces it; the Triton and the
    PyTorch backends draw different noise.
    """
    check_mixture_sample(params, num_mixtures, dim, generator)
    if not use_triton(params):
        return reference.sample_discretized_logistic_mixture(params, num_mixtures, dim=dim, generator=generator)
    seed = draw_seed(params.device, generator)
    if _route.compiling():
        return _sample_op(params.detach(), seed, int(num_mixtures), int(dim))
    return kernels().dmol_sample(params.detach(), int(num_mixtures), int(dim), seed)
