r"""The discretized logistic mixture of PixelCNN++ (VDVAE, NVAE): its log-likelihood with the
gradient for the parameters in one pass, and its sampler in one kernel.

Layout (PixelCNN++'s, VDVAE's and NVAE's): along the channel dim the parameters hold the M
mixture logits, then for each channel c in order its M means, its M log-scales and (C = 3) its M
coefficients: 10 M values for C = 3, 3 M for C = 1. x holds C channels in [-1, 1]; its
2**bits levels are the bins, half-width ``h = 1 / (2**bits - 1)``.

Per pixel, mixture m, channel c, with ``s = max(raw, -7)``, ``inv = e^-s``, the mean ``mu``
(green's shifted by ``tanh(a0) x_red``, blue's by ``tanh(a1) x_red + tanh(a2) x_green``),
``a = inv (x - mu + h)``, ``b = inv (x - mu - h)``, ``d = a - b = 2 h inv``, the bin probability
is ``sigmoid(a) - sigmoid(b)``, ``sigmoid(a)`` in the lowest bin (x < -0.999), ``1 - sigmoid(b)``
in the highest (x > 0.999). Exactly and stably, everywhere, from ``e_a = e^-|a|``, ``e_b =
e^-|b|`` and ``r = (1 - e^-d) / d``:

    sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - e^-d)
    log P = log(sigmoid(a) sigmoid(-b) r) + log d,   log sigmoid(a) = -max(-a, 0) - log(1 + e_a)
    d log P / d mu = inv (sigmoid(b) - sigmoid(-a))
    d log P / d s  = b sigmoid(b) - a sigmoid(-a) - d / (e^d - 1)          (0 where raw < -7)

(the lowest bin keeps the sigmoid(a) factor alone, the highest sigmoid(-b)): one logarithm of
a product in [0.1, 1] per component and channel, no overflow, and ``log d = log(2 h) - s``
exactly, so a flat component keeps its log-probability even where ``inv`` underflows. Below
d = 1 (0.1 in float64) ``r = e^(-d/2) sinh(d/2) / (d/2)``, an even series, and ``d / (e^d -
1) = e^-d / r``; above, ``r`` is ``1 - e^-d`` (not divided by d). float32 errors: a few ulps per
log-probability, absolute (the product is rounded before its log); the mean's gradient to
``inv`` ulps of 1/2 (``sigmoid(b) - sigmoid(-a)`` rounds near 1/2 each; the truth itself moves
by as much when the mean moves by one ulp). The mixture: ``lp_m = log_softmax(logits)_m +
sum_c log P_cm``, per pixel ``logsumexp_m lp_m``; its gradients with the responsibilities
``w = softmax(lp)``: logits ``w - softmax(logits)``, means and log-scales ``w`` times the above,
coefficients ``w d log P / d mu (1 - tanh^2) x``.

A program takes one image (row; or ``ROWS`` short ones whole) and ``TRIPS`` chunks of
``BLOCK_P`` pixels, the M mixtures padded to ``MP`` (a power of two) in registers: [BLOCK_P, MP]
tiles, read through any strides (pixels in the parameters' memory order;
``_launch.column_offsets``), so nothing of size (B, H, W, C, M) exists in memory. It writes its
pixels' sum (the row's, or a partial the launcher sums) and, with ``STORE``, the gradient times
``grad_scale`` (and the row's upstream gradient with ``G_ROWS``) into a buffer of the
parameters' shape and memory order.
"""

import functools
import math

import torch
import triton
import triton.language as tl

from . import _launch
from ._env import INTERPRET, mixture_channels, sum_dtype
from ._gamma import log_
from ._launch import acc_dtype, column_levels, column_offsets, column_order, INTERPRETING
from ._math import LOG2E

EDGE = 0.999  # x below -EDGE is the lowest bin, above EDGE the highest (PixelCNN++'s thresholds)


