r"""PixelCNN++'s sampler of a discretized logistic mixture (``dmol.py`` has the layout), in one
kernel: per pixel the component by Gumbel-max over the logits, ``argmax_m(logit_m -
log(-log u_m))``, then per channel a logistic draw ``mu + e^max(raw, -7) (log u - log(1 - u))``
of the chosen component, red clamped to [-1, 1], then green shifted by ``tanh(a0) x_red`` and
blue by ``tanh(a1) x_red + tanh(a2) x_green`` before each is clamped. The uniforms are
PixelCNN++'s, in [1e-5, 1 - 1e-5]: ``u = 1e-5 + (1 - 2e-5) (r + 1/2) / 2**32`` for a Philox
output r, drawn in registers from the 64-bit key ``seed`` with counters ``(m, n mod 2**32,
n >> 32, 0)`` for the mixture's and ``(0, n mod 2**32, n >> 32, 1)`` for the channels' (outputs
0, 1, 2), n = b P + j the pixel's index (walked in the parameters' memory order). The output is
not rounded to the bins (as PixelCNN++'s).
"""

import functools

import torch
import triton
import triton.language as tl

from . import _launch
from ._env import INTERPRET, mixture_channels, sum_dtype
from ._gamma import log_
from ._launch import acc_dtype, column_offsets
from .dmol import _exp, _pow2_at_least, _tanh, pixel_layout, pixel_order, readable


@triton.jit
def _uniform(r, ACC: tl.constexpr):
    # PixelCNN++'s uniform in [1e-5, 1 - 1e-5] from a uint32
    u = r.to(tl.float32) * 2.3283064365386963e-10 + 1.1641532182693481e-10
    return (u * (1.0 - 2e-5) + 1e-5).to(ACC)


@triton.jit
def _draw(p_row, po, sel, ok, c, u, spk, M: tl.constexpr, GROUP: tl.constexpr, ACC: tl.constexpr):
    # channel c of the chosen components: mean + scale * logistic(u)
    F64: tl.constexpr = ACC == tl.float64
    mean = tl.load(p_row + po + (M + c * GROUP + sel) * spk, mask=ok, other=0).to(ACC)
    raw = tl.load(p_row + po + (2 * M + c * GROUP + sel) * spk, mask=ok, other=0).to(ACC)
    return mean + _exp(tl.maximum(raw, -7.0), F64) * (log_(u, F64) - log_(1.0 - u, F64))


@triton.jit
def _coefficient(p_row, po, sel, ok, c, spk, M: tl.constexpr, GROUP: tl.constexpr, ACC: tl.constexpr):
    return _tanh(tl.load(p_row + po + (3 * M + c * GROUP + sel) * spk, mask=ok, other=0).to(ACC), ACC == tl.float64)


