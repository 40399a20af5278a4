r"""Fused Bernoulli log-likelihood with its gradient.

For logits ``l`` and targets ``x`` in [0, 1], per row ``b`` of a (B, D) view:

    ll[b]   = sum_d  x*l - softplus(l)
    d ll / d l  = x - sigmoid(l)
    d ll / d x  = l

evaluated, with e = exp(-|l|) and q = e / (1 + e) = sigmoid(-|l|), as

    x*l - softplus(l) = ((x - 1) * l if l >= 0 else x * l) - log1p(e)
    x - sigmoid(l)    = (x - 1) + q  if l >= 0 else  x - q

which never overflows, takes no log of a sigmoid, and keeps full relative precision for
well-fit pixels on both sides (x = 1 with l >> 0 as well as x = 0 with l << 0), where
``x*l - (l + log1p(e))`` and ``1 - sigmoid(l)`` would cancel to 0.

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

All arithmetic is float32 (float64 for float64 logits); each gradient is stored once.
"""

import torch
import triton
import triton.language as tl

from .._rows import sum_dtype
from ._launch import acc_dtype, tile


@triton.jit
def _log1p_small(e):
    # log(1 + e) for e in [0, 1], accurate when 1 + e rounds to 1 (no tl.log1p in the
    # interpreter): log(u) * e / (u - 1) with u = 1 + e cancels the rounding of u.
    u = 1.0 + e
    den = tl.where(u == 1.0, 1.0, u - 1.0)
    return tl.where(u == 1.0, e, tl.log(u) * (e / den))


@triton.jit
def _bernoulli_terms(l, x):
    # per element: (x*l - softplus(l), x - sigmoid(l)) in the mirrored forms of the docstring
    e = tl.exp(-tl.abs(l))
    q = e / (1.0 + e)
    pos = l >= 0
    return tl.where(pos, (x - 1.0) * l, x * l) - _log1p_small(e), tl.where(pos, (x - 1.0) + q, x - q)


