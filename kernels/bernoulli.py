r"""Fused Bernoulli log-likelihood with its gradient.

For logits ``l`` and targets ``x`` in [0, 1], per row ``b`` of a (B, D) view:

    ll[b]   = sum_d  x*l - softplus(l)
    d ll / d l  = x - sigmoid(l)
    d ll / d x  = l

evaluated, with e = exp(-|l|) in (0, 1], p = [l >= 0] and s = 1 / (1 + e) = sigmoid(|l|), as

    x*l - softplus(l) = (x - p) * l - log1p(e)
    x - sigmoid(l)    = (x - p) + (e * s if l >= 0 else -e * s)

which never overflows, takes no log of a sigmoid, and keeps full relative precision for
well-fit pixels on both sides (x = 1 with l >> 0 as well as x = 0 with l << 0), where
``x*l - (l + log1p(e))`` and ``1 - sigmoid(l)`` would cancel to 0. In float32 the element costs
one exp2 and one rsqrt on the special-function unit (s = rsqrt(1 + e)^2, 4 ulp) and a degree-8
polynomial for log1p on [0, 1] (4 ulp relative, exact as e -> 0): no division, no log.
float64 logits use the exact library functions instead.

Two ways to get d ll / d l, chosen by the caller:

* stored (float32, bfloat16, float64 logits): the forward, in its one pass, also writes
  ``grad = s * (x - sigmoid(l))`` into its own buffer, where ``s`` is the upstream gradient the
  caller expects (1 for a plain ``ll.sum()``; -1/B for a mean negative ELBO).
  ``bernoulli_ll_scale_grad_`` then has each program read its rows' upstream gradient g and
  return at once if every g equals s (no pass over the buffer); otherwise it rescales those
  rows by g/s in place.
* recomputed (float16 logits): the forward writes only ll; ``bernoulli_ll_bwd`` reads l and x
  again and writes ``g * (x - sigmoid(l))`` once. Storing ``-1/B * (x - sigmoid(l))`` in float16
  would underflow (float16's smallest subnormal is 6e-8) before a loss scaler multiplied it back.

All arithmetic is float32 (float64 for float64 logits); each gradient is stored once. The row
length D is a compile-time constant, walked in chunks that divide it (D = 784: 49 chunks of 16
columns), so no lane is masked off (see ``_launch.py``). At B = 65536, D = 784 the sm_90 code
issues about 27 instructions per element with the gradient and 19 without
(``python benchmarks/sass_report.py``).
"""

import functools
import math

import torch
import triton
import triton.language as tl

from .._rows import sum_dtype
from . import _launch
from ._launch import (acc_dtype, column_levels, column_offsets, column_order, empty_in_order, load, loop_meta,
                      rows_in_order, store, tile)

LOG2E = tl.constexpr(1.4426950408889634)


@triton.jit
def _log1p_01(e):
    # log(1 + e) for e in [0, 1]: e * P(e), P a degree-8 fit of log1p(e)/e (max 3.6 ulp, float32)
    p = 0.005232695 * e - 0.029505242
    p = p * e + 0.078225955
    p = p * e - 0.13663246
    p = p * e + 0.19106007
    p = p * e - 0.24842982
    p = p * e + 0.33319098
    p = p * e - 0.49999493
    return e * (p * e + 1.0)


@triton.jit
def _terms(l, x, ACC: tl.constexpr):
    # per element: (x*l - softplus(l), x - sigmoid(l)) in the forms of the module docstring
    pos = l >= 0
    xp = tl.where(pos, x - 1.0, x)
    if ACC == tl.float64:
        e = tl.exp(-tl.abs(l))
        u = 1.0 + e
        term = xp * l - tl.where(u == 1.0, e, tl.log(u) * (e / tl.where(u == 1.0, 1.0, u - 1.0)))
        q = e / u
    else:
        e = tl.exp2(tl.abs(l) * -LOG2E)
        term = xp * l - _log1p_01(e)
        r = tl.rsqrt(1.0 + e)
        q = e * (r * r)
    return term, xp + tl.where(pos, q, -q)


