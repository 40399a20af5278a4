"""``softmax_negative_binomial_log_likelihood``: the count likelihoods with scVI's decoder,
``mean = exp(log_library) * softmax(logits)``, fused with the softmax (``kernels.softmax_counts``):
neither the softmax nor the mean is ever in memory.

Eager: the forward stores the gradients pre-multiplied by the upstream gradient the caller
expects (``grad_scale``), so the usual backward has nothing to do over (B, G) (the stored
buffers are rescaled, by programs that return at once where the upstream gradient is the
expected one, otherwise). Under ``torch.compile`` the gradients are recomputed in one backward
pass (custom ops ``fastvae::softmax_counts`` and ``..._backward``).
"""

from typing import Optional

import torch

from .. import reference
from .._backend import use_triton
from .._checks import check_counts, check_softmax_counts, validate_targets
from .._rows import sum_dtype
from ..kernels import modes
from . import _route
from ._route import graph_kept, kernels, once_differentiable
from .counts import _record
from .likelihood import _expanded, _to_logscale, gs_mode

Tensor = torch.Tensor


def _rows_of(log_library):
    return log_library.reshape(-1) if log_library.dim() == 2 else log_library


def _needs(logits, log_library, s, q):
    return (logits.requires_grad, log_library.requires_grad, gs_mode(s, logits), q is not None and q.requires_grad)


def _launch(logits, x, lib, s, q, grad_scale, g, need, **kw):
    st = _expanded(s, logits)
    return kernels().softmax_counts(logits, x, _rows_of(lib), st, 0.0, q, grad_scale, g, nb=s is not None,
                                    store_gl=need[0], store_glib=need[1], gs_mode=need[2], store_gq=need[3], **kw)


def _finish(gl, glib, gs, gq, need, logits, lib, s, g=None):
    """The recomputed gradients in their own shapes: log theta's summed over what it was
    broadcast along, the library's in its shape; ``g`` applied to row sums."""
    if need[2] == modes.GS_PARTIALS:
        gs = kernels().sum_partials(gs, logits)
    elif need[2] == modes.GS_ROW_SUMS:
        gs = gs * (g if g is not None else 1.0)
    gs = _to_logscale(gs, need[2], s, logits.shape) if need[2] != modes.GS_NONE else None
    if need[1]:  # one per row of logits; a library read for each of K samples sums their K
        glib = glib.view(-1, lib.numel()).sum(0) if glib.numel() != lib.numel() else glib
        glib = glib.view(lib.shape).to(lib.dtype)
    else:
        glib = None
    return gl if need[0] else None, glib, gs, gq if need[3] else None


class fastvae_softmax_counts(torch.autograd.Function):  # noqa: N801 - the name grad_fn shows
    """Eager route: (logits, x, log_library, log_theta, q, grad_scale, store) -> ll (B,); ``store``
    (decided outside, where grad mode is visible): the forward stores the gradients."""

    @staticmethod
    def forward(ctx, logits, x, log_library, log_theta, q, grad_scale, store):
        need = _needs(logits, log_library, log_theta, q)
        ll, gl, glib, gs, gq = _launch(logits, x, log_library, log_theta, q, grad_scale, None,
                                       need if store else (False, False, modes.GS_NONE, False))
        ctx.need, ctx.store, ctx.grad_scale = need, store, grad_scale
        ctx.save_for_backward(gl, glib, gs, gq, logits, x, log_library, log_theta, q)
        ctx.set_materialize_grads(False)
        return ll

    @staticmethod
    def backward(ctx, grad_ll):
        if grad_ll is None:
            return (None,) * 7
        once_differentiable("softmax_negative_binomial_log_likelihood")
        gl, glib, gs, gq, logits, x, lib, s, q = ctx.saved_tensors
        factor = grad_ll if ctx.grad_scale == 1.0 else grad_ll / ctx.grad_scale
        need = ctx.need
        if not ctx.store:  # float16: recomputed (a pre-scaled float16 gradient would underflow)
            g = factor * ctx.grad_scale
            _, gl, glib, gs, gq = _launch(logits, x, lib, s, q, 1.0, g, need, write_ll=False)
            gl, glib, gs, gq = _finish(gl, glib, gs, gq, need, logits, lib, s, g)
            return gl, None, glib, gs, gq, None, None
        in_place, scale = not graph_kept(), kernels().scale_rows
        gl = scale(gl, factor, 1.0, in_place=in_place) if gl is not None else None
        gq = scale(gq, factor, 1.0, in_place=in_place) if gq is not None else None
        glib = glib * factor if glib is not None else None
        if need[2] == modes.GS_ELEMENTS:
            gs = scale(gs, factor, 1.0, in_place=in_place)
        elif need[2] == modes.GS_ROW_SUMS:
            gs = gs * (factor * ctx.grad_scale)
        elif need[2] == modes.GS_PARTIALS:  # programs whose rows got another upstream gradient sum theirs again
            gs = gs if in_place else gs.clone()
            _launch(logits, x, lib, s, q, ctx.grad_scale, factor, (False, False, modes.GS_PARTIALS, False),
                    write_ll=False, gs=gs, skip_if_one=True)
        gl, glib, gs, gq = _finish(gl, glib, gs, gq, need, logits, lib, s, 1.0)
        return gl, None, glib, gs, gq, None, None


# ------------------------------------------------------------- the same under torch.compile