@triton.jit
def _exp(v, F64: tl.constexpr):
    # e^v: exact in float64; in float32 exp2 (MUFU.EX2 and one multiply; tl.exp adds range fixes)
    if F64:
        return tl.exp(v)
    else:
        return tl.exp2(v * LOG2E)


@triton.jit
def _recip(v, F64: tl.constexpr):
    # 1 / v for v >= 1 (float32: rsqrt squared, ~4 ulp; float64: exact)
    if F64:
        return 1.0 / v
    else:
        r = tl.rsqrt(v)
        return r * r


@triton.jit
def _tanh(v, F64: tl.constexpr):
    e = _exp(-2.0 * tl.abs(v), F64)
    t = (1.0 - e) * _recip(1.0 + e, F64)
    return tl.where(v < 0, -t, t)


@triton.jit
def _bin(mu, raw, xv, lo, hi, HALF: tl.constexpr, LOG_2H: tl.constexpr, F64: tl.constexpr):
    # (log P, d/d mu, d/d raw log-scale) of x's bin under each component (module docstring). The
    # edge bins are the same formula with b = -BIG (lowest), a = +BIG (highest) and d = BIG: their
    # factors sigmoid(-b), sigmoid(a) and 1 - e^-d are then exactly 1, their terms exactly 0
    BIG: tl.constexpr = 1e4
    ls = tl.maximum(raw, -7.0)
    inv = _exp(-ls, F64)
    cen = xv - mu
    a = tl.where(hi, BIG, inv * (cen + HALF))
    b = tl.where(lo, -BIG, inv * (cen - HALF))
    d = tl.where(lo | hi, BIG, inv * (2.0 * HALF))
    ea = _exp(-tl.abs(a), F64)
    eb = _exp(-tl.abs(b), F64)
    e2 = _exp(-0.5 * d, F64)
    # r = (1 - e^-d) / d = e^(-d/2) sinh(d/2) / (d/2) below SMALL (an even series), 1 - e^-d above
    SMALL: tl.constexpr = 0.1 if F64 else 1.0
    small = d < SMALL
    d2 = d * d
    sh = (((1.0766001253323353e-08 * d2 + 3.100198412698413e-06) * d2 + 5.208333333333333e-04) * d2
          + 4.1666666666666664e-02) * d2 + 1.0
    r = tl.where(small, e2 * sh, 1.0 - e2 * e2)
    if F64:
        ra, rb, rr = 1.0 / (1.0 + ea), 1.0 / (1.0 + eb), 1.0 / r
    else:  # rsqrt squared: 1 + e in [1, 2], r in [0.3, 1]
        ra, rb, rr = tl.rsqrt(1.0 + ea), tl.rsqrt(1.0 + eb), tl.rsqrt(r)
        ra, rb, rr = ra * ra, rb * rb, rr * rr
    sa = ra * tl.where(a >= 0, ea, 1.0)  # sigmoid(-a)
    sb = rb * tl.where(b >= 0, 1.0, eb)  # sigmoid(b)
    # log P = log(sigmoid(a) sigmoid(-b) r d) as one log: sigmoid(a) = e^-max(-a, 0) / (1 + ea), ...
    term = log_(ra * rb * r, F64) - tl.maximum(-a, 0.0) - tl.maximum(b, 0.0)
    term += tl.where(small, LOG_2H - ls, 0.0)  # log d, exact where e^-s underflows
    dg = e2 * e2 * rr * tl.where(small, 1.0, d)  # d / (e^d - 1)
    return term, inv * (sb - sa), tl.where(raw >= -7.0, b * sb - a * sa - dg, 0.0)


@triton.jit
def _x(x_row, xo, ok, c, sxc, HALF: tl.constexpr, LEVELS: tl.constexpr, ACC: tl.constexpr):
    # channel c of the chunk's pixels in [-1, 1] (uint8 or bool levels k: 2 k h - 1), and its edge bins
    v = tl.load(x_row + xo + c * sxc, mask=ok, other=0).to(ACC)
    if LEVELS:
        v = v * (2.0 * HALF) - 1.0
    return v[:, None], (v < -0.999)[:, None], (v > 0.999)[:, None]


