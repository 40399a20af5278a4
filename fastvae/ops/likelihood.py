"""The fused log-likelihoods (``fastvae.kernels.likelihood``): Bernoulli, continuous Bernoulli
and Gaussian, as autograd functions.

Eager: the forward also stores the gradients, pre-multiplied by the upstream gradient the caller
expects (``grad_scale``), so the usual backward has nothing left to do over (B, D): its kernels
check the upstream gradient on the device and return (a logscale shared by the rows keeps
per-program partial sums, refreshed only by programs whose rows got another upstream gradient).
Under ``torch.compile`` graphs are functional (no buffer may be scaled in place), so the
gradients are recomputed in backward: 5 + 9 bytes per element for the Bernoulli with uint8
targets, against 9 + 8 for storing and rescaling. float16 parameters always recompute (a
pre-scaled float16 gradient would underflow before a loss scaler multiplied it back).

``forward``/``backward`` below are written once; the eager ``torch.autograd.Function`` and the
``torch.library`` custom ops that ``torch.compile`` sees both call them.
"""

from typing import Optional

import torch

from .. import likelihoods
from .._backend import use_triton
from .._checks import check_likelihood, validate_values
from .._rows import sum_dtype
from ..kernels import modes
from . import _route
from ._route import graph_kept, kernels, once_differentiable

Tensor = torch.Tensor


def _expanded(s, p):
    """The logscale tensor viewed at p's shape (stride 0 where broadcast), or None. One with
    p's dims but fewer rows, a divisor of p's (one sample's rows of importance-weighted
    training), keeps its rows: the kernel reads row r % rows for row r of p."""
    if s is None:
        return None
    if s.dim() == p.dim() and 1 < s.shape[0] < p.shape[0] and p.shape[0] % s.shape[0] == 0:
        return s.expand((s.shape[0], *p.shape[1:]))
    return s.expand(p.shape) if s.dim() else s.reshape((1,) * p.dim()).expand(p.shape)


def gs_mode(s, p):
    """How the logscale's gradient is formed (``kernels.modes.GS_*``): none, per element, summed
    over the rows (shared by them, varying within a row), or summed within each row (constant
    within a row: one value for all included; the upstream gradient applied after). Decided by
    s's shape against p's, not by its strides: an expanded logscale (``ls.expand(D)``, stride 0)
    still has a gradient per element of its shape."""
    if s is None or not s.requires_grad:
        return modes.GS_NONE
    shape = (1,) * (p.dim() - s.dim()) + tuple(s.shape)  # s's dims aligned with p's
    if all(n == 1 for n in shape[1:]):
        return modes.GS_ROW_SUMS
    return modes.GS_PARTIALS if shape[0] == 1 else modes.GS_ELEMENTS


def _to_logscale(gs, mode, s, shape):
    """The logscale's gradient in its own shape and dtype, from the kernel's for parameters of
    ``shape``: per element, summed over the rows (shape[1:]) or within each row ((B,))."""
    if mode == modes.GS_PARTIALS:
        gs = gs.reshape((1, *shape[1:]))
    elif mode == modes.GS_ROW_SUMS:
        gs = gs.view((-1,) + (1,) * (len(shape) - 1))
    if s.dim() == gs.dim() and 1 < s.shape[0] < gs.shape[0]:  # rows read again for each sample
        gs = gs.reshape(-1, s.shape[0], *gs.shape[1:]).sum(0)
    return (gs.sum_to_size(s.shape) if gs.shape != s.shape else gs).to(s.dtype)


def _pass(spec, p, x, s, s_value, grad_scale, g=None, q=None, **kw):
    """One launch of the likelihood kernel for the record ``spec`` (``kernels.likelihood_pass``)."""
    return kernels().likelihood_pass(spec.code, p, x, _expanded(s, p), s_value, grad_scale, g, q=q,
                                     x_scale=spec.uint8_scale, **kw)


