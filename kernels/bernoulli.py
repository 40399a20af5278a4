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

import torch
import triton
import triton.language as tl

from .._rows import sum_dtype
from ._launch import acc_dtype, launch, load, loop_meta, store, tile

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
def _terms(l, x, ACC: tl.constexpr, WANT_LL: tl.constexpr, WANT_D: tl.constexpr):
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
    l_ptr, x_ptr, ll_ptr, grad_ptr, B,
    stride_lb, stride_ld, stride_xb, stride_xd, grad_scale,
    D: tl.constexpr, ACC: tl.constexpr, STORE_GRAD: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
    EVEN: tl.constexpr, UNROLL: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    l_row, x_row, g_row = l_ptr + rows * stride_lb, x_ptr + rows * stride_xb, grad_ptr + rows * D
    acc = tl.zeros([BLOCK_B, BLOCK_D], ACC)
    for c0 in tl.range(0, D, BLOCK_D, loop_unroll_factor=UNROLL):
        cols = c0 + tl.arange(0, BLOCK_D)
        mask = row_ok[:, None] & (cols < D)[None, :]
        l = load(l_row[:, None] + cols[None, :] * stride_ld, mask, EVEN).to(ACC)
        x = load(x_row[:, None] + cols[None, :] * stride_xd, mask, EVEN).to(ACC)
        term, dterm = _terms(l, x, ACC, True, STORE_GRAD)
        if STORE_GRAD:
            store(g_row[:, None] + cols[None, :], (grad_scale * dterm).to(grad_ptr.dtype.element_ty), mask, EVEN)
        if D % BLOCK_D == 0:
            acc += term  # rows past B are summed but never stored
        else:
            acc += tl.where(mask, term, 0.0)
    store(ll_ptr + rows, tl.sum(acc, axis=1).to(ll_ptr.dtype.element_ty), row_ok, EVEN)


@triton.jit
def _bernoulli_ll_bwd_kernel(
    l_ptr, x_ptr, g_ptr, grad_ptr, B,
    stride_lb, stride_ld, stride_xb, stride_xd, stride_g,
    D: tl.constexpr, ACC: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
    EVEN: tl.constexpr, UNROLL: tl.constexpr,
):
    # grad[b, d] = g[b] * (x - sigmoid(l)), from l and x read again
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    g = load(g_ptr + rows * stride_g, row_ok, EVEN).to(ACC)
    l_row, x_row, o_row = l_ptr + rows * stride_lb, x_ptr + rows * stride_xb, grad_ptr + rows * D
    for c0 in tl.range(0, D, BLOCK_D, loop_unroll_factor=UNROLL):
        cols = c0 + tl.arange(0, BLOCK_D)
        mask = row_ok[:, None] & (cols < D)[None, :]
        l = load(l_row[:, None] + cols[None, :] * stride_ld, mask, EVEN).to(ACC)
        x = load(x_row[:, None] + cols[None, :] * stride_xd, mask, EVEN).to(ACC)
        _, dterm = _terms(l, x, ACC, False, True)
        store(o_row[:, None] + cols[None, :], (g[:, None] * dterm).to(grad_ptr.dtype.element_ty), mask, EVEN)


@triton.jit
def _scale_rows_kernel(
    grad_ptr, g_ptr, B, stride_g, grad_scale,
    D: tl.constexpr, ACC: tl.constexpr, CHECK_ROWS: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
):
    # grad[b, :] *= g[b] / s for the CHECK_ROWS rows of this program, skipped when g[b] == s for
    # all of them (the usual case: the forward already applied the expected upstream gradient).
    # One program checks many rows, so the usual case costs B / CHECK_ROWS programs that read g.
    first = tl.program_id(0).to(tl.int64) * CHECK_ROWS
    chk = first + tl.arange(0, CHECK_ROWS)
    g_all = tl.load(g_ptr + chk * stride_g, mask=chk < B, other=grad_scale)
    # NaN != s, so a NaN upstream gradient is applied, never skipped.
    if tl.sum((g_all != grad_scale).to(tl.int32), axis=0) > 0:
        for r0 in range(0, CHECK_ROWS, BLOCK_B):
            rows = first + r0 + tl.arange(0, BLOCK_B)
            row_ok = rows < B
            factor = tl.load(g_ptr + rows * stride_g, mask=row_ok, other=grad_scale).to(ACC) / grad_scale
            for c0 in range(0, D, BLOCK_D):
                cols = c0 + tl.arange(0, BLOCK_D)
                mask = row_ok[:, None] & (cols < D)[None, :]
                ptrs = grad_ptr + rows[:, None] * D + cols[None, :]
                v = tl.load(ptrs, mask=mask, other=0.0).to(ACC) * factor[:, None]
                tl.store(ptrs, v.to(grad_ptr.dtype.element_ty), mask=mask)


