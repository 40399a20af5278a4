r"""Fused log-likelihoods of a decoder's output, and their gradients, in one pass.

For parameters ``p`` and targets ``x`` of a (B, ...) batch, per row b (sum over the row):

* Bernoulli (``KIND = modes.BERNOULLI``), p = logits l, x in [0, 1]:  ``x*l - softplus(l)``;
  d/dl = ``x - sigmoid(l)``, d/dx = ``l``.
* continuous Bernoulli (``CONTINUOUS_BERNOULLI``), Loaiza-Ganem & Cunningham (2019), p = logits l, x in [0, 1]:
  ``x*l - softplus(l) + log C(l)``, ``C(l) = l / tanh(l/2)``; d/dl = ``x - sigmoid(l) + 1/l -
  1/sinh(l)``, d/dx = ``l``.
* Gaussian (``GAUSSIAN``), p = mean m, logscale s: ``-((x - m) e^-s)^2 / 2 - s - log(2 pi) / 2``;
  d/dm = ``(x - m) e^-2s``, d/dx = ``-(x - m) e^-2s``, d/ds = ``((x - m) e^-s)^2 - 1``.

Evaluated stably, with a = |l|, e = exp(-a), p = [l >= 0]:

* Bernoulli: ``(x - p) l - log1p(e)`` and ``(x - p) +- e / (1 + e)``: no overflow, no log of a
  sigmoid, full relative precision for well-fit pixels on both sides.
* continuous Bernoulli: softplus and log C share a term, leaving ``(x - p) l + h(a)`` with
  ``h(a) = log(a / (1 - e))`` and d/dl = ``(x - p) +- h'(a)``, ``h'(a) = 1/a - e / (1 - e)``;
  below a = 0.25 (0.01 in float64) both are Taylor series (``h = a/2 - a^2/24 + a^4/2880 -
  ...``), exact and finite for every finite logit (the closed forms cancel near 0).

uint8 targets are one byte per element, read as they are or times ``x_scale`` (``SCALE_X``: the
caller says what a byte means; ``k/255`` for the continuous likelihoods). One kernel does every
pass: the forward (ll, and with ``STORE_*`` the gradients, pre-multiplied by the upstream
gradient the caller expects, ``grad_scale``), and the backward that recomputes them
(``G_ROWS``: the per-row upstream gradient read from ``g``). A tensor logscale gets its
gradient per ``GS_MODE`` (``modes.GS_*``): per element, as per-program partial sums over the
rows (then ``rescale.sum_partials``), or as row sums of d/ds (one constant within each row, a
single shared value included; the caller applies the upstream gradient). Math in float32
(float64 for float64 parameters); each gradient stored once.
"""

import functools
import math

import torch
import triton
import triton.language as tl

from . import _launch, modes
from ._env import sum_dtype
from ._launch import (
    acc_dtype,
    chunk_elems,
    column_levels,
    column_offsets,
    column_order,
    empty_in_order,
    INTERPRETING,
    load,
    loop_meta,
    store,
    tile,
)
from ._math import log1p_01, LOG2E, log_pos, recip

HALF_LOG_2PI = tl.constexpr(0.9189385332046728)


@triton.jit
def _bernoulli(l, x, ACC: tl.constexpr):
    pos = l >= 0
    xp = tl.where(pos, x - 1.0, x)
    if ACC == tl.float64:
        e = tl.exp(-tl.abs(l))
        u = 1.0 + e
        term = xp * l - tl.where(u == 1.0, e, tl.log(u) * (e / tl.where(u == 1.0, 1.0, u - 1.0)))
        q = e / u
    else:
        e = tl.exp2(tl.abs(l) * -LOG2E)
        term = xp * l - log1p_01(e)
        q = e * recip(1.0 + e)
    return term, xp + tl.where(pos, q, -q)


