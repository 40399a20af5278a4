r"""The count likelihoods of scVI's decoder, fused with its softmax: for logits l (B, G), log
library sizes (B,), counts x, per row b

    log mu_g  = lib_b + l_g - logsumexp_g(l)                 (mean = library * softmax(logits))
    ll_b      = sum_g log NB(x_g; mu_g, theta_g)             (Poisson without theta; ``_counts.py``)
    a_g       = d log NB / d log mu_g
    d/d l_j   = a_j - softmax_j * sum_g a_g,   d/d lib_b = sum_g a_g

and the gradients of log theta and of zero-inflation logits as the elementwise kernel forms them.
The mean and the softmax are never in memory: a program takes ``ROWS`` consecutive rows,
``BLOCK_R`` at a time (one on a GPU), in three sweeps over them in chunks of ``BLOCK_G`` genes
(the logsumexp; the terms, their row sums and the stored gradients of theta and of the dropout
logits; the logits' gradient, which needs the row sum of a), so on a GPU a row is read from DRAM
once and from L2 after. A log
theta shared by the rows gets its gradient as one partial sum per program, in a (programs, G)
buffer the program adds each of its rows into (programs are ``ROWS`` times fewer than rows; then
``rescale.sum_partials``): no (B, G) temporary besides the gradients themselves. Gradients are
pre-multiplied by ``grad_scale`` (and the per-row upstream g with ``G_ROWS``) as in
``likelihood.py``; ``SKIP_IF_ONE`` programs whose rows all have g == 1 return at once.
"""

import functools

import torch
import triton
import triton.language as tl

from . import _launch, modes
from ._counts import count_terms
from ._env import INTERPRET, sum_dtype
from ._gamma import log1p_acc
from ._launch import acc_dtype, INTERPRETING


@triton.jit
def _a_only(mu, x, lt, q, NB: tl.constexpr, HAS_Q: tl.constexpr, F64: tl.constexpr):
    # d log p / d log mu alone, cheaply (the third sweep): (x - mu) theta / (theta + mu), times
    # the zero inflation's weight sigmoid(L0 - q) at x = 0, L0 = -theta log(1 + mu / theta)
    if NB:
        theta = tl.exp(tl.minimum(lt, 80.0))
        a = (x - mu) * (theta / (theta + mu))
        l0 = -theta * log1p_acc(mu / theta, F64)
    else:
        a = x - mu
        l0 = -mu
    if HAS_Q:
        a = tl.where(x == 0, a / (1.0 + tl.exp(q - l0)), a)
    return a


@triton.jit
def _load(ptr, rows, stride_row, cols, stride_col, mask, ACC: tl.constexpr):
    # a [rows, cols] tile
    return tl.load(ptr + rows[:, None] * stride_row + cols[None, :] * stride_col, mask=mask, other=0).to(ACC)


@triton.jit
def _rows_lse(l_ptr, rows, row_ok, stride_lb, stride_lg, G: tl.constexpr, BLOCK_R: tl.constexpr,
              BLOCK_G: tl.constexpr, ACC: tl.constexpr):
    # logsumexp of each row's logits, online over the chunks
    m = tl.full([BLOCK_R, BLOCK_G], float("-inf"), ACC)
    total = tl.zeros([BLOCK_R, BLOCK_G], ACC)
    for c0 in range(0, G, BLOCK_G):
        cols = c0 + tl.arange(0, BLOCK_G)
        ok = row_ok[:, None] & (cols < G)[None, :]
        l = tl.where(ok, _load(l_ptr, rows, stride_lb, cols, stride_lg, ok, ACC), float("-inf"))
        m_new = tl.maximum(m, l)
        total = total * tl.exp(tl.where(m == m_new, 0.0, m - m_new)) + tl.where(ok, tl.exp(l - m_new), 0.0)
        m = m_new
    top = tl.max(m, axis=1)
    top = tl.where(top == float("-inf"), 0.0, top)  # rows past B
    return top + tl.log(tl.sum(total * tl.exp(m - top[:, None]), axis=1))


