r"""Fused reparameterized sample and closed-form KL of a diagonal Gaussian.

For mu, logvar of a (B, L) view, std = exp(logvar / 2), eps ~ N(0, 1):

    z        = mu + std * eps
    kl[b]    = 0.5 * sum_j  mu^2 + exp(logvar) - 1 - logvar          (= KL(N(mu, std^2) || N(0, 1)))

and with upstream gradients gz (B, L) and gkl (B,):

    grad_mu     = gz + gkl * mu
    grad_logvar = gz * 0.5 * std * eps + gkl * 0.5 * (exp(logvar) - 1)

With a learned prior N(pm, exp(pv)) (``HAS_PRIOR``; pm, pv (B, L) views, any strides, 0 for an
expanded one), d = logvar - pv and r = mu - pm:

    kl[b]       = 0.5 * sum_j  (exp(d) - 1 - d) + r^2 exp(-pv)      (= KL(N(mu, std^2) || N(pm, e^pv)))
    grad_mu     = gz + gkl * r exp(-pv)            grad_pm = -gkl * r exp(-pv)
    grad_logvar = gz * 0.5 * std * eps + gkl * 0.5 * (exp(d) - 1)
    grad_pv     = -gkl * 0.5 * ((exp(d) - 1) + r^2 exp(-pv))

all four gradients written by the one backward pass. ``exp(v) - 1 - v`` and ``exp(v) - 1`` are
formed without cancellation near v = 0 (a collapsed posterior, or one that matches its prior,
where the KL is tiny; the eager formula loses it there). Every exponential is of a difference or
a single log-variance, so log-variances anywhere in [-30, 20] on either side stay finite.

The noise never touches memory: the forward draws it in registers and the backward draws the
same numbers again (``_noise.py``: Philox-4x32-10, one call for four elements, Box-Muller with
both outputs). Forward is one pass (read mu, logvar; write z and kl), backward is one pass (read
mu, logvar, gz, gkl; write grad_mu, grad_logvar). Math in float32 (float64 for float64 input).
"""

import torch
import triton
import triton.language as tl

from . import _launch
from ._env import sum_dtype
from ._launch import load, store
from ._math import exp_of
from ._noise import normals_or_zeros, quarter_plan, std_of


@triton.jit
def _expm1_parts(v, ex, SERIES_MAX: tl.constexpr):
    # (exp(v) - 1 - v, exp(v) - 1) without cancellation for small |v|, given ex = exp(v): the
    # Taylor series v^2/2! + ... + v^8/8! for |v| < SERIES_MAX, ex directly otherwise. SERIES_MAX
    # balances the series' truncation (v^9 / 9!) against ex's cancellation (~4 ulp / (v^2 / 2)):
    # 0.5 in float32 (~5e-6 relative at the switch), 0.075 in float64 (~1e-13).
    small = tl.abs(v) < SERIES_MAX
    w = tl.where(small, v, 0.0)  # the series only ever sees small values (no inf for v = -1e8)
    p = 2.48015873015873e-05 * w + 1.984126984126984e-04
    p = p * w + 1.388888888888889e-03
    p = p * w + 8.333333333333333e-03
    p = p * w + 4.1666666666666664e-02
    p = p * w + 0.16666666666666666
    s = (p * w + 0.5) * (w * w)
    # each formed directly: (ex - 1 - v) + v would lose the -1 for v << 0 (e.g. -1e8)
    return tl.where(small, s, ex - 1.0 - v), tl.where(small, s + w, ex - 1.0)


@triton.jit
def _prior_terms(mu, lv, pm_ptr, pv_ptr, rows, cols, mask, spb, spl, sqb, sql, ACC: tl.constexpr,
                 SERIES_MAX: tl.constexpr, EVEN: tl.constexpr):
    # (exp(d) - 1 - d, exp(d) - 1, r exp(-pv), r) of the prior N(pm, exp(pv)): d = lv - pv, r = mu - pm
    pm = load(pm_ptr + rows[:, None] * spb + cols[None, :] * spl, mask, EVEN).to(ACC)
    pv = load(pv_ptr + rows[:, None] * sqb + cols[None, :] * sql, mask, EVEN).to(ACC)
    d = lv - pv
    em1_md, em1 = _expm1_parts(d, exp_of(d, ACC), SERIES_MAX)
    r = mu - pm
    return em1_md, em1, r * exp_of(-pv, ACC), r