@triton.jit
def _continuous_bernoulli(l, x, ACC: tl.constexpr):
    # (x - p) l + h(a) and (x - p) +- h'(a), a = |l|: Taylor series below SMALL (to a^6 and
    # a^5: 2e-12 and 5e-11 at a = 0.25), closed forms above (where they cancel by < 1e-6)
    a = tl.abs(l)
    SMALL: tl.constexpr = 0.01 if ACC == tl.float64 else 0.25
    small = a < SMALL
    a2 = a * a
    hs = ((-5.511463844797178e-06 * a2 + 3.472222222222222e-04) * a2 - 4.1666666666666664e-02) * a2 + 0.5 * a
    dh = ((-3.306878306878307e-05 * a2 + 1.388888888888889e-03) * a2 - 8.333333333333333e-02) * a + 0.5
    # the closed forms: a small a only reaches them in the branch tl.where drops
    if ACC == tl.float64:
        e = tl.exp(-a)
        hl = tl.log(a / (1.0 - e))
        dl = 1.0 / a - e / (1.0 - e)
    else:
        e = tl.exp2(a * -LOG2E)
        r = recip(1.0 - e)
        hl = log_pos(a * r)
        dl = recip(a) - e * r
    pos = l >= 0
    xp = tl.where(pos, x - 1.0, x)
    h = tl.where(small, hs, hl)
    d = tl.where(small, dh, dl)
    return xp * l + h, xp + tl.where(pos, d, -d)


@triton.jit
def _gaussian(m, x, s, ACC: tl.constexpr):
    if ACC == tl.float64:
        r = tl.exp(-s)
    else:
        r = tl.exp2(s * -LOG2E)  # e^-s
    w = (x - m) * r
    return -0.5 * (w * w) - s - HALF_LOG_2PI, w * r, w * w - 1.0


@triton.jit
def _terms(p, x, s, KIND: tl.constexpr, ACC: tl.constexpr):
    # per element: (log-density, d/dp, d/dx, d/ds)
    if KIND == modes.GAUSSIAN:
        term, dp, ds = _gaussian(p, x, s, ACC)
        return term, dp, -dp, ds
    elif KIND == modes.CONTINUOUS_BERNOULLI:
        term, dp = _continuous_bernoulli(p, x, ACC)
        return term, dp, p, dp
    else:
        term, dp = _bernoulli(p, x, ACC)
        return term, dp, p, dp


@triton.jit
def _store_grads(gp_ptr, gx_ptr, gs_ptr, out, part_out, factor, dp, dx, ds, mask, col_ok, STORE_GP: tl.constexpr,
                 STORE_GX: tl.constexpr, GS_MODE: tl.constexpr, EVEN: tl.constexpr):
    # the gradients of one chunk, times factor, each into its own buffer; a logscale's per
    # element, or (shared by the rows) this program's sum over its rows, per column
    if STORE_GP:
        store(gp_ptr + out, (factor * dp).to(gp_ptr.dtype.element_ty), mask, EVEN)
    if STORE_GX:
        store(gx_ptr + out, (factor * dx).to(gx_ptr.dtype.element_ty), mask, EVEN)
    if GS_MODE == modes.GS_ELEMENTS:
        store(gs_ptr + out, (factor * ds).to(gs_ptr.dtype.element_ty), mask, EVEN)
    if GS_MODE == modes.GS_PARTIALS:
        tl.store(gs_ptr + part_out, tl.sum(tl.where(mask, factor * ds, 0.0), axis=0), mask=col_ok)


@triton.jit
def _elbo_rows(kl_ptr, rows_ptr, rows, row_ok, ll, beta, B, ACC: tl.constexpr, REDUCE: tl.constexpr,
               EVEN: tl.constexpr):
    # rows[b] = beta * kl[b] - ll[b]; or (one program holds every row) their sum or mean
    r = beta * load(kl_ptr + rows, row_ok, EVEN).to(ACC) - ll
    if REDUCE == modes.REDUCE_NONE:
        store(rows_ptr + rows, r.to(rows_ptr.dtype.element_ty), row_ok, EVEN)
    else:
        total = tl.sum(tl.where(row_ok, r, 0.0), axis=0)
        if REDUCE == modes.REDUCE_MEAN:
            total = total / B
        tl.store(rows_ptr, total.to(rows_ptr.dtype.element_ty))


