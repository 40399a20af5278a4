r"""Fused log-likelihoods of a decoder's output, and their gradients, in one pass.

For parameters ``p`` and targets ``x`` of a (B, ...) batch, per row b: the sum over the row of
the log-density of each target (``_terms.py`` has the math per likelihood: Bernoulli,
continuous Bernoulli, Gaussian with a logscale ``s``, Poisson and negative binomial with log
theta ``s`` and, with ``HAS_Q``, zero-inflation logits ``q``), and its gradients.

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
from ._terms import terms


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
    # pointers: inputs (p the parameters, x the targets, s a tensor logscale or log theta, q
    # zero-inflation logits, g the per-row upstream gradient, kl the ELBO's KL), then outputs;
    # each used only where its mode asks for it
    p_ptr,
    x_ptr,
    s_ptr,
    q_ptr,
    g_ptr,
    ll_ptr,
    gp_ptr,
    gx_ptr,
    gs_ptr,
    gq_ptr,
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
    stride_qb,
    q_s1,
    q_s2,
    q_s3,
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
    Q_N2: tl.constexpr,
    Q_N3: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_D: tl.constexpr,
    EVEN: tl.constexpr,
    UNROLL: tl.constexpr,
    # math: the likelihood (``modes.BERNOULLI`` ...) and the compute dtype
    KIND: tl.constexpr,
    ACC: tl.constexpr,
    # modes: s (a tensor; one value read once; one per column, shared by the rows), q given, uint8
    # targets scaled, what to read,
    # write and store (``modes.GS_*``, ``modes.REDUCE_*``)
    S_TENSOR: tl.constexpr,
    S_ONE: tl.constexpr,
    S_COLUMN: tl.constexpr,
    HAS_Q: tl.constexpr,
    STORE_GQ: tl.constexpr,
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
    q_row = q_ptr + rows * stride_qb
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
        if S_COLUMN:  # one value per column, shared by the rows: loaded (and used) once per column
            s = load(s_ptr + column_offsets(cols, s_s1, s_s2, s_s3, S_N2, S_N3), cols < D, EVEN).to(ACC)
        elif S_TENSOR and not S_ONE:
            s = load(s_row[:, None] + column_offsets(cols, s_s1, s_s2, s_s3, S_N2, S_N3)[None, :], mask, EVEN).to(ACC)
        q = s
        if HAS_Q:
            q = load(q_row[:, None] + column_offsets(cols, q_s1, q_s2, q_s3, Q_N2, Q_N3)[None, :], mask, EVEN).to(ACC)
        term, dp, dx, ds, dq = terms(p, x, s, q, KIND, ACC, HAS_Q)
        out = o_row[:, None] + cols[None, :]
        _store_grads(gp_ptr, gx_ptr, gs_ptr, out, pid * D + cols, factor, dp, dx, ds, mask, cols < D, STORE_GP,
                     STORE_GX, GS_MODE, EVEN)
        if STORE_GQ:
            store(gq_ptr + out, (factor * dq).to(gq_ptr.dtype.element_ty), mask, EVEN)
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


_NO_LEVELS = ((0, 0, 0), (1, 1))  # an operand that is not there
_HEAVY = (modes.POISSON, modes.NEGATIVE_BINOMIAL)  # not unrolled
_COLUMN_WISE = (modes.NEGATIVE_BINOMIAL,)  # a per-column s is loaded and used once per column


@functools.lru_cache(maxsize=1024)
def _plan(kind, shape, strides, dtype, block_rows, block_cols, flags):
    """What a launch over (B, ...) parameters, targets (a logscale or log theta, and
    zero-inflation logits) needs that depends only on shapes, ``strides`` (of p, x, s, q; None
    for an operand not given), dtype and the compile-time ``flags`` ((name, value) pairs of the
    kernel's modes), once per such key: ``(programs, strides, bound, order, reduces)``
    (``bound`` for ``_launch.launch``; ``reduces``: the kernel reduces the rows itself), or None
    when a tensor's strides need more than three levels (the caller copies it)."""
    B, D = shape[0], math.prod(shape[1:])
    order = column_order(shape, strides[0])
    levels = [_NO_LEVELS if st is None else column_levels(shape, st, order) for st in strides]
    if any(lv is None for lv in levels):
        return None
    (pl, xl, sl, ql), s_strides = levels, strides[2]
    # the count likelihoods' hundreds of instructions per element: half a chunk (fewer live registers)
    rows, cols, warps = tile(B, D, block_rows, block_cols, chunk_elems(dtype) // (2 if kind in _HEAVY else 1))
    meta = dict(KIND=kind, D=D, P_N2=pl[1][0], P_N3=pl[1][1], X_N2=xl[1][0], X_N3=xl[1][1], S_N2=sl[1][0],
                S_N3=sl[1][1], Q_N2=ql[1][0], Q_N3=ql[1][1], ACC=acc_dtype(dtype), BLOCK_B=rows, BLOCK_D=cols,
                num_warps=warps, S_TENSOR=s_strides is not None, S_ONE=s_strides is not None and not any(s_strides),
                S_COLUMN=s_strides is not None and any(s_strides) and s_strides[0] == 0 and kind in _COLUMN_WISE,
                HAS_Q=strides[3] is not None,
                # float64's exact log and division, and the count likelihoods' hundreds of
                # instructions per element, need the registers unrolling would take (spills)
                **loop_meta(B, D, rows, cols, 1 if dtype == torch.float64 or kind in _HEAVY else 8), **dict(flags))
    if B > rows:  # the rows are reduced in the kernel only where one program holds them all
        meta["REDUCE"] = modes.REDUCE_NONE
    row_strides = tuple(v for st, lv in zip(strides, levels) for v in (0 if st is None else st[0], *lv[0]))
    reduces = meta["REDUCE"] != modes.REDUCE_NONE
    return -(-B // rows), row_strides, _launch.bind(_likelihood_kernel, meta), order, reduces


def _strides(*ts):
    return tuple(None if t is None else t.stride() for t in ts)


def _planned(kind, ops, block_rows, block_cols, flags):
    """``ops`` (p, x, s, q) and the plan; beyond three levels of strides (5-D and more) the
    operands are laid out densely first."""
    p = ops[0]
    plan = _plan(kind, tuple(p.shape), _strides(*ops), p.dtype, block_rows, block_cols, flags)
    if plan is None:
        order, inv = column_order(tuple(p.shape), p.stride()), _launch.inverse(column_order(tuple(p.shape), p.stride()))
        ops = tuple(None if t is None else t.permute(0, *order).contiguous().permute(0, *inv) for t in ops)
        plan = _plan(kind, tuple(p.shape), _strides(*ops), p.dtype, block_rows, block_cols, flags)
    return ops, plan


def grad_like(p, dtype=None):
    """A new tensor of ``p``'s shape, dense in the order the kernels walk ``p`` (its own memory
    order: a channels-last ``p`` gets a channels-last gradient)."""
    return empty_in_order(p, column_order(tuple(p.shape), p.stride()), dtype)


def _outputs(p, x, s, q, order, programs, want, gs, ll):
    """The gradient buffers ``want`` asks for (store_gp, store_gx, gs_mode, store_gq), dense in
    ``order``; gs as ``likelihood_pass`` says (kept where given)."""
    store_gp, store_gx, gs_mode, store_gq = want
    B, D = p.shape[0], (p.numel() // p.shape[0] if p.shape[0] else 0)
    gp = empty_in_order(p, order) if store_gp else None
    gx = empty_in_order(p, order, x.dtype) if store_gx else None
    gq = empty_in_order(p, order, q.dtype) if store_gq else None
    if gs is None and gs_mode != modes.GS_NONE:
        gs = empty_in_order(p, order, s.dtype) if gs_mode == modes.GS_ELEMENTS else torch.empty(
            (programs, D) if gs_mode == modes.GS_PARTIALS else B, device=p.device, dtype=ll.dtype)
    return gp, gx, gs, gq


def likelihood_pass(kind, p, x, s=None, s_value=0.0, grad_scale=1.0, g=None, *, q=None, x_scale=None, write_ll=True,
                    store_gp=False, store_gx=False, gs_mode=modes.GS_NONE, store_gq=False, gs=None, skip_if_one=False,
                    kl=None, beta=1.0, reduce=modes.REDUCE_NONE, block_rows=None, block_cols=None):
    """Launch one pass of likelihood ``kind`` (``modes.BERNOULLI``, ...) over (B, ...)
    parameters ``p`` and targets ``x`` (any strides; read through them); ``s``: a tensor of p's
    shape (expanded: stride 0 where broadcast), the Gaussian's logscale or the negative
    binomial's log theta, or the number ``s_value``; ``q``: zero-inflation logits of p's shape.
    uint8 targets are read as they are, or times ``x_scale`` when given.

    Returns ``(ll, gp, gx, gs, rows, gq)``: ll (B,) float32 (float64 for float64 p); the
    gradients asked for (``grad_like`` tensors, times ``grad_scale`` and, with ``g``, the per-row
    upstream gradient g (B,) or 0-d), gs per ``gs_mode`` (``GS_ELEMENTS``: like p, in s's
    dtype; ``GS_PARTIALS``: (programs, D) partial sums over rows in ll's dtype, see
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
    want = (store_gp, store_gx, gs_mode, store_gq)
    if not (B and D):
        gp, gx, gs, gq = _outputs(p, x, s, q, column_order(tuple(p.shape), p.stride()), 0, want, gs, ll)
        for t in (ll, gs):
            if t is not None:
                t.zero_()
        return ll, gp, gx, gs, None if kl is None else kl * beta, gq
    x_rows, s_rows = x.shape[0], B if s is None else s.shape[0]
    flags = (("SCALE_X", x_scale is not None and x.dtype == torch.uint8), ("G_ROWS", g is not None),
             ("WRITE_LL", write_ll), ("STORE_GP", store_gp), ("STORE_GX", store_gx), ("GS_MODE", gs_mode),
             ("STORE_GQ", store_gq), ("HAS_KL", kl is not None), ("SKIP_IF_ONE", skip_if_one),
             ("ROW_MOD", x_rows != B or s_rows not in (B, 1)),
             ("REDUCE", reduce if kl is not None else modes.REDUCE_NONE))
    (p, x, s, q), (programs, strides, bound, order, reduces) = _planned(kind, (p, x, s, q), block_rows, block_cols,
                                                                        flags)
    rows = None if kl is None else torch.empty(() if reduces else B, device=p.device, dtype=ll.dtype)
    gp, gx, gs, gq = _outputs(p, x, s, q, order, programs, want, gs, ll)
    _launch.launch(_likelihood_kernel, programs, (
        p, x, ll if s is None else s, ll if q is None else q, ll if g is None else g, ll, ll if gp is None else gp,
        ll if gx is None else gx, ll if gs is None else gs, ll if gq is None else gq, ll if kl is None else kl,
        ll if rows is None else rows, B, *strides, 0 if g is None or g.dim() == 0 else g.stride(0), x_rows, s_rows,
        float(s_value), float(grad_scale), float(beta), 1.0 if x_scale is None else float(x_scale)), bound)
    return ll, gp, gx, gs, rows, gq