@triton.jit
def _chunk(p_row, x_row, g_row, po, xo, go, ok, factor, spk, sxc, sgk, M: tl.constexpr, MP: tl.constexpr,
           C: tl.constexpr, HALF: tl.constexpr, LOG_2H: tl.constexpr, LEVELS: tl.constexpr, ACC: tl.constexpr,
           STORE: tl.constexpr):
    # one chunk of pixels: their log-likelihoods, and with STORE the gradients written
    F64: tl.constexpr = ACC == tl.float64
    G: tl.constexpr = 3 * M if C == 3 else 2 * M  # parameters per channel
    m = tl.arange(0, MP)
    mok = (m < M)[None, :]
    mask = ok[:, None] & mok
    pp = p_row + po[:, None] + m[None, :] * spk  # parameter k of mixture m at pp + k * spk
    logit = tl.where(mok, tl.load(pp, mask=mask, other=0).to(ACC), float("-inf"))
    top = tl.max(logit, axis=1)[:, None]
    el = _exp(logit - top, F64)
    sl = tl.sum(el, axis=1)
    lp = logit - top - log_(sl, F64)[:, None]
    x0, lo0, hi0 = _x(x_row, xo, ok, 0, sxc, HALF, LEVELS, ACC)
    mu0 = tl.load(pp + M * spk, mask=mask, other=0).to(ACC)
    term, dmu0, dls0 = _bin(mu0, tl.load(pp + 2 * M * spk, mask=mask, other=0).to(ACC), x0, lo0, hi0, HALF,
                            LOG_2H, F64)
    lp += term
    if C == 3:
        x1, lo1, hi1 = _x(x_row, xo, ok, 1, sxc, HALF, LEVELS, ACC)
        x2, lo2, hi2 = _x(x_row, xo, ok, 2, sxc, HALF, LEVELS, ACC)
        t0 = _tanh(tl.load(pp + 3 * M * spk, mask=mask, other=0).to(ACC), F64)
        t1 = _tanh(tl.load(pp + (3 * M + G) * spk, mask=mask, other=0).to(ACC), F64)
        t2 = _tanh(tl.load(pp + (3 * M + 2 * G) * spk, mask=mask, other=0).to(ACC), F64)
        mu1 = tl.load(pp + (M + G) * spk, mask=mask, other=0).to(ACC) + t0 * x0
        mu2 = tl.load(pp + (M + 2 * G) * spk, mask=mask, other=0).to(ACC) + t1 * x0 + t2 * x1
        term, dmu1, dls1 = _bin(mu1, tl.load(pp + (2 * M + G) * spk, mask=mask, other=0).to(ACC), x1, lo1, hi1,
                                HALF, LOG_2H, F64)
        lp += term
        term, dmu2, dls2 = _bin(mu2, tl.load(pp + (2 * M + 2 * G) * spk, mask=mask, other=0).to(ACC), x2, lo2,
                                hi2, HALF, LOG_2H, F64)
        lp += term
    lp = tl.where(mok, lp, float("-inf"))
    lmax = tl.max(lp, axis=1)
    e = _exp(lp - lmax[:, None], F64)
    s = tl.sum(e, axis=1)
    if STORE:
        w = e * (_recip(s, F64) * factor)[:, None]  # the responsibilities, times the upstream gradient
        gp = g_row + go[:, None] + m[None, :] * sgk
        ty = g_row.dtype.element_ty
        tl.store(gp, (w - el * (_recip(sl, F64) * factor)[:, None]).to(ty), mask=mask)
        tl.store(gp + M * sgk, (w * dmu0).to(ty), mask=mask)
        tl.store(gp + 2 * M * sgk, (w * dls0).to(ty), mask=mask)
        if C == 3:
            tl.store(gp + (M + G) * sgk, (w * dmu1).to(ty), mask=mask)
            tl.store(gp + (2 * M + G) * sgk, (w * dls1).to(ty), mask=mask)
            tl.store(gp + (M + 2 * G) * sgk, (w * dmu2).to(ty), mask=mask)
            tl.store(gp + (2 * M + 2 * G) * sgk, (w * dls2).to(ty), mask=mask)
            tl.store(gp + 3 * M * sgk, (w * dmu1 * (1.0 - t0 * t0) * x0).to(ty), mask=mask)
            tl.store(gp + (3 * M + G) * sgk, (w * dmu2 * (1.0 - t1 * t1) * x0).to(ty), mask=mask)
            tl.store(gp + (3 * M + 2 * G) * sgk, (w * dmu2 * (1.0 - t2 * t2) * x1).to(ty), mask=mask)
    return lmax + log_(s, F64)