# ll[b] = sum_d term; gradients (times grad_scale, and g[b] with G_ROWS) stored as asked; with
# HAS_KL also the negative ELBO's rows (``_elbo_rows``). SKIP_IF_ONE: a program whose
# rows all have g == 1 returns at once (what it would write is there already). ROW_MOD: row r of
# p takes row r % x_rows of x (K samples of one batch of targets). The scalars arrive as float64
# (exact for float64 kernels) and are used in ACC (the interpreter hands them over as Python
# floats, which NumPy already treats so).
@triton.jit
def _likelihood_kernel(
    # pointers: inputs (p the parameters, x the targets, s a tensor logscale, g the per-row upstream
    # gradient, kl the ELBO's KL), then outputs; each used only where its mode asks for it
    p_ptr,
    x_ptr,
    s_ptr,
    g_ptr,
    ll_ptr,
    gp_ptr,
    gx_ptr,
    gs_ptr,
    kl_ptr,
    rows_ptr,
    # sizes and strides: B; per tensor its row stride and three column levels (``column_levels``);
    # g's stride; the rows of x and s (fewer than B with ROW_MOD)
    B,
    stride_pb,
    p_s1,
    p_s2,
    p_s3,
    stride_xb,
    x_s1,
    x_s2,
    x_s3,
    stride_sb,
    s_s1,
    s_s2,
    s_s3,
    stride_g,
    x_rows,
    s_rows,
    # scalars: a fixed logscale, the folded upstream gradient, the KL weight, a uint8 target's unit
    s_value: tl.float64,
    grad_scale: tl.float64,
    beta: tl.float64,
    x_scale: tl.float64,
    # shapes and tiling: the row length, the column levels' sizes, the tile (``_plan``)
    D: tl.constexpr,
    P_N2: tl.constexpr,
    P_N3: tl.constexpr,
    X_N2: tl.constexpr,
    X_N3: tl.constexpr,
    S_N2: tl.constexpr,
    S_N3: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_D: tl.constexpr,
    EVEN: tl.constexpr,
    UNROLL: tl.constexpr,
    # math: the likelihood (``modes.BERNOULLI`` ...) and the compute dtype
    KIND: tl.constexpr,
    ACC: tl.constexpr,
    # modes: the logscale (a tensor; one value read once), uint8 targets scaled, what to read,
    # write and store (``modes.GS_*``, ``modes.REDUCE_*``)
    S_TENSOR: tl.constexpr,
    S_ONE: tl.constexpr,
    SCALE_X: tl.constexpr,
    G_ROWS: tl.constexpr,
    WRITE_LL: tl.constexpr,
    STORE_GP: tl.constexpr,
    STORE_GX: tl.constexpr,
    GS_MODE: tl.constexpr,
    HAS_KL: tl.constexpr,
    SKIP_IF_ONE: tl.constexpr,
    ROW_MOD: tl.constexpr,
    REDUCE: tl.constexpr,
):
    if not INTERPRETING:
        s_value, grad_scale, beta, x_scale = s_value.to(ACC), grad_scale.to(ACC), beta.to(ACC), x_scale.to(ACC)
    pid = tl.program_id(0).to(tl.int64)
    rows = pid * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    if G_ROWS:
        g = tl.load(g_ptr + rows * stride_g, mask=row_ok, other=1.0).to(ACC)
        if SKIP_IF_ONE:
            if tl.sum((g != 1.0).to(tl.int32), axis=0) == 0:
                return
        factor = (g * grad_scale)[:, None]
    else:
        factor = grad_scale
    x_r, s_r = rows, rows
    if ROW_MOD:  # x (and a logscale) of one sample's rows, read for each of the samples p holds
        x_r, s_r = rows % x_rows, rows % s_rows
    p_row, x_row, s_row = p_ptr + rows * stride_pb, x_ptr + x_r * stride_xb, s_ptr + s_r * stride_sb
    s_one = s_value + tl.zeros([], ACC)  # a typed scalar (in the interpreter a float64 one stays so)
    if S_ONE:  # one logscale for every element (a 0-d tensor, expanded): read once
        s_one = tl.load(s_ptr).to(ACC)
    o_row = rows * D
    acc = tl.zeros([BLOCK_B, BLOCK_D], ACC)
    acc_s = tl.zeros([BLOCK_B, BLOCK_D], ACC)
    for c0 in tl.range(0, D, BLOCK_D, loop_unroll_factor=UNROLL):
        cols = c0 + tl.arange(0, BLOCK_D)
        mask = row_ok[:, None] & (cols < D)[None, :]
        p = load(p_row[:, None] + column_offsets(cols, p_s1, p_s2, p_s3, P_N2, P_N3)[None, :], mask, EVEN).to(ACC)
        x = load(x_row[:, None] + column_offsets(cols, x_s1, x_s2, x_s3, X_N2, X_N3)[None, :], mask, EVEN).to(ACC)
        if SCALE_X:
            x = x * x_scale  # uint8 targets in the caller's unit (8-bit images as k / 255)
        s = s_one
        if S_TENSOR and not S_ONE:
            s = load(s_row[:, None] + column_offsets(cols, s_s1, s_s2, s_s3, S_N2, S_N3)[None, :], mask, EVEN).to(ACC)
        term, dp, dx, ds = _terms(p, x, s, KIND, ACC)
        _store_grads(gp_ptr, gx_ptr, gs_ptr, o_row[:, None] + cols[None, :], pid * D + cols, factor, dp, dx, ds,
                     mask, cols < D, STORE_GP, STORE_GX, GS_MODE, EVEN)
        if GS_MODE == modes.GS_ROW_SUMS:  # unscaled: the caller applies the upstream gradient to the sums
            acc_s += tl.where(mask, ds, 0.0)
        if D % BLOCK_D == 0:
            acc += term  # rows past B are summed but never stored
        else:
            acc += tl.where(mask, term, 0.0)
    ll = tl.sum(acc, axis=1)
    if WRITE_LL:
        store(ll_ptr + rows, ll.to(ll_ptr.dtype.element_ty), row_ok, EVEN)
    if HAS_KL:
        _elbo_rows(kl_ptr, rows_ptr, rows, row_ok, ll, beta, B, ACC, REDUCE, EVEN)
    if GS_MODE == modes.GS_ROW_SUMS:
        store(gs_ptr + rows, tl.sum(acc_s, axis=1).to(gs_ptr.dtype.element_ty), row_ok, EVEN)