@triton.jit
def _operands(l_ptr, x_ptr, s_ptr, q_ptr, rows, xr, sr, cols, ok, s_value, stride_lb, stride_lg, stride_xb, stride_xg,
              stride_sb, stride_sg, stride_qb, stride_qg, G: tl.constexpr, BLOCK_R: tl.constexpr,
              BLOCK_G: tl.constexpr, ACC: tl.constexpr, S_TENSOR: tl.constexpr, S_COLUMN: tl.constexpr,
              HAS_Q: tl.constexpr):
    # one chunk's logits, counts, log theta (a per-gene one once per column) and dropout logits
    l = _load(l_ptr, rows, stride_lb, cols, stride_lg, ok, ACC)
    x = _load(x_ptr, xr, stride_xb, cols, stride_xg, ok, ACC)
    lt = s_value + tl.zeros([BLOCK_R, BLOCK_G], ACC)
    if S_COLUMN:
        lt = tl.load(s_ptr + cols * stride_sg, mask=cols < G, other=0).to(ACC)
    elif S_TENSOR:
        lt = _load(s_ptr, sr, stride_sb, cols, stride_sg, ok, ACC)
    q = lt
    if HAS_Q:
        q = _load(q_ptr, rows, stride_qb, cols, stride_qg, ok, ACC)
    return l, x, lt, q


@triton.jit
def _tile_terms(l_ptr, x_ptr, s_ptr, q_ptr, gs_ptr, gq_ptr, rows, xr, sr, row_ok, pid, first, lse, lib, factor,
                stride_lb, stride_lg, stride_xb, stride_xg, stride_sb, stride_sg, stride_qb, stride_qg, s_value,
                G: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_G: tl.constexpr, ACC: tl.constexpr, NB: tl.constexpr,
                HAS_Q: tl.constexpr, S_TENSOR: tl.constexpr, S_COLUMN: tl.constexpr, GS_MODE: tl.constexpr,
                STORE_GQ: tl.constexpr):
    # the second sweep: per row (ll, the sum of a, the sum of d/d log theta); stores the dropout
    # logits' gradient and log theta's (per element, or added into this program's partial sums)
    ll = tl.zeros([BLOCK_R, BLOCK_G], ACC)
    sa = tl.zeros([BLOCK_R, BLOCK_G], ACC)
    st = tl.zeros([BLOCK_R, BLOCK_G], ACC)
    for c0 in range(0, G, BLOCK_G):
        cols = c0 + tl.arange(0, BLOCK_G)
        ok = row_ok[:, None] & (cols < G)[None, :]
        l, x, lt, q = _operands(l_ptr, x_ptr, s_ptr, q_ptr, rows, xr, sr, cols, ok, s_value, stride_lb, stride_lg,
                                stride_xb, stride_xg, stride_sb, stride_sg, stride_qb, stride_qg, G, BLOCK_R, BLOCK_G,
                                ACC, S_TENSOR, S_COLUMN, HAS_Q)
        log_mu = lib[:, None] + l - lse[:, None]
        term, a, d_lt, dq, _ = count_terms(tl.exp(log_mu), log_mu, x, lt, q, NB, HAS_Q, ACC == tl.float64)
        ll += tl.where(ok, term, 0.0)
        sa += tl.where(ok, a, 0.0)
        st += tl.where(ok, d_lt, 0.0)
        out = rows[:, None] * G + cols[None, :]
        if STORE_GQ:
            tl.store(gq_ptr + out, (factor[:, None] * dq).to(gq_ptr.dtype.element_ty), mask=ok)
        if GS_MODE == modes.GS_ELEMENTS:
            tl.store(gs_ptr + out, (factor[:, None] * d_lt).to(gs_ptr.dtype.element_ty), mask=ok)
        if GS_MODE == modes.GS_PARTIALS:  # this program's sum over its rows, one tile at a time
            part = tl.sum(tl.where(ok, factor[:, None] * d_lt, 0.0), axis=0)
            if not first:
                part += tl.load(gs_ptr + pid * G + cols, mask=cols < G, other=0.0)
            tl.store(gs_ptr + pid * G + cols, part.to(gs_ptr.dtype.element_ty), mask=cols < G)
    return tl.sum(ll, axis=1), tl.sum(sa, axis=1), tl.sum(st, axis=1)