@triton.jit
def _bernoulli_ll_fwd_kernel(
    l_ptr, x_ptr, ll_ptr, grad_ptr, kl_ptr, rows_ptr, B, stride_lb, l_s1, l_s2, l_s3, stride_xb, x_s1, x_s2, x_s3,
    grad_scale, beta,
    D: tl.constexpr, L_N2: tl.constexpr, L_N3: tl.constexpr, X_N2: tl.constexpr, X_N3: tl.constexpr,
    ACC: tl.constexpr, STORE_GRAD: tl.constexpr, HAS_KL: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
    EVEN: tl.constexpr, UNROLL: tl.constexpr,
):
    # ll[b] = sum_d x*l - softplus(l); with STORE_GRAD also grad[b, d] = grad_scale * (x - sigmoid(l));
    # with HAS_KL also the negative ELBO's rows[b] = beta * kl[b] - ll[b]
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    l_row, x_row, g_row = l_ptr + rows * stride_lb, x_ptr + rows * stride_xb, grad_ptr + rows * D
    acc = tl.zeros([BLOCK_B, BLOCK_D], ACC)
    for c0 in tl.range(0, D, BLOCK_D, loop_unroll_factor=UNROLL):
        cols = c0 + tl.arange(0, BLOCK_D)
        mask = row_ok[:, None] & (cols < D)[None, :]
        l = load(l_row[:, None] + column_offsets(cols, l_s1, l_s2, l_s3, L_N2, L_N3)[None, :], mask, EVEN).to(ACC)
        x = load(x_row[:, None] + column_offsets(cols, x_s1, x_s2, x_s3, X_N2, X_N3)[None, :], mask, EVEN).to(ACC)
        term, dterm = _terms(l, x, ACC)
        if STORE_GRAD:
            store(g_row[:, None] + cols[None, :], (grad_scale * dterm).to(grad_ptr.dtype.element_ty), mask, EVEN)
        if D % BLOCK_D == 0:
            acc += term  # rows past B are summed but never stored
        else:
            acc += tl.where(mask, term, 0.0)
    ll = tl.sum(acc, axis=1)
    store(ll_ptr + rows, ll.to(ll_ptr.dtype.element_ty), row_ok, EVEN)
    if HAS_KL:
        kl = load(kl_ptr + rows, row_ok, EVEN).to(ACC)
        store(rows_ptr + rows, (beta * kl - ll).to(rows_ptr.dtype.element_ty), row_ok, EVEN)


@triton.jit
def _bernoulli_ll_bwd_kernel(
    l_ptr, x_ptr, g_ptr, grad_ptr, B, stride_lb, l_s1, l_s2, l_s3, stride_xb, x_s1, x_s2, x_s3, stride_g,
    D: tl.constexpr, L_N2: tl.constexpr, L_N3: tl.constexpr, X_N2: tl.constexpr, X_N3: tl.constexpr,
    ACC: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr, EVEN: tl.constexpr, UNROLL: tl.constexpr,
):
    # grad[b, d] = g[b] * (x - sigmoid(l)), from l and x read again
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    g = load(g_ptr + rows * stride_g, row_ok, EVEN).to(ACC)
    l_row, x_row, o_row = l_ptr + rows * stride_lb, x_ptr + rows * stride_xb, grad_ptr + rows * D
    for c0 in tl.range(0, D, BLOCK_D, loop_unroll_factor=UNROLL):
        cols = c0 + tl.arange(0, BLOCK_D)
        mask = row_ok[:, None] & (cols < D)[None, :]
        l = load(l_row[:, None] + column_offsets(cols, l_s1, l_s2, l_s3, L_N2, L_N3)[None, :], mask, EVEN).to(ACC)
        x = load(x_row[:, None] + column_offsets(cols, x_s1, x_s2, x_s3, X_N2, X_N3)[None, :], mask, EVEN).to(ACC)
        _, dterm = _terms(l, x, ACC)
        store(o_row[:, None] + cols[None, :], (g[:, None] * dterm).to(grad_ptr.dtype.element_ty), mask, EVEN)