@functools.lru_cache(maxsize=1024)
def _plan(kind, shape, p_strides, x_strides, s_strides, dtype, block_rows, block_cols, flags):
    """What a launch over (B, ...) parameters, targets (and a logscale) needs that depends only
    on shapes, strides, dtype and the compile-time ``flags`` ((name, value) pairs of the
    kernel's modes), once per such key: ``(programs, strides, bound, order, reduces)``
    (``bound`` for ``_launch.launch``; ``reduces``: the kernel reduces the rows itself), or None
    when a tensor's strides need more than three levels (the caller copies it)."""
    B, D = shape[0], math.prod(shape[1:])
    order = column_order(shape, p_strides)
    pl, xl = column_levels(shape, p_strides, order), column_levels(shape, x_strides, order)
    sl = column_levels(shape, s_strides, order) if s_strides is not None else ((0, 0, 0), (1, 1))
    if pl is None or xl is None or sl is None:
        return None
    rows, cols, warps = tile(B, D, block_rows, block_cols, chunk_elems(dtype))
    meta = dict(KIND=kind, D=D, P_N2=pl[1][0], P_N3=pl[1][1], X_N2=xl[1][0], X_N3=xl[1][1], S_N2=sl[1][0],
                S_N3=sl[1][1], ACC=acc_dtype(dtype), BLOCK_B=rows, BLOCK_D=cols, num_warps=warps,
                S_TENSOR=s_strides is not None, S_ONE=s_strides is not None and not any(s_strides),
                # float64's exact log and division need the registers unrolling would take (spills)
                **loop_meta(B, D, rows, cols, 1 if dtype == torch.float64 else 8), **dict(flags))
    if B > rows:  # the rows are reduced in the kernel only where one program holds them all
        meta["REDUCE"] = modes.REDUCE_NONE
    strides = (p_strides[0], *pl[0], x_strides[0], *xl[0], 0 if s_strides is None else s_strides[0], *sl[0])
    return -(-B // rows), strides, _launch.bind(_likelihood_kernel, meta), order, meta["REDUCE"] != modes.REDUCE_NONE


def _planned(kind, p, x, s, block_rows, block_cols, flags):
    plan = _plan(kind, tuple(p.shape), p.stride(), x.stride(), None if s is None else s.stride(), p.dtype,
                 block_rows, block_cols, flags)
    if plan is None:  # beyond three levels of strides (5-D and more): laid out densely first
        order = column_order(tuple(p.shape), p.stride())
        p, x = (t.permute(0, *order).contiguous().permute(0, *_launch.inverse(order)) for t in (p, x))
        s = None if s is None else s.permute(0, *order).contiguous().permute(0, *_launch.inverse(order))
        plan = _plan(kind, tuple(p.shape), p.stride(), x.stride(), None if s is None else s.stride(), p.dtype,
                     block_rows, block_cols, flags)
    return p, x, s, plan


def grad_like(p, dtype=None):
    """A new tensor of ``p``'s shape, dense in the order the kernels walk ``p`` (its own memory
    order: a channels-last ``p`` gets a channels-last gradient)."""
    return empty_in_order(p, column_order(tuple(p.shape), p.stride()), dtype)


def likelihood_pass(kind, p, x, s=None, s_value=0.0, grad_scale=1.0, g=None, *, x_scale=None, write_ll=True,
                    store_gp=False, store_gx=False, gs_mode=modes.GS_NONE, gs=None, skip_if_one=False, kl=None,
                    beta=1.0, reduce=modes.REDUCE_NONE, block_rows=None, block_cols=None):
    """Launch one pass of likelihood ``kind`` (``modes.BERNOULLI``, ...) over (B, ...)
    parameters ``p`` and targets ``x`` (any strides; read through them) and, for the Gaussian,
    a logscale: a tensor ``s`` of p's shape (expanded: stride 0 where it is broadcast) or the
    number ``s_value``. uint8 targets are read as they are, or times ``x_scale`` when given.

    Returns ``(ll, gp, gx, gs, rows)``: ll (B,) float32 (float64 for float64 p); the gradients
    asked for (``grad_like`` tensors, times ``grad_scale`` and, with ``g``, the per-row upstream
    gradient g (B,) or 0-d), gs per ``gs_mode`` (``GS_ELEMENTS``: like p, in s's dtype;
    ``GS_PARTIALS``: (programs, D) partial sums over rows in ll's dtype, see
    ``rescale.sum_partials``; ``GS_ROW_SUMS``: (B,) row sums), written into ``gs`` when given;
    rows = ``beta * kl - ll`` when ``kl`` (B,) of ll's dtype is given, and with ``reduce``
    (``REDUCE_SUM``, ``REDUCE_MEAN``) their 0-d reduction instead where one program holds
    every row (a small batch: no separate reduction), else still the (B,) rows. Unasked outputs
    are None. ``skip_if_one`` (with ``g``): programs whose rows all have g == 1 write nothing
    (their outputs from an earlier pass with ``grad_scale`` stand). ``x`` (and ``s``) may have
    fewer rows than p, a divisor of them: row r of p then reads row r % rows of each (the K
    samples of importance-weighted training, the targets never repeated in memory); stored
    gradients of x and per-element ones of s then have p's rows.
    """
    B = p.shape[0]
    D = p.numel() // B if B else 0
    ll = torch.empty(B, device=p.device, dtype=sum_dtype(p.dtype))
    if not (B and D):
        rows = None if kl is None else torch.empty_like(ll)
        gp = grad_like(p) if store_gp else None
        gx = grad_like(p, x.dtype) if store_gx else None
        if gs is None and gs_mode != modes.GS_NONE:
            gs = grad_like(p, s.dtype) if gs_mode == modes.GS_ELEMENTS else torch.empty(
                (0, D) if gs_mode == modes.GS_PARTIALS else B, dtype=ll.dtype, device=p.device)
        for t in (ll, gs):
            if t is not None:
                t.zero_()
        if rows is not None:
            torch.mul(kl, beta, out=rows)
        return ll, gp, gx, gs, rows
    x_rows, s_rows = x.shape[0], B if s is None else s.shape[0]
    flags = (("SCALE_X", x_scale is not None and x.dtype == torch.uint8), ("G_ROWS", g is not None),
             ("WRITE_LL", write_ll), ("STORE_GP", store_gp), ("STORE_GX", store_gx), ("GS_MODE", gs_mode),
             ("HAS_KL", kl is not None), ("SKIP_IF_ONE", skip_if_one),
             ("ROW_MOD", x_rows != B or s_rows not in (B, 1)),
             ("REDUCE", reduce if kl is not None else modes.REDUCE_NONE))
    p, x, s, (programs, strides, bound, order, reduces) = _planned(kind, p, x, s, block_rows, block_cols, flags)
    rows = None if kl is None else torch.empty(() if reduces else B, device=p.device, dtype=ll.dtype)
    gp = empty_in_order(p, order) if store_gp else None
    gx = empty_in_order(p, order, x.dtype) if store_gx else None
    if gs is None and gs_mode != modes.GS_NONE:
        gs = empty_in_order(p, order, s.dtype) if gs_mode == modes.GS_ELEMENTS else torch.empty(
            (programs, D) if gs_mode == modes.GS_PARTIALS else B, device=p.device, dtype=ll.dtype)
    _launch.launch(_likelihood_kernel, programs, (
        p, x, ll if s is None else s, ll if g is None else g, ll, ll if gp is None else gp, ll if gx is None else gx,
        ll if gs is None else gs, ll if kl is None else kl, ll if rows is None else rows, B, *strides,
        0 if g is None or g.dim() == 0 else g.stride(0), x_rows, s_rows, float(s_value), float(grad_scale),
        float(beta), 1.0 if x_scale is None else float(x_scale)), bound)
    return ll, gp, gx, gs, rows