@triton.jit
def _tile_grad_logits(l_ptr, x_ptr, s_ptr, q_ptr, gl_ptr, rows, xr, sr, row_ok, lse, lib, total_a, factor, stride_lb,
                      stride_lg, stride_xb, stride_xg, stride_sb, stride_sg, stride_qb, stride_qg, s_value,
                      G: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_G: tl.constexpr, ACC: tl.constexpr,
                      NB: tl.constexpr, HAS_Q: tl.constexpr, S_TENSOR: tl.constexpr, S_COLUMN: tl.constexpr):
    # the third sweep: d/d l_j = a_j - softmax_j * sum_g a_g
    for c0 in range(0, G, BLOCK_G):
        cols = c0 + tl.arange(0, BLOCK_G)
        ok = row_ok[:, None] & (cols < G)[None, :]
        l, x, lt, q = _operands(l_ptr, x_ptr, s_ptr, q_ptr, rows, xr, sr, cols, ok, s_value, stride_lb, stride_lg,
                                stride_xb, stride_xg, stride_sb, stride_sg, stride_qb, stride_qg, G, BLOCK_R, BLOCK_G,
                                ACC, S_TENSOR, S_COLUMN, HAS_Q)
        soft = tl.exp(l - lse[:, None])
        a = _a_only(tl.exp(lib)[:, None] * soft, x, lt, q, NB, HAS_Q, ACC == tl.float64)
        grad = factor[:, None] * (a - soft * total_a[:, None])
        tl.store(gl_ptr + rows[:, None] * G + cols[None, :], grad.to(gl_ptr.dtype.element_ty), mask=ok)