def _max_unroll(t):
    # float64's exact log1p and division need the registers that unrolling would take (spills)
    return 1 if t.dtype == torch.float64 else 8


def _chunk(t):
    # elements of one chunk: 16 bytes per thread at 8 warps (fp32: 1024, bf16/fp16: 2048)
    return max(1024, 4096 // t.element_size())


def bernoulli_ll_fwd(logits, x, grad_scale=1.0, store_grad=False, block_rows=None, block_cols=None):
    """Launch the forward on 2-D (B, D) views (any strides).

    logits: float16/bfloat16/float32/float64; x: any float dtype, bool or uint8, same shape.
    Returns ``(ll, grad)``: ll (B,) float32 (float64 for float64 logits); grad a new
    contiguous (B, D) tensor of logits' dtype holding ``grad_scale * (x - sigmoid(l))``,
    or an empty tensor when ``store_grad`` is False.
    """
    B, D = logits.shape
    ll = torch.empty(B, device=logits.device, dtype=sum_dtype(logits.dtype))
    grad = torch.empty((B, D) if store_grad else (0,), device=logits.device, dtype=logits.dtype)
    if B == 0:
        return ll, grad
    if D == 0:
        return ll.zero_(), grad
    rows, cols, warps = tile(B, D, block_rows, block_cols, _chunk(logits))
    launch(_bernoulli_ll_fwd_kernel, triton.cdiv(B, rows),
           logits, x, ll, grad, B, logits.stride(0), logits.stride(1), x.stride(0), x.stride(1),
           float(grad_scale), D=D, ACC=acc_dtype(logits.dtype), STORE_GRAD=bool(store_grad),
           BLOCK_B=rows, BLOCK_D=cols, **loop_meta(B, D, rows, cols, _max_unroll(logits)), num_warps=warps)
    return ll, grad


def bernoulli_ll_bwd(logits, x, g, block_rows=None, block_cols=None):
    """Recompute the gradient: a new contiguous (B, D) tensor of logits' dtype holding
    ``g[b] * (x - sigmoid(logits))``. logits, x: 2-D (B, D) views, any strides; g: (B,), any
    stride (stride 0 for an expanded scalar)."""
    B, D = logits.shape
    grad = torch.empty((B, D), device=logits.device, dtype=logits.dtype)
    if B == 0 or D == 0:
        return grad
    rows, cols, warps = tile(B, D, block_rows, block_cols, _chunk(logits))
    launch(_bernoulli_ll_bwd_kernel, triton.cdiv(B, rows),
           logits, x, g, grad, B, logits.stride(0), logits.stride(1), x.stride(0), x.stride(1), g.stride(0),
           D=D, ACC=acc_dtype(logits.dtype), BLOCK_B=rows, BLOCK_D=cols,
           **loop_meta(B, D, rows, cols, _max_unroll(logits)), num_warps=warps)
    return grad


def bernoulli_ll_scale_grad_(grad, g, grad_scale=1.0, block_rows=None, block_cols=None):
    """In place: ``grad[b] *= g[b] / grad_scale``; programs whose rows all have g == grad_scale return early.

    grad: contiguous (B, D), the buffer written by ``bernoulli_ll_fwd``; g: (B,) upstream
    gradient, any stride (an expanded scalar has stride 0). No host synchronisation.
    """
    B, D = grad.shape
    if B == 0 or D == 0:
        return grad
    rows, cols, warps = tile(B, D, block_rows, block_cols, _chunk(grad))
    check = max(rows, min(256, triton.next_power_of_2(B)))
    launch(_scale_rows_kernel, triton.cdiv(B, check), grad, g, B, g.stride(0), float(grad_scale),
           D=D, ACC=acc_dtype(g.dtype), CHECK_ROWS=check, BLOCK_B=rows, BLOCK_D=cols, num_warps=warps)
    return grad