def needs(spec, p, x, s, q):
    """What gets a gradient: (p, x (never counts), the logscale or log theta's ``gs_mode``, q)."""
    return (p.requires_grad, x.requires_grad and not spec.counts, gs_mode(s, p), q is not None and q.requires_grad)


def forward(ctx, spec, p, x, s, s_value, grad_scale, store, kl=None, beta=1.0, reduce=modes.REDUCE_NONE, q=None):
    """The forward pass of likelihood ``spec`` (a ``fastvae.likelihoods`` record); with ``ctx``,
    also saves what backward needs. ``q``: zero-inflation logits (the records that take them).
    Returns (ll, rows): rows as ``kernels.likelihood_pass`` gives them (0-d where it could
    ``reduce`` them)."""
    need = needs(spec, p, x, s, q)
    store = store and (need[0] or need[1] or need[2] != modes.GS_NONE or need[3])
    ll, gp, gx, gs, rows, gq = _pass(spec, p, x, s, s_value, grad_scale, q=q, store_gp=store and need[0],
                                     store_gx=store and need[1], gs_mode=need[2] if store else modes.GS_NONE,
                                     store_gq=store and need[3], kl=kl, beta=beta, reduce=reduce)
    if ctx is not None:
        ctx.spec, ctx.s_value, ctx.grad_scale, ctx.store, ctx.need = spec, s_value, grad_scale, store, need
        ctx.p_shape, ctx.x_rows = p.shape, x.shape[0]
        # p, x and q stay alive only where backward reads them (a shared logscale re-sums from them)
        keep = not store or need[2] == modes.GS_PARTIALS
        ctx.save_for_backward(gp, gx, gs, gq, p if keep else None, x if keep else None, s, q if keep else None)
        ctx.set_materialize_grads(False)
    return ll, rows


def _rescale(ctx, stored, factor, aux_scale):
    """The stored gradients (gp, gx, gs, gq) for the upstream gradient ``factor``: each rescaled
    (in place unless the graph is kept), a shared logscale's partial sums refreshed by the
    programs whose rows got another upstream gradient; and aux (see ``backward``)."""
    (gp, gx, gs, gq), (p, x, s, q) = stored
    need, aux, in_place = ctx.need, None, not graph_kept()
    scale = kernels().scale_rows
    if gp is not None and aux_scale is not None:
        gp, aux = scale(gp, factor, 1.0, in_place=in_place, aux_scale=aux_scale)
    elif gp is not None:
        gp = scale(gp, factor, 1.0, in_place=in_place)
    gx = scale(gx, factor, 1.0, in_place=in_place) if gx is not None else None
    gq = scale(gq, factor, 1.0, in_place=in_place) if gq is not None else None
    if need[2] == modes.GS_ELEMENTS:
        gs = scale(gs, factor, 1.0, in_place=in_place)
    elif need[2] == modes.GS_ROW_SUMS:
        gs = gs * (factor * ctx.grad_scale)
    elif need[2] == modes.GS_PARTIALS:
        gs = gs if in_place else gs.clone()
        _pass(ctx.spec, p, x, s, ctx.s_value, ctx.grad_scale, factor, q=q, write_ll=False, gs_mode=modes.GS_PARTIALS,
              gs=gs, skip_if_one=True)
        gs = kernels().sum_partials(gs, p)
    return (gp, gx, gs, gq), aux


