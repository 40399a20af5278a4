"""``bernoulli_log_likelihood``: the Bernoulli log-likelihood and its gradient in one pass
(``fastvae.kernels.bernoulli``).

Eager: the forward also stores the gradient, pre-multiplied by the upstream gradient the caller
expects (``grad_scale``), so the usual backward has nothing left to do over (B, D): its kernel
checks the upstream gradient on the device and returns. Under ``torch.compile`` graphs are
functional (no buffer may be scaled in place), so the gradient is recomputed in backward
instead: 5 + 9 bytes per element with uint8 targets against 9 + 8 for storing and rescaling.
float16 logits always recompute (a pre-scaled float16 gradient would underflow before a loss
scaler multiplied it back).

The forward and backward passes below are written once; the eager ``torch.autograd.Function``
and the ``torch.library`` custom ops that ``torch.compile`` sees both call them.
"""

import torch

from .. import reference
from .._backend import use_triton
from .._checks import check_bernoulli
from .._rows import per_row, sum_dtype
from . import _route
from ._route import graph_kept, guard, kernels, once_differentiable

Tensor = torch.Tensor


def _forward(logits, x, grad_scale, store_grad):
    return kernels().bernoulli_ll_fwd(logits, x, grad_scale, store_grad)


def _recompute(logits, x, grad_ll):
    return kernels().bernoulli_ll_bwd(logits, x, grad_ll)


def _setup(ctx, logits, x, grad_scale, store_grad, grad):
    ctx.grad_scale, ctx.store_grad, ctx.x_dtype = grad_scale, store_grad, x.dtype
    # logits (and x) are kept only where backward reads them: to recompute the gradient when
    # it was not stored, and for d ll / d x = logits when x needs a gradient.
    recompute = logits.requires_grad and not store_grad
    ctx.save_for_backward(grad if store_grad else None,
                          logits if recompute or x.requires_grad else None, x if recompute else None)
    ctx.set_materialize_grads(False)


def _grads(ctx, grad_ll, recompute):
    """Gradients of (logits, x, grad_scale, store_grad) given the upstream grad_ll (B,)."""
    grad_logits = grad_x = None
    if grad_ll is None:
        return None, None, None, None
    grad, logits, x = ctx.saved_tensors
    if ctx.needs_input_grad[0]:
        if ctx.store_grad:
            # in place unless another backward through this graph may follow (retain_graph)
            grad_logits = kernels().bernoulli_ll_scale_grad(grad, grad_ll, ctx.grad_scale, in_place=not graph_kept())
        else:
            grad_logits = recompute(logits, x, grad_ll)
    if ctx.needs_input_grad[1]:
        grad_x = (per_row(grad_ll, logits) * logits).to(ctx.x_dtype)
    return grad_logits, grad_x, None, None


class fastvae_bernoulli_ll(torch.autograd.Function):  # noqa: N801 - the name grad_fn shows
    """Eager route: (logits, x, grad_scale, store_grad) -> ll (B,)."""

    @staticmethod
    def forward(ctx, logits, x, grad_scale, store_grad):
        ll, grad = _forward(logits, x, grad_scale, store_grad)
        _setup(ctx, logits, x, grad_scale, store_grad, grad)
        return ll

    @staticmethod
    def backward(ctx, grad_ll):
        once_differentiable("bernoulli_log_likelihood")
        return _grads(ctx, grad_ll, _recompute)


# ------------------------------------------------------------- the same under torch.compile

@torch.library.custom_op("fastvae::bernoulli_ll", mutates_args=())
def _op(logits: Tensor, x: Tensor) -> Tensor:
    return _forward(logits, x, 1.0, False)[0]


@_op.register_fake
def _(logits, x):
    return logits.new_empty((logits.shape[0],), dtype=sum_dtype(logits.dtype))


@torch.library.custom_op("fastvae::bernoulli_ll_backward", mutates_args=())
def _op_backward(logits: Tensor, x: Tensor, grad_ll: Tensor) -> Tensor:
    """The recomputed gradient ``grad_ll * (x - sigmoid(logits))``, one pass over logits and x."""
    return _recompute(logits, x, grad_ll)


@_op_backward.register_fake
def _(logits, x, grad_ll):
    return kernels().bernoulli_grad_like(logits)


def _op_setup(ctx, inputs, output):
    logits, x = inputs
    _setup(ctx, logits, x, 1.0, False, None)


def _op_grads(ctx, grad_ll):
    return _grads(ctx, grad_ll, _op_backward)[:2]


_op.register_autograd(_op_grads, setup_context=_op_setup)


# --------------------------------------------------------------------- public functions

def bernoulli_ll_scaled(logits: Tensor, x: Tensor, grad_scale: float) -> Tensor:
    """The fused op for callers that know the upstream gradient ``grad_scale`` their ll will
    get (``-1/B`` inside a mean negative ELBO): folded into the gradient the forward stores, so
    that backward has nothing to do. Inputs must already be validated (fastvae-internal)."""
    if _route.compiling():
        return _op(logits, x)
    store_grad = torch.is_grad_enabled() and logits.requires_grad and logits.dtype != torch.float16
    return fastvae_bernoulli_ll.apply(logits, x, float(grad_scale), store_grad)


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x | logits) of independent Bernoullis, per row: ``sum(x * logits - softplus(logits))``.

    Computed stably (softplus as ``max(l, 0) + log1p(exp(-|l|))``, never a log of a sigmoid).

    Args:
        logits: (B, ...) float16, bfloat16, float32 or float64; any strides (a channels-last
            decoder output is read through its strides, never copied).
        x: targets of logits' shape: floats in [0, 1] (soft targets), bool, or uint8 holding
            0/1 (read as one byte per element). Values are not range-checked (that would cost a
            pass and a host sync): other values give the formula's value.

    Returns:
        (B,) float32 (float64 for float64 logits): the sum over all non-batch dimensions.

    With the Triton backend the forward computes the gradient in the same pass into its own
    buffer (the caller's logits are never overwritten); the backward only applies the upstream
    gradient, and skips even that when it is exactly 1 (as after ``ll.sum().backward()``).
    float16 logits instead get their gradient recomputed in one backward pass (float16's range
    is too small to store it ahead of the loss scale). The gradient for x (``logits``) is
    computed too when x requires grad. Differentiable once (``create_graph=True`` raises);
    ``retain_graph=True`` and a second backward work.
    """
    check_bernoulli(logits, x)
    if not use_triton(logits):
        return guard("bernoulli_log_likelihood", reference.bernoulli_log_likelihood(logits, x))
    return bernoulli_ll_scaled(logits, x, 1.0)