@triton.jit
def _softmax_counts_kernel(
    # pointers: inputs (logits, counts, log library, log theta, dropout logits, the per-row upstream
    # gradient), then outputs (ll, the gradients of logits, library, log theta, dropout logits)
    l_ptr,
    x_ptr,
    lib_ptr,
    s_ptr,
    q_ptr,
    g_ptr,
    ll_ptr,
    gl_ptr,
    glib_ptr,
    gs_ptr,
    gq_ptr,
    # sizes and strides: B rows; x and the library have x_rows (a divisor of B) with ROW_MOD, a per
    # element log theta s_rows
    B,
    x_rows,
    s_rows,
    stride_lb,
    stride_lg,
    stride_xb,
    stride_xg,
    stride_lib,
    stride_sb,
    stride_sg,
    stride_qb,
    stride_qg,
    stride_g,
    # scalars: a fixed log theta (S_TENSOR off), the folded upstream gradient
    s_value: tl.float64,
    grad_scale: tl.float64,
    # shapes and tiling: genes per row, rows per program, rows and genes per tile
    G: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_G: tl.constexpr,
    # math: the compute dtype, negative binomial (else Poisson), zero inflation
    ACC: tl.constexpr,
    NB: tl.constexpr,
    HAS_Q: tl.constexpr,
    # modes: log theta a tensor (one per gene, shared by the rows), what to read, write and store
    # (``modes.GS_*``)
    S_TENSOR: tl.constexpr,
    S_COLUMN: tl.constexpr,
    G_ROWS: tl.constexpr,
    SKIP_IF_ONE: tl.constexpr,
    ROW_MOD: tl.constexpr,
    WRITE_LL: tl.constexpr,
    STORE_GL: tl.constexpr,
    STORE_GLIB: tl.constexpr,
    GS_MODE: tl.constexpr,
    STORE_GQ: tl.constexpr,
):
    if not INTERPRETING:
        s_value, grad_scale = s_value.to(ACC), grad_scale.to(ACC)
    pid = tl.program_id(0).to(tl.int64)
    if G_ROWS and SKIP_IF_ONE:
        mine = pid * ROWS + tl.arange(0, ROWS)
        if tl.sum((tl.load(g_ptr + mine * stride_g, mask=mine < B, other=1.0) != 1.0).to(tl.int32), axis=0) == 0:
            return
    for t in range(ROWS // BLOCK_R):
        rows = pid * ROWS + t * BLOCK_R + tl.arange(0, BLOCK_R)
        row_ok = rows < B
        factor = grad_scale + tl.zeros([BLOCK_R], ACC)
        if G_ROWS:
            factor = tl.load(g_ptr + rows * stride_g, mask=row_ok, other=0.0).to(ACC) * grad_scale
        xr, sr = rows, rows
        if ROW_MOD:
            xr, sr = rows % x_rows, rows % s_rows
        lib = tl.load(lib_ptr + xr * stride_lib, mask=row_ok, other=0.0).to(ACC)
        lse = _rows_lse(l_ptr, rows, row_ok, stride_lb, stride_lg, G, BLOCK_R, BLOCK_G, ACC)
        ll, total_a, total_t = _tile_terms(
            l_ptr, x_ptr, s_ptr, q_ptr, gs_ptr, gq_ptr, rows, xr, sr, row_ok, pid, t == 0, lse, lib, factor, stride_lb,
            stride_lg, stride_xb, stride_xg, stride_sb, stride_sg, stride_qb, stride_qg, s_value, G, BLOCK_R, BLOCK_G,
            ACC, NB, HAS_Q, S_TENSOR, S_COLUMN, GS_MODE, STORE_GQ)
        if WRITE_LL:
            tl.store(ll_ptr + rows, ll.to(ll_ptr.dtype.element_ty), mask=row_ok)
        if STORE_GLIB:
            tl.store(glib_ptr + rows, (factor * total_a).to(glib_ptr.dtype.element_ty), mask=row_ok)
        if GS_MODE == modes.GS_ROW_SUMS:  # unscaled: the caller applies the upstream gradient to the sums
            tl.store(gs_ptr + rows, total_t.to(gs_ptr.dtype.element_ty), mask=row_ok)
        if STORE_GL:
            _tile_grad_logits(l_ptr, x_ptr, s_ptr, q_ptr, gl_ptr, rows, xr, sr, row_ok, lse, lib, total_a, factor,
                              stride_lb, stride_lg, stride_xb, stride_xg, stride_sb, stride_sg, stride_qb, stride_qg,
                              s_value, G, BLOCK_R, BLOCK_G, ACC, NB, HAS_Q, S_TENSOR, S_COLUMN)


def _pow2_at_least(n):
    return 1 << max(n - 1, 0).bit_length()


@functools.lru_cache(maxsize=1024)
def _plan(B, G, dtype, flags, tile=None):
    """``(programs, rows, bound)`` of a launch over B rows of G genes, once per key: the chunk
    (up to 1024 genes: 4 per thread at 8 warps), rows per program (between 128 and 256 programs
    on a GPU: each program's rows stream through L2 one at a time, and a per-gene log theta's
    partial sums, one (G,) row per program, stay a few percent of the bytes; in the interpreter,
    whose cost is per program, one program), and the compile-time ``flags`` ((name, value) pairs).
    ``tile`` ``(rows per program, rows per tile, genes per chunk)`` overrides (tests)."""
    if tile is not None:
        rows, block_r, block_g = tile
    elif INTERPRET:  # one program, all rows in one tile
        rows = block_r = _pow2_at_least(B)
        block_g = max(1, min(_pow2_at_least(G), 16384 // rows))
    else:
        # 4 rows to a tile of 1024 elements: a per-gene log theta's terms serve 4 rows
        # (512 with dropout logits: at 1024, triton 3.6's ptxas spills the ZINB sweep's registers)
        block_r, elems = min(4, _pow2_at_least(B)), 512 if dict(flags)["HAS_Q"] else 1024
        rows, block_g = max(block_r, _pow2_at_least(-(-B // 256))), min(_pow2_at_least(G), elems // block_r)
    meta = dict(G=G, ROWS=rows, BLOCK_R=block_r, BLOCK_G=block_g, ACC=acc_dtype(dtype),
                num_warps=max(1, min(8, block_r * block_g // 128)), **dict(flags))
    return -(-B // rows), rows, _launch.bind(_softmax_counts_kernel, meta)


def softmax_counts(logits, x, log_library, s=None, s_value=0.0, q=None, grad_scale=1.0, g=None, *, nb=True,
                   write_ll=True, store_gl=False, store_glib=False, gs_mode=modes.GS_NONE, store_gq=False, gs=None,
                   skip_if_one=False, tile=None):
    """Launch the pass over (B, G) ``logits`` (any strides) and counts ``x`` (B or a divisor of
    B rows: row r reads row r % rows, as the library and a per-element log theta do);
    ``log_library`` (rows,) any stride; ``s``: log theta of logits' shape, expanded (stride 0
    where broadcast), or the number ``s_value``; ``q``: dropout logits like logits; ``nb``:
    negative binomial (else Poisson, s unused).

    Returns ``(ll, gl, glib, gs, gq)``: ll (B,) float32 (float64 for float64 logits); the
    gradients asked for, times ``grad_scale`` and the per-row upstream ``g``: gl (B, G) and gq
    like logits (dense), glib (B,) in ll's dtype, gs per ``gs_mode`` (``GS_ELEMENTS``: (B, G) in
    s's dtype; ``GS_PARTIALS``: (programs, G) partial sums in ll's dtype, see
    ``rescale.sum_partials``; ``GS_ROW_SUMS``: (B,) unscaled row sums), written into ``gs`` when
    given. ``skip_if_one`` (with ``g``): programs whose rows all have g == 1 write nothing.
    ``tile``: (rows per program, rows per tile, genes per chunk), powers of two (tests).
    """
    B, G = logits.shape
    ll = torch.empty(B, device=logits.device, dtype=sum_dtype(logits.dtype))
    x_rows, s_rows = x.shape[0], B if s is None else s.shape[0]
    flags = (("NB", bool(nb)), ("HAS_Q", q is not None), ("S_TENSOR", s is not None),
             ("S_COLUMN", s is not None and s.stride(0) == 0 and s.stride(1) != 0), ("G_ROWS", g is not None),
             ("SKIP_IF_ONE", skip_if_one), ("ROW_MOD", x_rows != B or s_rows not in (B, 1)), ("WRITE_LL", write_ll),
             ("STORE_GL", store_gl), ("STORE_GLIB", store_glib), ("GS_MODE", gs_mode), ("STORE_GQ", store_gq))
    programs, rows, bound = _plan(B, G, logits.dtype, flags, tile)
    gl = torch.empty((B, G), device=logits.device, dtype=logits.dtype) if store_gl else None
    gq = torch.empty((B, G), device=logits.device, dtype=q.dtype) if store_gq else None
    glib = torch.empty(B, device=logits.device, dtype=ll.dtype) if store_glib else None
    if gs is None and gs_mode != modes.GS_NONE:
        gs = torch.empty((B, G), device=logits.device, dtype=s.dtype) if gs_mode == modes.GS_ELEMENTS else torch.empty(
            (programs, G) if gs_mode == modes.GS_PARTIALS else B, device=logits.device, dtype=ll.dtype)
    if B == 0 or G == 0:
        for t in (ll, glib, gs, gl, gq):
            if t is not None:
                t.zero_()
        return ll, gl, glib, gs, gq
    st = (0, 0) if s is None else s.stride()
    qt = (0, 0) if q is None else q.stride()
    _launch.launch(_softmax_counts_kernel, programs, (
        logits, x, log_library, ll if s is None else s, ll if q is None else q, ll if g is None else g, ll,
        ll if gl is None else gl, ll if glib is None else glib, ll if gs is None else gs, ll if gq is None else gq,
        B, x_rows, s_rows, *logits.stride(), *x.stride(), log_library.stride(0), *st, *qt,
        0 if g is None or g.dim() == 0 else g.stride(0), float(s_value), float(grad_scale)), bound)
    return ll, gl, glib, gs, gq