@triton.jit
def _sample_kernel(p_ptr, seed_ptr, u_ptr, out_ptr, stride_pb, ps1, ps2, ps3, spk, stride_ob, os1, os2, os3, soc,
                   P: tl.constexpr, M: tl.constexpr, MP: tl.constexpr, C: tl.constexpr, P_N2: tl.constexpr,
                   P_N3: tl.constexpr, O_N2: tl.constexpr, O_N3: tl.constexpr, BLOCK_P: tl.constexpr,
                   ACC: tl.constexpr, GIVEN: tl.constexpr):
    # one program: BLOCK_P pixels of one row. GIVEN: the uniforms (B, P, M + C) are read from u_ptr
    # (pixel j of the row in memory order; tests) instead of drawn
    F64: tl.constexpr = ACC == tl.float64
    GROUP: tl.constexpr = 3 * M if C == 3 else 2 * M
    chunks: tl.constexpr = (P + BLOCK_P - 1) // BLOCK_P
    pid = tl.program_id(0)
    b, j = (pid // chunks).to(tl.int64), (pid % chunks) * BLOCK_P + tl.arange(0, BLOCK_P)
    ok = j < P
    n = b * P + j
    m = tl.arange(0, MP)
    mask = ok[:, None] & (m < M)[None, :]
    p_row = p_ptr + b * stride_pb
    po = column_offsets(j, ps1, ps2, ps3, P_N2, P_N3)
    logit = tl.load(p_row + po[:, None] + m[None, :] * spk, mask=mask, other=0).to(ACC)
    if GIVEN:
        um = tl.load(u_ptr + n[:, None] * (M + C) + m[None, :], mask=mask, other=0.5).to(ACC) * (1.0 - 2e-5) + 1e-5
        uc0 = tl.load(u_ptr + n * (M + C) + M, mask=ok, other=0.5).to(ACC) * (1.0 - 2e-5) + 1e-5
        uc1 = tl.load(u_ptr + n * (M + C) + M + 1, mask=ok & (C == 3), other=0.5).to(ACC) * (1.0 - 2e-5) + 1e-5
        uc2 = tl.load(u_ptr + n * (M + C) + M + 2, mask=ok & (C == 3), other=0.5).to(ACC) * (1.0 - 2e-5) + 1e-5
    else:
        seed = tl.load(seed_ptr)
        zero = tl.zeros([BLOCK_P, MP], tl.uint32)
        lo, hi = n.to(tl.uint32), (n >> 32).to(tl.uint32)
        r, _, _, _ = tl.philox(seed, m.to(tl.uint32)[None, :] + zero, lo[:, None] + zero, hi[:, None] + zero, zero)
        um = _uniform(r, ACC)
        one = tl.zeros([BLOCK_P], tl.uint32)
        r0, r1, r2, _ = tl.philox(seed, one, lo, hi, one + 1)
        uc0, uc1, uc2 = _uniform(r0, ACC), _uniform(r1, ACC), _uniform(r2, ACC)
    score = tl.where(mask, logit - log_(-log_(um, F64), F64), float("-inf"))
    top = tl.max(score, axis=1)
    sel = tl.min(tl.where(score == top[:, None], m[None, :], MP), axis=1)  # the first largest, as argmax
    sel = tl.minimum(sel, M - 1)  # a masked pixel's row of -inf
    out_row = out_ptr + b * stride_ob + column_offsets(j, os1, os2, os3, O_N2, O_N3)
    x0 = tl.minimum(tl.maximum(_draw(p_row, po, sel, ok, 0, uc0, spk, M, GROUP, ACC), -1.0), 1.0)
    tl.store(out_row, x0.to(out_ptr.dtype.element_ty), mask=ok)
    if C == 3:
        x1 = _draw(p_row, po, sel, ok, 1, uc1, spk, M, GROUP, ACC)
        x1 = tl.minimum(tl.maximum(x1 + _coefficient(p_row, po, sel, ok, 0, spk, M, GROUP, ACC) * x0, -1.0), 1.0)
        x2 = _draw(p_row, po, sel, ok, 2, uc2, spk, M, GROUP, ACC)
        x2 += _coefficient(p_row, po, sel, ok, 1, spk, M, GROUP, ACC) * x0
        x2 = tl.minimum(tl.maximum(x2 + _coefficient(p_row, po, sel, ok, 2, spk, M, GROUP, ACC) * x1, -1.0), 1.0)
        tl.store(out_row + soc, x1.to(out_ptr.dtype.element_ty), mask=ok)
        tl.store(out_row + 2 * soc, x2.to(out_ptr.dtype.element_ty), mask=ok)


@functools.lru_cache(maxsize=1024)
def _plan(B, P, M, C, dtype, levels, given):
    mp = _pow2_at_least(M)
    bp = max(1, min(_pow2_at_least(P), (8192 if INTERPRET else 1024) // mp))
    (pn2, pn3), (on2, on3) = levels
    meta = dict(P=P, M=M, MP=mp, C=C, P_N2=pn2, P_N3=pn3, O_N2=on2, O_N3=on3, BLOCK_P=bp, ACC=acc_dtype(dtype),
                GIVEN=given, num_warps=max(1, min(8, bp * mp // 256)))
    return B * -(-P // bp), _launch.bind(_sample_kernel, meta)


def sample_like(params, num_mixtures, dim, symbolic=False):
    """The sampler's output for ``params``: (B, ..., C, ...) with C at ``dim``, in the sum dtype,
    dense in params' memory order (the channels where theirs are); ``symbolic``: for a fake
    function (``_launch.memory_order``)."""
    dim = dim % params.dim()
    shape = params.shape[:dim] + (mixture_channels(params.shape[dim], num_mixtures),) + params.shape[dim + 1:]
    order = _launch.memory_order(params, symbolic)
    like = _launch.empty_in_order(torch.empty(shape, device="meta", dtype=sum_dtype(params.dtype)), order)
    return torch.empty_strided(like.shape, like.stride(), device=params.device, dtype=like.dtype)


def dmol_sample(params, num_mixtures, dim=1, seed=None, uniforms=None):
    """One draw x (B, ..., C at ``dim``, ...) in [-1, 1] of the mixture ``params`` (B, ..., K at
    ``dim``, ...; any strides, read through them), float32 (float64 for float64 params), laid
    out like params (their memory order, the channels where theirs are). ``seed``: a one-element
    int64 device tensor (the Philox key); or ``uniforms`` (B, P, M + C) in (0, 1), the draws of
    each pixel in params' memory order (tests). Inputs are not checked."""
    dim = dim % params.dim()
    B, M = params.shape[0], num_mixtures
    C = mixture_channels(params.shape[dim], M)
    out = sample_like(params, M, dim)
    P = out.numel() // (B * C) if out.numel() else 0
    if not (B and P):
        return out
    porder = pixel_order(params, dim)
    params = readable(params, dim, porder)
    lp, lo = pixel_layout(params, dim, porder), pixel_layout(out, dim, porder)
    programs, bound = _plan(B, P, M, C, params.dtype, (lp[2], lo[2]), uniforms is not None)
    _launch.launch(_sample_kernel, programs, (params, out if seed is None else seed, out if uniforms is None else
                                              uniforms, out, lp[0], *lp[1], lp[3], lo[0], *lo[1], lo[3]), bound)
    return out