@torch.library.custom_op("fastvae::softmax_counts", mutates_args=())
def _op(logits: Tensor, x: Tensor, log_library: Tensor, log_theta: Optional[Tensor], q: Optional[Tensor]) -> Tensor:
    return _launch(logits, x, log_library, log_theta, q, 1.0, None, (False, False, modes.GS_NONE, False))[0]


@_op.register_fake
def _(logits, x, log_library, log_theta, q):
    return logits.new_empty((logits.shape[0],), dtype=sum_dtype(logits.dtype))


@torch.library.custom_op("fastvae::softmax_counts_backward", mutates_args=())
def _op_backward(logits: Tensor, x: Tensor, log_library: Tensor, log_theta: Optional[Tensor], q: Optional[Tensor],
                 g: Tensor, need_l: bool, need_lib: bool, mode: int, need_q: bool) -> tuple[Tensor, Tensor, Tensor,
                                                                                            Tensor]:
    need = (need_l, need_lib, mode, need_q)
    _, gl, glib, gs, gq = _launch(logits, x, log_library, log_theta, q, 1.0, g, need, write_ll=False)
    grads = _finish(gl, glib, gs, gq, need, logits, log_library, log_theta, g)
    # unused outputs: distinct empty tensors (outputs of a custom op may not alias each other)
    return tuple(logits.new_empty((0,)) if t is None else t for t in grads)


@_op_backward.register_fake
def _(logits, x, log_library, log_theta, q, g, need_l, need_lib, mode, need_q):
    empty = lambda: logits.new_empty((0,))
    return (torch.empty_like(logits, memory_format=torch.contiguous_format) if need_l else empty(),
            torch.empty_like(log_library) if need_lib else empty(),
            torch.empty_like(log_theta) if mode != modes.GS_NONE else empty(),
            torch.empty_like(q, memory_format=torch.contiguous_format) if need_q else empty())


def _op_setup(ctx, inputs, output):
    logits, x, lib, s, q = inputs
    ctx.need = _needs(logits, lib, s, q)
    ctx.save_for_backward(logits, x, lib, s, q)


def _op_grads(ctx, grad_ll):
    if grad_ll is None:
        return None, None, None, None, None
    logits, x, lib, s, q = ctx.saved_tensors
    gl, glib, gs, gq = _op_backward(logits, x, lib, s, q, grad_ll, *ctx.need)
    need = ctx.need
    return (gl if need[0] else None, None, glib if need[1] else None, gs if need[2] != modes.GS_NONE else None,
            gq if need[3] else None)


_op.register_autograd(_op_grads, setup_context=_op_setup)


def softmax_log_likelihood(logits, x, log_theta, log_library, q=None, grad_scale=1.0, store=True):
    """The fused op (inputs already validated): eager or compiled route; ``grad_scale``: the
    upstream gradient the caller expects for ll, folded into the stored gradients; ``store``
    False (the upstream gradient is not known ahead): recomputed in backward, as compiled."""
    if _route.compiling() or not store:
        return _op(logits, x, log_library, log_theta, q)
    store = torch.is_grad_enabled() and logits.dtype != torch.float16 and any(
        t is not None and t.requires_grad for t in (logits, log_library, log_theta, q))
    return fastvae_softmax_counts.apply(logits, x, log_library, log_theta, q, float(grad_scale), store)


def softmax_negative_binomial_log_likelihood(logits: Tensor, x: Tensor, log_theta: Optional[Tensor],
                                             log_library: Tensor, *, zero_inflation_logits: Optional[Tensor] = None,
                                             validate_args: bool = False) -> Tensor:
    """The negative binomial of scVI's decoder, ``mean = exp(log_library) * softmax(logits, -1)``,
    fused with the softmax: per row the sum over genes of ``log NB(x; mean, exp(log_theta))``
    (see ``negative_binomial_log_likelihood``; the Poisson limit for ``log_theta=None``,
    zero-inflated with ``zero_inflation_logits``), exact in float32.

    Args:
        logits: (B, G) float16, bfloat16, float32 or float64, any strides; G up to a whole
            transcriptome (33,000 genes and more: the rows are walked in chunks).
        x: counts (B, G): float, or uint8, int16, int32, int64, or bool. No gradient.
        log_theta: (G,), (B, G) or 0-d log inverse dispersion, or None (Poisson).
        log_library: (B,) or (B, 1): log of each cell's library size (scVI's observed library:
            ``log(x.sum(-1))``).
        zero_inflation_logits: (B, G) dropout logits, or None.
        validate_args: check that x holds non-negative integers (a reduction and a host sync).

    Returns:
        (B,) float32 (float64 for float64 logits). Gradients to logits, log_theta (in its own
        shape), log_library and the dropout logits; no (B, G) temporary besides them (a per-gene
        log theta's gradient is summed over the batch inside the pass). Differentiable once.
    """
    spec = _record(log_theta)
    check_softmax_counts(logits, log_library)
    check_counts(spec, logits, x, log_theta, zero_inflation_logits)
    if validate_args:
        validate_targets(spec, x)
    if not use_triton(logits):
        ll = reference.softmax_negative_binomial_log_likelihood(logits, x, log_theta, log_library,
                                                                zero_inflation_logits=zero_inflation_logits)
        return _route.guard("softmax_negative_binomial_log_likelihood", ll)
    return softmax_log_likelihood(logits, x, log_theta, log_library, zero_inflation_logits)