def backward(ctx, factor, recompute=None, aux_scale=None):
    """Gradients of (p, x, s, q) for the upstream gradient ``factor * grad_scale`` per row
    (``factor``: (B,) or 0-d), and ``aux``: with ``aux_scale``, ``factor * aux_scale`` (B,) where
    the launch that rescales p's stored gradient could form it (else None).
    ``recompute(spec, p, x, s, q, s_value, g, need)`` forms them anew (eager: the kernel;
    compiled: the backward custom op). Returns ``(gp, gx, gs, gq, aux)``."""
    saved = ctx.saved_tensors
    need, aux = ctx.need, None
    p, x, s, q = saved[4:]
    if ctx.store:
        (gp, gx, gs, gq), aux = _rescale(ctx, (saved[:4], saved[4:]), factor, aux_scale)
    else:
        g = factor * ctx.grad_scale if ctx.grad_scale != 1.0 else factor
        gp, gx, gs, gq = (recompute or _recompute)(ctx.spec, p, x, s, q, ctx.s_value, g, need)
    has_gs = need[2] != modes.GS_NONE
    if has_gs:
        gs = _to_logscale(gs, need[2], s, ctx.p_shape)
    if need[1] and gx.shape[0] != ctx.x_rows:  # x read again for each sample: summed over them
        gx = gx.reshape(-1, ctx.x_rows, *gx.shape[1:]).sum(0, dtype=sum_dtype(gx.dtype)).to(gx.dtype)
    return (gp if need[0] else None, gx if need[1] else None, gs if has_gs else None, gq if need[3] else None,
            aux)


def _recompute(spec, p, x, s, q, s_value, g, need):
    _, gp, gx, gs, _, gq = _pass(spec, p, x, s, s_value, 1.0, g, q=q, write_ll=False, store_gp=need[0],
                                 store_gx=need[1], gs_mode=need[2], store_gq=need[3])
    if need[2] == modes.GS_PARTIALS:
        gs = kernels().sum_partials(gs, p)
    elif need[2] == modes.GS_ROW_SUMS:  # row sums of d/ds: the upstream gradient applied here
        gs = gs * g
    return gp, gx, gs, gq


class fastvae_likelihood(torch.autograd.Function):  # noqa: N801 - the name grad_fn shows
    """Eager route: (spec, p, x, s, s_value, grad_scale, store, q) -> ll (B,)."""

    @staticmethod
    def forward(ctx, spec, p, x, s, s_value, grad_scale, store, q):
        return forward(ctx, spec, p, x, s, s_value, grad_scale, store, q=q)[0]

    @staticmethod
    def backward(ctx, grad_ll):
        if grad_ll is None:
            return (None,) * 8
        once_differentiable("log_likelihood")
        # the upstream gradient in units of the grad_scale the stored gradients carry
        factor = grad_ll if ctx.grad_scale == 1.0 else grad_ll / ctx.grad_scale
        gp, gx, gs, gq, _ = backward(ctx, factor)
        return None, gp, gx, gs, None, None, None, gq


# ------------------------------------------------------------- the same under torch.compile

# the custom ops carry the likelihood as its kernel code (``likelihoods.by_code`` gives the record)
@torch.library.custom_op("fastvae::likelihood", mutates_args=())
def _op(kind: int, p: Tensor, x: Tensor, s: Optional[Tensor], s_value: float, q: Optional[Tensor]) -> Tensor:
    return forward(None, likelihoods.by_code(kind), p, x, s, s_value, 1.0, False, q=q)[0]


@_op.register_fake
def _(kind, p, x, s, s_value, q):
    return p.new_empty((p.shape[0],), dtype=sum_dtype(p.dtype))