@triton.jit
def _fwd_quarter(mu_ptr, lv_ptr, pm_ptr, pv_ptr, eps_ptr, z_ptr, rows, row_ok, cols, col_ok, eps, smb, sml, svb, svl,
                 spb, spl, sqb, sql, seb, sel, L: tl.constexpr, ACC: tl.constexpr, SERIES_MAX: tl.constexpr,
                 HAS_EPS: tl.constexpr, WRITE_Z: tl.constexpr, WRITE_KL: tl.constexpr, HAS_PRIOR: tl.constexpr,
                 EVEN: tl.constexpr):
    # z for one quarter of the columns; returns its KL terms mu^2 + exp(v) - 1 - v (with a prior,
    # (exp(d) - 1 - d) + r^2 exp(-pv))
    mask = row_ok[:, None] & col_ok[None, :]
    lv = load(lv_ptr + rows[:, None] * svb + cols[None, :] * svl, mask, EVEN).to(ACC)
    mu = load(mu_ptr + rows[:, None] * smb + cols[None, :] * sml, mask, EVEN).to(ACC)
    std = std_of(lv, ACC)
    if WRITE_Z:
        if HAS_EPS:
            eps = load(eps_ptr + rows[:, None] * seb + cols[None, :] * sel, mask, EVEN)
        z = mu + std * eps.to(ACC)
        store(z_ptr + rows[:, None] * L + cols[None, :], z.to(z_ptr.dtype.element_ty), mask, EVEN)
    terms = tl.zeros(mask.shape, ACC)
    if WRITE_KL:
        if HAS_PRIOR:
            em1_md, _, rw, r = _prior_terms(mu, lv, pm_ptr, pv_ptr, rows, cols, mask, spb, spl, sqb, sql, ACC,
                                            SERIES_MAX, EVEN)
            terms = tl.where(mask, em1_md + rw * r, 0.0)
        else:
            em1_mv, _ = _expm1_parts(lv, std * std, SERIES_MAX)
            terms = tl.where(mask, mu * mu + em1_mv, 0.0)
    return terms