@triton.jit
def _bernoulli_ll_fwd_kernel(
    l_ptr, x_ptr, ll_ptr, grad_ptr,
    B, D,
    stride_lb, stride_ld, stride_xb, stride_xd,
    grad_scale,
    ACC: tl.constexpr, STORE_GRAD: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    acc = tl.zeros([BLOCK_B, BLOCK_D], dtype=ACC)
    for d0 in range(0, D, BLOCK_D):
        cols = d0 + tl.arange(0, BLOCK_D).to(tl.int64)
        mask = row_ok[:, None] & (cols < D)[None, :]
        l = tl.load(l_ptr + rows[:, None] * stride_lb + cols[None, :] * stride_ld, mask=mask, other=0.0).to(ACC)
        x = tl.load(x_ptr + rows[:, None] * stride_xb + cols[None, :] * stride_xd, mask=mask, other=0).to(ACC)
        term, dterm = _bernoulli_terms(l, x)
        acc += tl.where(mask, term, 0.0)
        if STORE_GRAD:
            g = grad_scale * dterm
            tl.store(grad_ptr + rows[:, None] * D + cols[None, :], g.to(grad_ptr.dtype.element_ty), mask=mask)
    tl.store(ll_ptr + rows, tl.sum(acc, axis=1).to(ll_ptr.dtype.element_ty), mask=row_ok)


@triton.jit
def _bernoulli_ll_bwd_kernel(
    l_ptr, x_ptr, g_ptr, grad_ptr,
    B, D,
    stride_lb, stride_ld, stride_xb, stride_xd, stride_g,
    ACC: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
):
    # grad[b, d] = g[b] * (x - sigmoid(l)), from l and x read again
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    g = tl.load(g_ptr + rows * stride_g, mask=row_ok, other=0.0).to(ACC)
    for d0 in range(0, D, BLOCK_D):
        cols = d0 + tl.arange(0, BLOCK_D).to(tl.int64)
        mask = row_ok[:, None] & (cols < D)[None, :]
        l = tl.load(l_ptr + rows[:, None] * stride_lb + cols[None, :] * stride_ld, mask=mask, other=0.0).to(ACC)
        x = tl.load(x_ptr + rows[:, None] * stride_xb + cols[None, :] * stride_xd, mask=mask, other=0).to(ACC)
        _, dterm = _bernoulli_terms(l, x)
        grad = g[:, None] * dterm
        tl.store(grad_ptr + rows[:, None] * D + cols[None, :], grad.to(grad_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _scale_rows_kernel(
    grad_ptr, g_ptr, B, D, stride_g, grad_scale,
    ACC: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
):
    # grad[b, :] *= g[b] / s, skipped when g[b] == s for every row of this program
    # (the usual case: the forward already applied the expected upstream gradient).
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    g = tl.load(g_ptr + rows * stride_g, mask=row_ok, other=grad_scale).to(ACC)
    # NaN != s, so a NaN upstream gradient is applied, never skipped.
    n_same = tl.sum((g == grad_scale).to(tl.int32), axis=0)
    if n_same != BLOCK_B:
        factor = g / grad_scale
        for d0 in range(0, D, BLOCK_D):
            cols = d0 + tl.arange(0, BLOCK_D).to(tl.int64)
            mask = row_ok[:, None] & (cols < D)[None, :]
            ptrs = grad_ptr + rows[:, None] * D + cols[None, :]
            v = tl.load(ptrs, mask=mask, other=0.0).to(ACC) * factor[:, None]
            tl.store(ptrs, v.to(grad_ptr.dtype.element_ty), mask=mask)


def bernoulli_ll_fwd(logits, x, grad_scale=1.0, store_grad=False, block_rows=None, block_cols=None):
    """Launch the forward on 2-D (B, D) views (any strides).

    logits: float16/bfloat16/float32/float64; x: any float dtype, bool or uint8, same shape.
    Returns ``(ll, grad)``: ll (B,) float32 (float64 for float64 logits); grad a new
    contiguous (B, D) tensor of logits' dtype holding ``grad_scale * (x - sigmoid(l))``,
    or an empty tensor when ``store_grad`` is False.
    """
    B, D = logits.shape
    ll = torch.empty(B, device=logits.device, dtype=sum_dtype(logits.dtype))
    if store_grad:
        grad = torch.empty((B, D), device=logits.device, dtype=logits.dtype)
    else:
        grad = torch.empty(0, device=logits.device, dtype=logits.dtype)
    if B == 0:
        return ll, grad
    if D == 0:
        ll.zero_()
        return ll, grad
    BB, BD, warps = tile(B, D, block_rows, block_cols)
    _bernoulli_ll_fwd_kernel[(triton.cdiv(B, BB),)](
        logits, x, ll, grad, B, D,
        logits.stride(0), logits.stride(1), x.stride(0), x.stride(1),
        float(grad_scale),
        ACC=acc_dtype(logits.dtype), STORE_GRAD=bool(store_grad),
        BLOCK_B=BB, BLOCK_D=BD, num_warps=warps,
    )
    return ll, grad


def bernoulli_ll_bwd(logits, x, g, block_rows=None, block_cols=None):
    """Recompute the gradient: a new contiguous (B, D) tensor of logits' dtype holding
    ``g[b] * (x - sigmoid(logits))``. logits, x: 2-D (B, D) views, any strides; g: (B,), any
    stride (stride 0 for an expanded scalar)."""
    B, D = logits.shape
    grad = torch.empty((B, D), device=logits.device, dtype=logits.dtype)
    if B == 0 or D == 0:
        return grad
    BB, BD, warps = tile(B, D, block_rows, block_cols)
    _bernoulli_ll_bwd_kernel[(triton.cdiv(B, BB),)](
        logits, x, g, grad, B, D,
        logits.stride(0), logits.stride(1), x.stride(0), x.stride(1), g.stride(0),
        ACC=acc_dtype(logits.dtype), BLOCK_B=BB, BLOCK_D=BD, num_warps=warps,
    )
    return grad


def bernoulli_ll_scale_grad_(grad, g, grad_scale=1.0, block_rows=None, block_cols=None):
    """In place: ``grad[b] *= g[b] / grad_scale``; programs whose rows all have g == grad_scale return early.

    grad: contiguous (B, D), the buffer written by ``bernoulli_ll_fwd``; g: (B,) upstream
    gradient, any stride (an expanded scalar has stride 0). No host synchronisation.
    """
    B, D = grad.shape
    if B == 0 or D == 0:
        return grad
    BB, BD, warps = tile(B, D, block_rows, block_cols)
    _scale_rows_kernel[(triton.cdiv(B, BB),)](
        grad, g, B, D, g.stride(0), float(grad_scale),
        ACC=acc_dtype(g.dtype), BLOCK_B=BB, BLOCK_D=BD, num_warps=warps,
    )
    return grad