@triton.jit
def _dmol_kernel(
    # pointers: parameters, targets, the per-row upstream gradient (G_ROWS), the sums (one per
    # row, or SPLIT per row), the gradient (STORE)
    p_ptr,
    x_ptr,
    g_ptr,
    out_ptr,
    grad_ptr,
    # strides: per tensor its row, its pixels' three levels (``_launch.column_levels``) and its channel
    stride_pb,
    ps1,
    ps2,
    ps3,
    spk,
    stride_xb,
    xs1,
    xs2,
    xs3,
    sxc,
    stride_gb,
    gs1,
    gs2,
    gs3,
    sgk,
    stride_g,
    B,
    x_rows,
    grad_scale: tl.float64,
    # sizes: pixels per row, mixtures (padded to MP), channels; the bin's half-width and log(2 h)
    P: tl.constexpr,
    M: tl.constexpr,
    MP: tl.constexpr,
    C: tl.constexpr,
    HALF: tl.constexpr,
    LOG_2H: tl.constexpr,
    # the levels of the pixel offsets of the parameters, targets and gradient
    P_N2: tl.constexpr,
    P_N3: tl.constexpr,
    X_N2: tl.constexpr,
    X_N3: tl.constexpr,
    G_N2: tl.constexpr,
    G_N3: tl.constexpr,
    # tiling: rows per program (short rows), pixels per chunk, chunks per program, programs per row
    ROWS: tl.constexpr,
    BLOCK_P: tl.constexpr,
    TRIPS: tl.constexpr,
    SPLIT: tl.constexpr,
    # math and modes: compute dtype, x as levels (uint8, bool), rows of x a divisor of B, the
    # upstream gradient per row, store the gradient
    ACC: tl.constexpr,
    LEVELS: tl.constexpr,
    ROW_MOD: tl.constexpr,
    G_ROWS: tl.constexpr,
    STORE: tl.constexpr,
):
    if not INTERPRETING:
        grad_scale = grad_scale.to(ACC)
    pid = tl.program_id(0)
    if ROWS == 1:  # one row: its pointers once, TRIPS chunks of this program's part of it
        b, part = (pid // SPLIT).to(tl.int64), pid % SPLIT
        xb = b % x_rows if ROW_MOD else b
        p_row, x_row, g_row = p_ptr + b * stride_pb, x_ptr + xb * stride_xb, grad_ptr + b * stride_gb
        p0, x0, g0, row_ok = 0, 0, 0, True
        lane = tl.arange(0, BLOCK_P)
    else:  # ROWS whole rows (short ones) in one chunk: each pixel's row offsets (TRIPS = SPLIT = 1)
        lane = tl.arange(0, ROWS * BLOCK_P)
        b, part = pid.to(tl.int64) * ROWS + lane // BLOCK_P, 0
        xb = b % x_rows if ROW_MOD else b
        p_row, x_row, g_row = p_ptr, x_ptr, grad_ptr
        p0, x0, g0, row_ok = b * stride_pb, xb * stride_xb, b * stride_gb, b < B
        lane = lane % BLOCK_P
    factor = grad_scale
    if G_ROWS:
        factor = tl.load(g_ptr + b * stride_g, mask=row_ok, other=0.0).to(ACC) * grad_scale
    acc = tl.zeros([ROWS * BLOCK_P], ACC)
    for t in range(TRIPS):
        j = (part * TRIPS + t) * BLOCK_P + lane
        ok = (j < P) & row_ok
        lse = _chunk(p_row, x_row, g_row, p0 + column_offsets(j, ps1, ps2, ps3, P_N2, P_N3),
                     x0 + column_offsets(j, xs1, xs2, xs3, X_N2, X_N3),
                     g0 + column_offsets(j, gs1, gs2, gs3, G_N2, G_N3), ok, factor, spk, sxc, sgk, M, MP, C, HALF,
                     LOG_2H, LEVELS, ACC, STORE)
        acc += tl.where(ok, lse, 0.0)
    if ROWS == 1:
        tl.store(out_ptr + b * SPLIT + part, tl.sum(acc, axis=0).to(out_ptr.dtype.element_ty))
    else:
        rows = pid * ROWS + tl.arange(0, ROWS)
        sums = tl.sum(tl.reshape(acc, [ROWS, BLOCK_P]), axis=1)
        tl.store(out_ptr + rows, sums.to(out_ptr.dtype.element_ty), mask=rows < B)


# --------------------------------------------------------------------------- host side

def _spatial(t, dim):
    # (shape, strides) of t's batch and pixel dims: every dim but the channel dim
    dims = [0] + [d for d in range(1, t.dim()) if d != dim]
    return tuple(t.shape[d] for d in dims), tuple(t.stride(d) for d in dims)


def pixel_order(t, dim):
    """The order a kernel walks the pixels of ``t`` (B, ...) with its channels at ``dim``: their
    memory order, so a permuted conv output is read as the dense rows it is in memory."""
    return column_order(*_spatial(t, dim))


def pixel_layout(t, dim, order):
    """``(row stride, (s1, s2, s3), (N2, N3), channel stride)`` of ``t``'s pixels walked in
    ``order`` (``_launch.column_offsets``), or None beyond three levels of strides."""
    levels = column_levels(*_spatial(t, dim), order)
    return None if levels is None else (t.stride(0), levels[0], levels[1], t.stride(dim))


def readable(t, dim, order):
    """``t`` itself, or (pixel strides beyond three levels, never for images) a channels-last copy."""
    return t if pixel_layout(t, dim, order) is not None else t.movedim(dim, -1).contiguous().movedim(-1, dim)


def grad_like(params, symbolic=False):
    """A new tensor of ``params``' shape, dense in its memory order (a channels-last or permuted
    ``params`` gets a gradient laid out the same way, written with the same access pattern);
    ``symbolic``: for a fake function (``_launch.memory_order``)."""
    return _launch.empty_in_order(params, _launch.memory_order(params, symbolic))


def _pow2_at_least(n):
    return 1 << max(n - 1, 0).bit_length()


@functools.lru_cache(maxsize=1024)
def _plan(B, P, M, C, bits, dtype, levels, flags, tile=None):
    """``(programs, split, bound)`` of a launch over B rows of P pixels, once per key: the chunk
    (``BLOCK_P`` pixels by the MP padded mixtures: 512 elements, 4 per thread of 4 warps, on a
    GPU; up to 32768 in the interpreter, whose cost is per program), whole rows per chunk where
    they are shorter than one (``ROWS``), else the chunks per program (``TRIPS``: on a GPU up to
    16, while at least 1024 programs remain; in the interpreter the whole row) and the programs
    per row (``SPLIT``); ``levels``: the (N2, N3) of the parameters, targets and gradient;
    ``flags``: (name, value) pairs of the modes. ``tile`` (pixels per chunk, chunks per
    program) overrides."""
    mp = _pow2_at_least(M)
    elems = 32768 if INTERPRET else 512
    bp = max(1, min(_pow2_at_least(P), elems // mp))
    rows = max(1, min(_pow2_at_least(B), elems // (bp * mp))) if bp >= P else 1
    trips = -(-P // bp) if INTERPRET or rows > 1 else 1
    while not INTERPRET and rows == 1 and trips < 16 and B * -(-P // (bp * trips * 2)) >= 1024:
        trips *= 2
    if tile is not None:
        bp, trips, rows = *tile, 1
    split = -(-P // (bp * trips))
    half = 1.0 / (2**bits - 1)
    (pn2, pn3), (xn2, xn3), (gn2, gn3) = levels
    meta = dict(P=P, M=M, MP=mp, C=C, HALF=half, LOG_2H=math.log(2.0 * half), P_N2=pn2, P_N3=pn3, X_N2=xn2,
                X_N3=xn3, G_N2=gn2, G_N3=gn3, ROWS=rows, BLOCK_P=bp, TRIPS=trips, SPLIT=split,
                ACC=acc_dtype(dtype), num_warps=max(1, min(8, rows * bp * mp // 128)), **dict(flags))
    return (B * split if rows == 1 else -(-B // rows)), split, _launch.bind(_dmol_kernel, meta)


def dmol_pass(params, x, num_mixtures, bits=8, dim=1, grad_scale=1.0, g=None, *, store=False, tile=None):
    """One pass over ``params`` (B, ..., K at ``dim``, ...; any strides, read through them) and
    targets ``x`` (C channels at ``dim``, the same pixels; float in [-1, 1], or uint8/bool levels
    k read as ``2 k / (2**bits - 1) - 1``; x may have fewer rows than params, a divisor of them:
    row r reads row r % rows). Inputs are not checked (``fastvae`` does).

    Returns ``(ll, grad)``: ll (B,) float32 (float64 for float64 params), per row the sum over
    its pixels of log p; with ``store`` the gradient for params in their dtype, shape and memory
    order, times ``grad_scale`` and, with ``g`` ((B,) any stride, or 0-d), each row's upstream
    gradient; else None. ``tile``: (pixels per chunk, chunks per program), powers of two (tests).
    """
    dim = dim % params.dim()
    B, M = params.shape[0], num_mixtures
    C = mixture_channels(params.shape[dim], M)
    P = params.numel() // (B * params.shape[dim]) if params.numel() else 0
    ll = torch.empty(B, device=params.device, dtype=sum_dtype(params.dtype))
    if not (B and P):
        return ll.zero_(), grad_like(params).zero_() if store else None
    order = pixel_order(params, dim)
    params, x = readable(params, dim, order), readable(x, dim, order)
    grad = grad_like(params) if store else None
    lp, lx, lg = (pixel_layout(t, dim, order) for t in (params, x, params if grad is None else grad))
    flags = (("LEVELS", x.dtype in (torch.uint8, torch.bool)), ("ROW_MOD", x.shape[0] != B),
             ("G_ROWS", g is not None), ("STORE", store))
    programs, split, bound = _plan(B, P, M, C, bits, params.dtype, (lp[2], lx[2], lg[2]), flags, tile)
    out = ll if split == 1 else torch.empty(B * split, device=ll.device, dtype=ll.dtype)
    _launch.launch(_dmol_kernel, programs, (
        params, x, ll if g is None else g, out, ll if grad is None else grad, lp[0], *lp[1], lp[3], lx[0], *lx[1],
        lx[3], lg[0], *lg[1], lg[3], 0 if g is None or g.dim() == 0 else g.stride(0), B, x.shape[0],
        float(grad_scale)), bound)
    return (ll if split == 1 else out.view(B, split).sum(1)), grad
