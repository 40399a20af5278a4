r"""Fused reparameterized sample and closed-form KL of a diagonal Gaussian.

For mu, logvar of a (B, L) view, std = exp(logvar / 2), eps ~ N(0, 1):

    z        = mu + std * eps
    kl[b]    = 0.5 * sum_j  mu^2 + exp(logvar) - 1 - logvar          (= KL(N(mu, std^2) || N(0, 1)))

and with upstream gradients gz (B, L) and gkl (B,):

    grad_mu     = gz + gkl * mu
    grad_logvar = gz * 0.5 * std * eps + gkl * 0.5 * (exp(logvar) - 1)

``exp(v) - 1 - v`` and ``exp(v) - 1`` are formed without cancellation near v = 0 (a
collapsed posterior, where the KL is tiny; the eager formula loses it there). eps is drawn inside the kernel with Philox,
``tl.randn(seed, b * L + j)``: the element's flat index is its counter, so the backward
regenerates exactly the forward's eps from the saved int64 seed and eps never touches memory.
Forward is one pass (read mu, logvar; write z and kl), backward is one pass (read mu,
logvar, gz, gkl; write grad_mu, grad_logvar). Math in float32 (float64 for float64 input).
"""

import torch
import triton
import triton.language as tl

from .._rows import sum_dtype
from ._launch import RNG_TILE, acc_dtype, tile


@triton.jit
def _expm1_parts(v, SERIES_MAX: tl.constexpr):
    # Returns (exp(v) - 1 - v, exp(v) - 1) without cancellation for small |v|: for
    # |v| < SERIES_MAX the series v^2/2 * (1 + v/3 * (1 + v/4 * (1 + ... v/8))) with exact integer
    # divisors, exp(v) directly otherwise. SERIES_MAX balances the series' truncation error
    # (2 v^7 / 9!) against exp's cancellation (2 ulp / (v^2 / 2)): 0.5 in float32 (relative
    # error ~1e-6 at the switch, far less elsewhere), 0.075 in float64 (~1e-13).
    small = tl.abs(v) < SERIES_MAX
    w = tl.where(small, v, 0.0)  # the series only ever sees small values (no inf for v = -1e8)
    p = 1.0 + w / 8.0
    p = 1.0 + w / 7.0 * p
    p = 1.0 + w / 6.0 * p
    p = 1.0 + w / 5.0 * p
    p = 1.0 + w / 4.0 * p
    p = 1.0 + w / 3.0 * p
    s = 0.5 * p * w * w
    ex = tl.exp(tl.where(small, 0.0, v))
    # each formed directly: (ex - 1 - v) + v would lose the -1 for v << 0 (e.g. -1e8)
    return tl.where(small, s, ex - 1.0 - v), tl.where(small, s + w, ex - 1.0)