@torch.library.custom_op("fastvae::likelihood_backward", mutates_args=())
def _op_backward(kind: int, p: Tensor, x: Tensor, s: Optional[Tensor], q: Optional[Tensor], s_value: float, g: Tensor,
                 need_p: bool, need_x: bool, mode: int, need_q: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    grads = _recompute(likelihoods.by_code(kind), p, x, s, q, s_value, g, (need_p, need_x, mode, need_q))
    # unused outputs: distinct empty tensors (outputs of a custom op may not alias each other)
    return tuple(p.new_empty((0,)) if t is None else t for t in grads)


def _grad_like(p, dtype=None):
    """``kernels.grad_like`` (dense in p's memory order) for the fake function."""
    from ..kernels import _launch

    return _launch.empty_in_order(p, _launch.memory_order(p, symbolic=True), dtype)


@_op_backward.register_fake
def _(kind, p, x, s, q, s_value, g, need_p, need_x, mode, need_q):
    acc = sum_dtype(p.dtype)
    gs = {modes.GS_NONE: lambda: p.new_empty((0,)), modes.GS_ELEMENTS: lambda: _grad_like(p, s.dtype),
          modes.GS_PARTIALS: lambda: p.new_empty(p.shape[1:], dtype=acc),
          modes.GS_ROW_SUMS: lambda: p.new_empty((p.shape[0],), dtype=acc)}[mode]()
    return (_grad_like(p) if need_p else p.new_empty((0,)), _grad_like(p, x.dtype) if need_x else p.new_empty((0,)),
            gs, _grad_like(p, q.dtype) if need_q else p.new_empty((0,)))


def _op_setup(ctx, inputs, output):
    kind, p, x, s, s_value, q = inputs
    ctx.spec, ctx.s_value, ctx.grad_scale, ctx.store = likelihoods.by_code(kind), s_value, 1.0, False
    ctx.need, ctx.p_shape, ctx.x_rows = needs(ctx.spec, p, x, s, q), p.shape, x.shape[0]
    ctx.save_for_backward(None, None, None, None, p, x, s, q)


def _op_grads(ctx, grad_ll):
    if grad_ll is None:
        return None, None, None, None, None, None

    def recompute(spec, p, x, s, q, s_value, g, need):
        return _op_backward(spec.code, p, x, s, q, s_value, g, *need)

    gp, gx, gs, gq, _ = backward(ctx, grad_ll, recompute)
    return None, gp, gx, gs, None, gq


_op.register_autograd(_op_grads, setup_context=_op_setup)


def log_likelihood(spec, p, x, s=None, s_value=0.0, grad_scale=1.0, store=True, q=None):
    """The fused op of likelihood ``spec`` (a ``fastvae.likelihoods`` record; inputs already
    validated): eager or compiled route. ``grad_scale``: the
    upstream gradient the caller expects for ll, folded into the stored gradients; ``store``
    False (the upstream gradient is not known ahead, as in the importance-weighted bound): the
    gradients are recomputed in backward, as under ``torch.compile``."""
    if _route.compiling() or not store:
        return _op(spec.code, p, x, s, s_value, q)
    store = torch.is_grad_enabled() and p.dtype != torch.float16 and any(
        t is not None and t.requires_grad for t in (p, x, s, q))
    return fastvae_likelihood.apply(spec, p, x, s, s_value, float(grad_scale), store, q)


# --------------------------------------------------------------------- public functions

def logscale_args(spec, logscale):
    """(tensor or None, number) for the kernels: a tensor logscale, or the fixed value."""
    if not spec.has_scale:
        return None, 0.0
    return (logscale, 0.0) if isinstance(logscale, torch.Tensor) else (None, float(logscale))


def operands(spec, args):
    """``(s, s_value, q, log_library)`` for the kernels from a likelihood's keyword arguments
    (``spec.bind``'s): the logscale (a tensor, or its value) or log theta, the zero-inflation
    logits, and the log library sizes of the softmax form (None where not given)."""
    if spec.has_scale:
        return (*logscale_args(spec, args["logscale"]), None, None)
    return args.get("log_theta"), 0.0, args.get("zero_inflation_logits"), args.get("log_library")


_RECORDS = {}
for _r in likelihoods.records():
    _RECORDS.setdefault(_r.function, _r)  # a function shared by records: the first one's


def _fused(function, p, x, logscale, validate_args):
    # the public function ``function`` of its registry record, on the kernels or the reference
    spec = _RECORDS[function.__name__]
    check_likelihood(spec, p, x, logscale)
    if validate_args:
        validate_values(spec, p, x)
    if not use_triton(p):
        extra = (logscale,) if spec.has_scale else ()
        return _route.guard(spec.function, spec.reference(p, x, *extra))
    return log_likelihood(spec, p, x, *logscale_args(spec, logscale))


def bernoulli_log_likelihood(logits: Tensor, x: Tensor, *, validate_args: bool = False) -> Tensor:
    """log p(x | logits) of independent Bernoullis, per row: ``sum(x * logits - softplus(logits))``.

    Computed stably (softplus as ``max(l, 0) + log1p(exp(-|l|))``, never a log of a sigmoid).

    Args:
        logits: (B, ...) float16, bfloat16, float32 or float64; any strides (a channels-last
            decoder output is read through its strides, never copied).
        x: targets of logits' shape: floats in [0, 1] (soft targets), bool, or uint8 holding
            0/1 (read as one byte per element).
        validate_args: check that x lies in [0, 1] (uint8: is 0 or 1), a ValueError otherwise,
            and warn once if every logit lies in [0, 1] (probabilities passed as logits). It
            costs reductions and host syncs, so it is off by default, and then other values give
            the formula's value.

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
    return _fused(bernoulli_log_likelihood, logits, x, None, validate_args)


def continuous_bernoulli_log_likelihood(logits: Tensor, x: Tensor, *, validate_args: bool = False) -> Tensor:
    """log p(x | logits) of independent continuous Bernoullis (Loaiza-Ganem & Cunningham, 2019),
    the normalised density on [0, 1]: per row, ``sum(x * l - softplus(l) + log C(l))`` with
    ``C(l) = l / tanh(l / 2)`` (2 at l = 0).

    Exact and finite for every finite logit: near 0 the normaliser and its derivative are Taylor
    series, for large |l| their closed forms (``torch.distributions.ContinuousBernoulli`` clamps
    its probabilities and is off by tenths of a nat at logit 20 in float32).

    Args:
        logits: (B, ...) float16, bfloat16, float32 or float64; any strides.
        x: targets of logits' shape in [0, 1]: any float dtype, bool, or uint8, read as k/255
            (8-bit images kept as bytes on the device: one byte per element read, no
            conversion pass).
        validate_args: check that float x lies in [0, 1], a ValueError otherwise, and warn once
            if every logit lies in [0, 1] (probabilities passed as logits); reductions and host
            syncs, off by default.

    Returns:
        (B,) float32 (float64 for float64 logits). Gradients flow to logits
        (``x - sigmoid(l) + 1/l - 1/sinh(l)``) and to a float x (``l``); as for
        ``bernoulli_log_likelihood``, the usual backward has no pass over (B, D) left to do.
    """
    return _fused(continuous_bernoulli_log_likelihood, logits, x, None, validate_args)


def gaussian_log_likelihood(mean: Tensor, x: Tensor, logscale=0.0, *, validate_args: bool = False) -> Tensor:
    """log N(x; mean, exp(logscale)^2) of independent Gaussians, per row: the sum of
    ``-0.5 * ((x - mean) * exp(-logscale))^2 - logscale - 0.5 * log(2 pi)``.

    Args:
        mean: (B, ...) float16, bfloat16, float32 or float64; any strides.
        x: targets of mean's shape: any float dtype, bool, or uint8 read as k/255.
        logscale: the log standard deviation: a number (fixed), a 0-d tensor (one shared,
            learned value), or a tensor broadcastable to mean's shape without changing it: per
            feature ``mean.shape[1:]`` shared by the rows, per channel ``(1, C, 1, 1)``, or per
            element ``mean.shape`` (a variance head). Its gradient is summed over the
            dimensions it was broadcast along and returned in its own shape and dtype.
        validate_args: check that x is finite, a ValueError otherwise (a reduction and a host
            sync; off by default).

    Returns:
        (B,) float32 (float64 for float64 mean). Gradients flow to mean, x (float) and a tensor
        logscale, all formed in the forward's pass; a logscale shared by the rows gets its
        gradient from per-program partial sums (no (B, D) temporary).
    """
    return _fused(gaussian_log_likelihood, mean, x, logscale, validate_args)