@triton.jit
def _reparameterize_kl_fwd_kernel(
    # pointers: inputs (the prior's only with HAS_PRIOR, eps only with HAS_EPS; the seed of the
    # drawn noise otherwise), outputs
    mu_ptr,
    lv_ptr,
    pm_ptr,
    pv_ptr,
    eps_ptr,
    seed_ptr,
    z_ptr,
    kl_ptr,
    # sizes and strides (mu, logvar, the prior, eps: any strides; z dense)
    B,
    stride_mb,
    stride_ml,
    stride_vb,
    stride_vl,
    stride_pmb,
    stride_pml,
    stride_pvb,
    stride_pvl,
    stride_eb,
    stride_el,
    # shapes and tiling (``_noise.quarter_plan``)
    L: tl.constexpr,
    Q: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    EVEN: tl.constexpr,
    # math: the compute dtype, where exp(v) - 1 - v switches to its series
    ACC: tl.constexpr,
    SERIES_MAX: tl.constexpr,
    # modes: eps given (else drawn), which outputs to write, the KL to a learned prior (else N(0, I))
    HAS_EPS: tl.constexpr,
    WRITE_Z: tl.constexpr,
    WRITE_KL: tl.constexpr,
    HAS_PRIOR: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    DRAW: tl.constexpr = WRITE_Z and not HAS_EPS
    seed = 0
    if DRAW:
        seed = tl.load(seed_ptr)
    acc = tl.zeros([BLOCK_B, BLOCK_Q], ACC)
    for q0 in tl.range(0, Q, BLOCK_Q):
        q = q0 + tl.arange(0, BLOCK_Q)
        eps = normals_or_zeros(seed, rows, q, 0, DRAW)  # one Philox call: quarter i's normals are eps[i]
        for i in tl.static_range(4):
            cols = i * Q + q
            acc += _fwd_quarter(mu_ptr, lv_ptr, pm_ptr, pv_ptr, eps_ptr, z_ptr, rows, row_ok, cols,
                                (q < Q) & (cols < L), eps[i], stride_mb, stride_ml, stride_vb, stride_vl, stride_pmb,
                                stride_pml, stride_pvb, stride_pvl, stride_eb, stride_el, L, ACC, SERIES_MAX, HAS_EPS,
                                WRITE_Z, WRITE_KL, HAS_PRIOR, EVEN)
    if WRITE_KL:
        store(kl_ptr + rows, (0.5 * tl.sum(acc, axis=1)).to(kl_ptr.dtype.element_ty), row_ok, EVEN)


@triton.jit
def _bwd_quarter(mu_ptr, lv_ptr, pm_ptr, pv_ptr, eps_ptr, gz_ptr, gmu_ptr, glv_ptr, gpm_ptr, gpv_ptr, rows, row_ok,
                 cols, col_ok, eps, gkl, smb, sml, svb, svl, spb, spl, sqb, sql, seb, sel, sgb, sgl, L: tl.constexpr,
                 ACC: tl.constexpr, SERIES_MAX: tl.constexpr, HAS_EPS: tl.constexpr, HAS_GZ: tl.constexpr,
                 HAS_GKL: tl.constexpr, HAS_PRIOR: tl.constexpr, EVEN: tl.constexpr):
    mask = row_ok[:, None] & col_ok[None, :]
    lv = load(lv_ptr + rows[:, None] * svb + cols[None, :] * svl, mask, EVEN).to(ACC)
    std = std_of(lv, ACC)
    gmu = tl.zeros(mask.shape, ACC)
    glv = tl.zeros(mask.shape, ACC)
    if HAS_GZ:
        gz = load(gz_ptr + rows[:, None] * sgb + cols[None, :] * sgl, mask, EVEN).to(ACC)
        if HAS_EPS:
            eps = load(eps_ptr + rows[:, None] * seb + cols[None, :] * sel, mask, EVEN)
        gmu += gz
        glv += (0.5 * gz) * (std * eps.to(ACC))
    out = rows[:, None] * L + cols[None, :]
    if HAS_GKL:
        mu = load(mu_ptr + rows[:, None] * smb + cols[None, :] * sml, mask, EVEN).to(ACC)
        if HAS_PRIOR:  # HAS_PRIOR only with HAS_GKL: the prior's gradients come from the KL alone
            _, em1, rw, r = _prior_terms(mu, lv, pm_ptr, pv_ptr, rows, cols, mask, spb, spl, sqb, sql, ACC,
                                         SERIES_MAX, EVEN)
            g_rw = gkl[:, None] * rw
            half_gkl = 0.5 * gkl[:, None]
            gmu += g_rw
            glv += half_gkl * em1
            store(gpm_ptr + out, (-g_rw).to(gpm_ptr.dtype.element_ty), mask, EVEN)
            store(gpv_ptr + out, (-half_gkl * (em1 + rw * r)).to(gpv_ptr.dtype.element_ty), mask, EVEN)
        else:
            _, em1 = _expm1_parts(lv, std * std, SERIES_MAX)
            gmu += gkl[:, None] * mu
            glv += (0.5 * gkl[:, None]) * em1
    store(gmu_ptr + out, gmu.to(gmu_ptr.dtype.element_ty), mask, EVEN)
    store(glv_ptr + out, glv.to(glv_ptr.dtype.element_ty), mask, EVEN)


@triton.jit
def _reparameterize_kl_bwd_kernel(
    # pointers: the forward's inputs, the upstream gradients, the outputs (the prior's with HAS_PRIOR)
    mu_ptr,
    lv_ptr,
    pm_ptr,
    pv_ptr,
    eps_ptr,
    seed_ptr,
    gz_ptr,
    gkl_ptr,
    gmu_ptr,
    glv_ptr,
    gpm_ptr,
    gpv_ptr,
    # sizes and strides (inputs and upstream gradients: any strides, 0 for expanded ones)
    B,
    stride_mb,
    stride_ml,
    stride_vb,
    stride_vl,
    stride_pmb,
    stride_pml,
    stride_pvb,
    stride_pvl,
    stride_eb,
    stride_el,
    stride_gzb,
    stride_gzl,
    stride_gkl,
    # shapes and tiling (``_noise.quarter_plan``)
    L: tl.constexpr,
    Q: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    EVEN: tl.constexpr,
    # math
    ACC: tl.constexpr,
    SERIES_MAX: tl.constexpr,
    # modes: eps given (else drawn again), which upstream gradients there are, a learned prior
    HAS_EPS: tl.constexpr,
    HAS_GZ: tl.constexpr,
    HAS_GKL: tl.constexpr,
    HAS_PRIOR: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    DRAW: tl.constexpr = HAS_GZ and not HAS_EPS
    seed = 0
    if DRAW:
        seed = tl.load(seed_ptr)
    gkl = tl.zeros([BLOCK_B], ACC)
    if HAS_GKL:
        gkl = load(gkl_ptr + rows * stride_gkl, row_ok, EVEN).to(ACC)
    for q0 in tl.range(0, Q, BLOCK_Q):
        q = q0 + tl.arange(0, BLOCK_Q)
        eps = normals_or_zeros(seed, rows, q, 0, DRAW)  # the forward's normals, drawn again
        for i in tl.static_range(4):
            cols = i * Q + q
            _bwd_quarter(mu_ptr, lv_ptr, pm_ptr, pv_ptr, eps_ptr, gz_ptr, gmu_ptr, glv_ptr, gpm_ptr, gpv_ptr, rows,
                         row_ok, cols, (q < Q) & (cols < L), eps[i], gkl, stride_mb, stride_ml, stride_vb, stride_vl,
                         stride_pmb, stride_pml, stride_pvb, stride_pvl, stride_eb, stride_el, stride_gzb, stride_gzl,
                         L, ACC, SERIES_MAX, HAS_EPS, HAS_GZ, HAS_GKL, HAS_PRIOR, EVEN)


def _strides(t):
    return t.stride() if t is not None else (0, 0)


def _series_max(dtype):
    return 0.075 if dtype == torch.float64 else 0.5


def reparameterize_kl_fwd(mu, logvar, eps=None, seed=None, write_z=True, write_kl=True,
                          block_rows=None, block_cols=None, prior_mu=None, prior_logvar=None):
    """Launch the forward on 2-D (B, L) views (any strides).

    mu, logvar: same float dtype. eps: (B, L) of any float dtype, or None to draw it from
    ``seed`` (a one-element int64 device tensor). prior_mu, prior_logvar: (B, L) views of mu's
    dtype (any strides, 0 for an expanded prior), or None for N(0, I). Returns ``(z, kl)``: z
    contiguous (B, L) of mu's dtype (empty when not ``write_z``), kl (B,) float32 (float64 for
    float64 input; empty when not ``write_kl``). ``block_cols`` overrides the counters per row
    chunk (tests).
    """
    B, L = mu.shape
    z = torch.empty((B, L) if write_z else (0,), device=mu.device, dtype=mu.dtype)
    kl = torch.empty((B,) if write_kl else (0,), device=mu.device, dtype=sum_dtype(mu.dtype))
    if B == 0 or not (write_z or write_kl):
        return z, kl
    if L == 0:
        return z, kl.zero_()
    if write_z and eps is None and seed is None:
        raise ValueError("reparameterize_kl_fwd: give eps or seed to draw z")
    prior = prior_mu is not None and write_kl
    kernel = _reparameterize_kl_fwd_kernel
    programs, bound = quarter_plan(kernel, B, L, mu.dtype, (
        ("SERIES_MAX", _series_max(mu.dtype)), ("HAS_EPS", eps is not None), ("WRITE_Z", write_z),
        ("WRITE_KL", write_kl), ("HAS_PRIOR", prior)), block_rows, block_cols)
    pm, pv = (prior_mu, prior_logvar) if prior else (None, None)
    _launch.launch(kernel, programs, (mu, logvar, mu if pm is None else pm, mu if pv is None else pv,
                                      mu if eps is None else eps, mu if seed is None else seed, z, kl, B,
                                      *mu.stride(), *logvar.stride(), *_strides(pm), *_strides(pv), *_strides(eps)),
                   bound)
    return z, kl


def reparameterize_kl_bwd(mu, logvar, eps, seed, grad_z, grad_kl, block_rows=None, block_cols=None,
                          prior_mu=None, prior_logvar=None):
    """Launch the backward. grad_z (B, L) and grad_kl (B,) may be None or have any strides
    (stride 0 for gradients expanded from ``.sum()``). Returns contiguous ``(grad_mu,
    grad_logvar)`` of mu's and logvar's dtype; with a prior, ``(grad_mu, grad_logvar,
    grad_prior_mu, grad_prior_logvar)`` (the prior's None without grad_kl: only the KL reaches it)."""
    B, L = mu.shape
    gmu = torch.empty((B, L), device=mu.device, dtype=mu.dtype)
    glv = torch.empty((B, L), device=mu.device, dtype=logvar.dtype)
    prior = prior_mu is not None and grad_kl is not None
    gpm = torch.empty((B, L), device=mu.device, dtype=prior_mu.dtype) if prior else None
    gpv = torch.empty((B, L), device=mu.device, dtype=prior_logvar.dtype) if prior else None
    grads = (gmu, glv) if prior_mu is None else (gmu, glv, gpm, gpv)
    if B == 0 or L == 0:
        return grads
    if grad_z is None and grad_kl is None:
        gmu.zero_(), glv.zero_()
        return grads
    if grad_z is not None and eps is None and seed is None:
        raise ValueError("reparameterize_kl_bwd: give eps or seed to regenerate eps")
    kernel = _reparameterize_kl_bwd_kernel
    programs, bound = quarter_plan(kernel, B, L, mu.dtype, (
        ("SERIES_MAX", _series_max(mu.dtype)), ("HAS_EPS", eps is not None), ("HAS_GZ", grad_z is not None),
        ("HAS_GKL", grad_kl is not None), ("HAS_PRIOR", prior)), block_rows, block_cols)
    pm, pv = (prior_mu, prior_logvar) if prior else (None, None)
    _launch.launch(kernel, programs, (mu, logvar, mu if pm is None else pm, mu if pv is None else pv,
                                      mu if eps is None else eps, mu if seed is None else seed,
                                      mu if grad_z is None else grad_z, mu if grad_kl is None else grad_kl, gmu, glv,
                                      gpm if prior else gmu, gpv if prior else glv, B, *mu.stride(), *logvar.stride(),
                                      *_strides(pm), *_strides(pv), *_strides(eps), *_strides(grad_z),
                                      0 if grad_kl is None else grad_kl.stride(0)), bound)
    return grads