@triton.jit
def _reparameterize_kl_fwd_kernel(
    mu_ptr, lv_ptr, eps_ptr, seed_ptr, z_ptr, kl_ptr,
    B, L,
    stride_mb, stride_ml, stride_vb, stride_vl, stride_eb, stride_el,
    ACC: tl.constexpr, SERIES_MAX: tl.constexpr, HAS_EPS: tl.constexpr, WRITE_Z: tl.constexpr, WRITE_KL: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_L: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    if WRITE_Z and not HAS_EPS:
        seed = tl.load(seed_ptr)
    acc = tl.zeros([BLOCK_B, BLOCK_L], dtype=ACC)
    for j0 in range(0, L, BLOCK_L):
        cols = j0 + tl.arange(0, BLOCK_L).to(tl.int64)
        mask = row_ok[:, None] & (cols < L)[None, :]
        mu = tl.load(mu_ptr + rows[:, None] * stride_mb + cols[None, :] * stride_ml, mask=mask, other=0.0).to(ACC)
        lv = tl.load(lv_ptr + rows[:, None] * stride_vb + cols[None, :] * stride_vl, mask=mask, other=0.0).to(ACC)
        flat = rows[:, None] * L + cols[None, :]
        if WRITE_Z:
            if HAS_EPS:
                eps = tl.load(eps_ptr + rows[:, None] * stride_eb + cols[None, :] * stride_el, mask=mask, other=0.0)
            else:
                eps = tl.randn(seed, flat)
            z = mu + tl.exp(0.5 * lv) * eps.to(ACC)
            tl.store(z_ptr + flat, z.to(z_ptr.dtype.element_ty), mask=mask)
        if WRITE_KL:
            em1_mv, _ = _expm1_parts(lv, SERIES_MAX)
            acc += tl.where(mask, mu * mu + em1_mv, 0.0)
    if WRITE_KL:
        tl.store(kl_ptr + rows, (0.5 * tl.sum(acc, axis=1)).to(kl_ptr.dtype.element_ty), mask=row_ok)


@triton.jit
def _reparameterize_kl_bwd_kernel(
    mu_ptr, lv_ptr, eps_ptr, seed_ptr, gz_ptr, gkl_ptr, gmu_ptr, glv_ptr,
    B, L,
    stride_mb, stride_ml, stride_vb, stride_vl, stride_eb, stride_el, stride_gzb, stride_gzl, stride_gkl,
    ACC: tl.constexpr, SERIES_MAX: tl.constexpr, HAS_EPS: tl.constexpr, HAS_GZ: tl.constexpr, HAS_GKL: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_L: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    if HAS_GZ and not HAS_EPS:
        seed = tl.load(seed_ptr)
    if HAS_GKL:
        gkl = tl.load(gkl_ptr + rows * stride_gkl, mask=row_ok, other=0.0).to(ACC)
    for j0 in range(0, L, BLOCK_L):
        cols = j0 + tl.arange(0, BLOCK_L).to(tl.int64)
        mask = row_ok[:, None] & (cols < L)[None, :]
        flat = rows[:, None] * L + cols[None, :]
        lv = tl.load(lv_ptr + rows[:, None] * stride_vb + cols[None, :] * stride_vl, mask=mask, other=0.0).to(ACC)
        gmu = tl.zeros([BLOCK_B, BLOCK_L], dtype=ACC)
        glv = tl.zeros([BLOCK_B, BLOCK_L], dtype=ACC)
        if HAS_GZ:
            gz = tl.load(gz_ptr + rows[:, None] * stride_gzb + cols[None, :] * stride_gzl, mask=mask, other=0.0)
            gz = gz.to(ACC)
            if HAS_EPS:
                eps = tl.load(eps_ptr + rows[:, None] * stride_eb + cols[None, :] * stride_el, mask=mask, other=0.0)
            else:
                eps = tl.randn(seed, flat)
            gmu += gz
            glv += gz * 0.5 * tl.exp(0.5 * lv) * eps.to(ACC)
        if HAS_GKL:
            mu = tl.load(mu_ptr + rows[:, None] * stride_mb + cols[None, :] * stride_ml, mask=mask, other=0.0).to(ACC)
            _, em1 = _expm1_parts(lv, SERIES_MAX)
            gmu += gkl[:, None] * mu
            glv += gkl[:, None] * 0.5 * em1
        tl.store(gmu_ptr + flat, gmu.to(gmu_ptr.dtype.element_ty), mask=mask)
        tl.store(glv_ptr + flat, glv.to(glv_ptr.dtype.element_ty), mask=mask)


def _series_max(dtype):
    return 0.075 if dtype == torch.float64 else 0.5


def _strides(t):
    return (t.stride(0), t.stride(1)) if t is not None else (0, 0)


def reparameterize_kl_fwd(mu, logvar, eps=None, seed=None, write_z=True, write_kl=True,
                          block_rows=None, block_cols=None):
    """Launch the forward on 2-D (B, L) views (any strides).

    mu, logvar: same float dtype. eps: (B, L) of any float dtype, or None to draw it from
    ``seed`` (a one-element int64 device tensor). Returns ``(z, kl)``: z contiguous (B, L) of
    mu's dtype (empty when not ``write_z``), kl (B,) float32 (float64 for float64 input;
    empty when not ``write_kl``).
    """
    B, L = mu.shape
    dev = mu.device
    kl_dtype = sum_dtype(mu.dtype)
    z = torch.empty((B, L) if write_z else (0,), device=dev, dtype=mu.dtype)
    kl = torch.empty((B,) if write_kl else (0,), device=dev, dtype=kl_dtype)
    if B == 0 or not (write_z or write_kl):
        return z, kl
    if L == 0:
        kl.zero_()
        return z, kl
    if write_z and eps is None and seed is None:
        raise ValueError("reparameterize_kl_fwd: give eps or seed to draw z")
    BB, BL, warps = tile(B, L, block_rows, block_cols, RNG_TILE)
    _reparameterize_kl_fwd_kernel[(triton.cdiv(B, BB),)](
        mu, logvar, eps if eps is not None else mu, seed if seed is not None else mu, z, kl,
        B, L, *_strides(mu), *_strides(logvar), *_strides(eps),
        ACC=acc_dtype(mu.dtype), SERIES_MAX=_series_max(mu.dtype), HAS_EPS=eps is not None, WRITE_Z=bool(write_z), WRITE_KL=bool(write_kl),
        BLOCK_B=BB, BLOCK_L=BL, num_warps=warps,
    )
    return z, kl


def reparameterize_kl_bwd(mu, logvar, eps, seed, grad_z, grad_kl, block_rows=None, block_cols=None):
    """Launch the backward. grad_z (B, L) and grad_kl (B,) may be None or have any strides
    (stride 0 for gradients expanded from ``.sum()``). Returns contiguous ``(grad_mu,
    grad_logvar)`` of mu's and logvar's dtype."""
    B, L = mu.shape
    gmu = torch.empty((B, L), device=mu.device, dtype=mu.dtype)
    glv = torch.empty((B, L), device=mu.device, dtype=logvar.dtype)
    if B == 0 or L == 0:
        return gmu, glv
    if grad_z is None and grad_kl is None:
        return gmu.zero_(), glv.zero_()
    if grad_z is not None and eps is None and seed is None:
        raise ValueError("reparameterize_kl_bwd: give eps or seed to regenerate eps")
    BB, BL, warps = tile(B, L, block_rows, block_cols, RNG_TILE)
    _reparameterize_kl_bwd_kernel[(triton.cdiv(B, BB),)](
        mu, logvar, eps if eps is not None else mu, seed if seed is not None else mu,
        grad_z if grad_z is not None else mu, grad_kl if grad_kl is not None else mu, gmu, glv,
        B, L, *_strides(mu), *_strides(logvar), *_strides(eps), *_strides(grad_z),
        grad_kl.stride(0) if grad_kl is not None else 0,
        ACC=acc_dtype(mu.dtype), SERIES_MAX=_series_max(mu.dtype), HAS_EPS=eps is not None, HAS_GZ=grad_z is not None, HAS_GKL=grad_kl is not None,
        BLOCK_B=BB, BLOCK_L=BL, num_warps=warps,
    )
    return gmu, glv