@triton.jit
def _scale_rows_kernel(
    grad_ptr, out_ptr, g_ptr, B, stride_g, grad_scale,
    D: tl.constexpr, ACC: tl.constexpr, IN_PLACE: tl.constexpr, CHECK_ROWS: tl.constexpr, BLOCK_B: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    # out[b, :] = grad[b, :] * g[b] / s for the CHECK_ROWS rows of this program. In place, the
    # program returns at once when g[b] == s for all of them (the usual case: the forward
    # already applied the expected upstream gradient), so that case costs B / CHECK_ROWS
    # programs reading g. NaN != s: a NaN upstream gradient is applied, never skipped.
    first = tl.program_id(0).to(tl.int64) * CHECK_ROWS
    chk = first + tl.arange(0, CHECK_ROWS)
    g_all = tl.load(g_ptr + chk * stride_g, mask=chk < B, other=grad_scale)
    n_differ = tl.sum((g_all != grad_scale).to(tl.int32), axis=0)
    if not IN_PLACE:
        n_differ += 1  # a new buffer: every row is written
    if n_differ > 0:
        for r0 in range(0, CHECK_ROWS, BLOCK_B):
            rows = first + r0 + tl.arange(0, BLOCK_B)
            row_ok = rows < B
            factor = tl.load(g_ptr + rows * stride_g, mask=row_ok, other=grad_scale).to(ACC) / grad_scale
            for c0 in range(0, D, BLOCK_D):
                cols = c0 + tl.arange(0, BLOCK_D)
                mask = row_ok[:, None] & (cols < D)[None, :]
                offs = rows[:, None] * D + cols[None, :]
                v = tl.load(grad_ptr + offs, mask=mask, other=0.0).to(ACC) * factor[:, None]
                tl.store(out_ptr + offs, v.to(out_ptr.dtype.element_ty), mask=mask)


def _chunk(dtype):
    # elements of one chunk: 16 bytes per thread at 8 warps (fp32: 1024, bf16/fp16: 2048)
    return max(1024, 4096 // _ITEMSIZE[dtype])


_ITEMSIZE = {torch.float16: 2, torch.bfloat16: 2, torch.float32: 4, torch.float64: 8}


@functools.lru_cache(maxsize=1024)
def _plan(shape, l_strides, x_strides, dtype, block_rows, block_cols):
    """Everything of a launch over (B, ...) logits and targets that depends only on shapes,
    strides and dtype, computed once per such key: ``(programs, scalar args, meta)``, or None
    when a tensor's strides need more than three levels (the caller copies it)."""
    B, D = shape[0], math.prod(shape[1:])
    order = column_order(shape, l_strides)
    ll, xl = column_levels(shape, l_strides, order), column_levels(shape, x_strides, order)
    if ll is None or xl is None:
        return None
    rows, cols, warps = tile(B, D, block_rows, block_cols, _chunk(dtype))
    meta = dict(D=D, L_N2=ll[1][0], L_N3=ll[1][1], X_N2=xl[1][0], X_N3=xl[1][1], ACC=acc_dtype(dtype),
                BLOCK_B=rows, BLOCK_D=cols, num_warps=warps,
                # float64's exact log1p and division need the registers unrolling would take (spills)
                **loop_meta(B, D, rows, cols, 1 if dtype == torch.float64 else 8))
    return -(-B // rows), (l_strides[0], *ll[0], x_strides[0], *xl[0]), meta


def _planned(logits, x, block_rows, block_cols):
    plan = _plan(tuple(logits.shape), logits.stride(), x.stride(), logits.dtype, block_rows, block_cols)
    if plan is None:  # beyond three levels of strides (5-D and more): laid out densely first
        order = column_order(tuple(logits.shape), logits.stride())
        logits, x = (rows_in_order(t, order)[0] for t in (logits, x))
        plan = _plan(tuple(logits.shape), logits.stride(), x.stride(), logits.dtype, block_rows, block_cols)
    return logits, x, plan


def bernoulli_grad_like(logits):
    """The gradient buffer the kernels write for ``logits``: its shape and dtype, dense in the
    order they walk it (logits' own memory order: a channels-last logits gets a channels-last
    gradient)."""
    return empty_in_order(logits, column_order(tuple(logits.shape), logits.stride()))


def bernoulli_ll_fwd(logits, x, grad_scale=1.0, store_grad=False, kl=None, beta=1.0,
                     block_rows=None, block_cols=None):
    """Launch the forward on (B, ...) tensors of one shape (any strides; read through them).

    logits: float16/bfloat16/float32/float64; x: any float dtype, bool or uint8.
    Returns ``(ll, grad)``: ll (B,) float32 (float64 for float64 logits); grad a new tensor like
    ``bernoulli_grad_like(logits)`` holding ``grad_scale * (x - sigmoid(l))``, or an empty tensor
    when ``store_grad`` is False. With ``kl`` ((B,), ll's dtype) returns ``(ll, grad, rows)``,
    rows = ``beta * kl - ll``: the negative ELBO per row, formed in the same pass.
    """
    B = logits.shape[0]
    ll = torch.empty(B, device=logits.device, dtype=sum_dtype(logits.dtype))
    grad = bernoulli_grad_like(logits) if store_grad else logits.new_empty((0,))
    rows = None if kl is None else torch.empty_like(ll)
    if B == 0 or logits.numel() == 0:
        ll.zero_()
        if kl is not None:
            torch.mul(kl, beta, out=rows)
        return (ll, grad) if kl is None else (ll, grad, rows)
    logits, x, (programs, strides, meta) = _planned(logits, x, block_rows, block_cols)
    _launch.launch(_bernoulli_ll_fwd_kernel, programs, logits, x, ll, grad, ll if kl is None else kl,
                   ll if kl is None else rows, B, *strides, grad_scale, beta, STORE_GRAD=store_grad,
                   HAS_KL=kl is not None, **meta)
    return (ll, grad) if kl is None else (ll, grad, rows)


def bernoulli_ll_bwd(logits, x, g, block_rows=None, block_cols=None):
    """Recompute the gradient: a new tensor like ``bernoulli_grad_like(logits)`` holding
    ``g[b] * (x - sigmoid(logits))``. logits, x: (B, ...), any strides; g: (B,), any stride
    (stride 0 for an expanded scalar), or 0-d (the same for every row)."""
    B = logits.shape[0]
    grad = bernoulli_grad_like(logits)
    if B == 0 or logits.numel() == 0:
        return grad
    logits, x, (programs, strides, meta) = _planned(logits, x, block_rows, block_cols)
    _launch.launch(_bernoulli_ll_bwd_kernel, programs, logits, x, g, grad, B, *strides, g.stride(0) if g.dim() else 0,
                   **meta)
    return grad


@functools.lru_cache(maxsize=1024)
def _scale_plan(B, D, dtype, block_rows, block_cols):
    rows, cols, warps = tile(B, D, block_rows, block_cols, _chunk(dtype))
    check = max(rows, min(256, 1 << (B - 1).bit_length()))
    return -(-B // check), dict(D=D, ACC=acc_dtype(dtype), CHECK_ROWS=check, BLOCK_B=rows, BLOCK_D=cols,
                                num_warps=warps)


def bernoulli_ll_scale_grad(grad, g, grad_scale=1.0, in_place=True, block_rows=None, block_cols=None):
    """``grad[b] * g[b] / grad_scale``: in place (programs whose rows all have g == grad_scale
    return at once, so the expected upstream gradient costs no pass), or into a new buffer
    (``in_place=False``: the stored buffer stays as it was, for another backward).

    grad: the buffer ``bernoulli_ll_fwd`` wrote (dense rows); g: (B,) upstream gradient, any
    stride (an expanded scalar has stride 0), or a 0-d tensor (the same for every row). No
    host synchronisation. Returns the result.
    """
    B = grad.shape[0]
    out = grad if in_place else torch.empty_like(grad)
    if B == 0 or grad.numel() == 0:
        return out
    programs, meta = _scale_plan(B, grad.numel() // B, g.dtype, block_rows, block_cols)
    _launch.launch(_scale_rows_kernel, programs, grad, out, g, B, g.stride(0) if g.dim() else 0,
                   float(grad_scale), IN_PLACE=in_place, **meta)
    return out
