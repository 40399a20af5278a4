r"""K reparameterized samples of a diagonal Gaussian and their log importance ratios, fused.

For mu, logvar of a (B, L) view, std = exp(logvar / 2), and K draws eps_k ~ N(0, I):

    z_k        = mu + std * eps_k                                              (K, B, L)
    lr[k, b]   = log N(z_k; 0, I) - log q(z_k | x) = 0.5 * sum_j eps_kj^2 - z_kj^2 + logvar_j

and with upstream gradients gz (K, B, L) and glr (K, B), per sample k (summed over k):

    d lr / d mu = -z,        d lr / d logvar = 0.5 - 0.5 z std eps       (``PATH`` off)
    d lr / d mu = eps/std - z,  d lr / d logvar = 0.5 std eps (eps/std - z)  (``PATH``: log q
        with mu and logvar held constant, so their gradient flows through z only: the
        "sticking the landing" form that DReG needs)
    grad_mu     = sum_k w_k gz_k + glr_k d lr_k / d mu
    grad_logvar = sum_k w_k gz_k 0.5 std eps_k + glr_k d lr_k / d logvar

where ``w`` (K, B) multiplies the gradient that reaches z from elsewhere (the doubly
reparameterized estimator's extra importance weight; 1 without ``HAS_W``).

With a learned prior N(pm, exp(pv)) (``HAS_PRIOR``; pm, pv (B, L) like mu, any strides), r = z - pm
= (mu - pm) + std eps and rw = r exp(-pv):

    lr[k, b]   = log N(z_k; pm, e^pv) - log q(z_k | x) = 0.5 * sum_j eps^2 - r rw + logvar - pv
    d lr / d mu = -rw,   d lr / d logvar = 0.5 - 0.5 rw std eps,
    d lr / d pm = rw,    d lr / d pv = 0.5 (r rw - 1)

(never with ``PATH``: the op refuses DReG's path gradient with a prior). The noise is drawn in
registers from ``_noise.py``'s stream (sample k = Philox counter word 3) and drawn again in
backward: it never touches memory. The forward writes z and lr once; the backward reads gz once
and writes grad_mu, grad_logvar once, looping over the K samples in each program.
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
def _fwd_quarter(mu_ptr, lv_ptr, pm_ptr, pv_ptr, eps_ptr, z_ptr, r, b, row_ok, cols, col_ok, eps, smb, sml, svb, svl,
                 spb, spl, sqb, sql, seb, sel, L: tl.constexpr, ACC: tl.constexpr, HAS_EPS: tl.constexpr,
                 HAS_PRIOR: tl.constexpr, EVEN: tl.constexpr):
    # z at rows r = k * B + b for one quarter of the columns; returns its log-ratio terms
    mask = row_ok[:, None] & col_ok[None, :]
    lv = load(lv_ptr + b[:, None] * svb + cols[None, :] * svl, mask, EVEN).to(ACC)
    mu = load(mu_ptr + b[:, None] * smb + cols[None, :] * sml, mask, EVEN).to(ACC)
    if HAS_EPS:
        eps = load(eps_ptr + r[:, None] * seb + cols[None, :] * sel, mask, EVEN)
    eps = eps.to(ACC)
    se = std_of(lv, ACC) * eps
    z = mu + se
    store(z_ptr + r[:, None] * L + cols[None, :], z.to(z_ptr.dtype.element_ty), mask, EVEN)
    if HAS_PRIOR:
        pm = load(pm_ptr + b[:, None] * spb + cols[None, :] * spl, mask, EVEN).to(ACC)
        pv = load(pv_ptr + b[:, None] * sqb + cols[None, :] * sql, mask, EVEN).to(ACC)
        d = (mu - pm) + se  # z - pm without z's rounding
        return tl.where(mask, 0.5 * (eps * eps - d * d * exp_of(-pv, ACC) + (lv - pv)), 0.0)
    return tl.where(mask, 0.5 * (eps * eps - z * z + lv), 0.0)


@triton.jit
def _reparameterize_iw_fwd_kernel(
    # pointers: inputs (the prior's only with HAS_PRIOR; eps only with HAS_EPS, the seed of the
    # drawn noise otherwise), outputs
    mu_ptr,
    lv_ptr,
    pm_ptr,
    pv_ptr,
    eps_ptr,
    seed_ptr,
    z_ptr,
    lr_ptr,
    # sizes and strides (mu, logvar, the prior: (B, L), any strides; eps: (K * B, L) rows; z dense)
    B,
    KB,
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
    # shapes and tiling (``_noise.quarter_plan`` over the K * B sample rows)
    L: tl.constexpr,
    Q: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    EVEN: tl.constexpr,
    # math
    ACC: tl.constexpr,
    # modes: eps given (else drawn), a learned prior (else N(0, I))
    HAS_EPS: tl.constexpr,
    HAS_PRIOR: tl.constexpr,
):
    # rows r = k * B + b of the (K * B, L) output: sample k of row b
    r = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = r < KB
    k = r // B
    b = r - k * B
    seed = 0
    if not HAS_EPS:
        seed = tl.load(seed_ptr)
    acc = tl.zeros([BLOCK_B, BLOCK_Q], ACC)
    for q0 in tl.range(0, Q, BLOCK_Q):
        q = q0 + tl.arange(0, BLOCK_Q)
        eps = normals_or_zeros(seed, b, q, k.to(tl.uint32)[:, None], not HAS_EPS)
        for i in tl.static_range(4):
            cols = i * Q + q
            acc += _fwd_quarter(mu_ptr, lv_ptr, pm_ptr, pv_ptr, eps_ptr, z_ptr, r, b, row_ok, cols,
                                (q < Q) & (cols < L), eps[i], stride_mb, stride_ml, stride_vb, stride_vl, stride_pmb,
                                stride_pml, stride_pvb, stride_pvl, stride_eb, stride_el, L, ACC, HAS_EPS, HAS_PRIOR,
                                EVEN)
    store(lr_ptr + r, tl.sum(acc, axis=1).to(lr_ptr.dtype.element_ty), row_ok, EVEN)


@triton.jit
def _bwd_terms(mu, lv, std, inv_std, eps, gz, glr, w, HAS_GZ: tl.constexpr, HAS_GLR: tl.constexpr,
               HAS_W: tl.constexpr, PATH: tl.constexpr):
    # (d/dmu, d/dlogvar) of one sample's contributions (module docstring)
    z = mu + std * eps
    half_se = 0.5 * std * eps
    dmu = tl.zeros(mu.shape, mu.dtype)
    dlv = tl.zeros(mu.shape, mu.dtype)
    if HAS_GZ:
        g = gz * w[:, None] if HAS_W else gz
        dmu += g
        dlv += g * half_se
    if HAS_GLR:
        if PATH:
            t = glr[:, None] * (eps * inv_std - z)
            dmu += t
            dlv += t * half_se
        else:
            dmu -= glr[:, None] * z
            dlv += glr[:, None] * (0.5 - z * half_se)
    return dmu, dlv


@triton.jit
def _bwd_quarter(mu, lv, dmu, dlv, gz_ptr, glr, w, eps_ptr, k, B, rows, mask, cols, e, sek, seb, sel,
                 L: tl.constexpr, ACC: tl.constexpr, HAS_EPS: tl.constexpr, HAS_GZ: tl.constexpr,
                 HAS_GLR: tl.constexpr, HAS_W: tl.constexpr, PATH: tl.constexpr, EVEN: tl.constexpr):
    # adds sample k's terms to one quarter's (dmu, dlv)
    if HAS_EPS:
        e = load(eps_ptr + k * sek + rows[:, None] * seb + cols[None, :] * sel, mask, EVEN)
    gz = dmu
    if HAS_GZ:
        gz = load(gz_ptr + (k * B + rows[:, None]) * L + cols[None, :], mask, EVEN).to(ACC)
    std = std_of(lv, ACC)
    a, b = _bwd_terms(mu, lv, std, 1.0 / std, e.to(ACC), gz, glr, w, HAS_GZ, HAS_GLR, HAS_W, PATH)
    return dmu + a, dlv + b


@triton.jit
def _bwd_quarter_prior(mpm, ipv, lv, dmu, dlv, dpm, dpv, gz_ptr, glr, w, eps_ptr, k, B, rows, mask, cols, e, sek, seb,
                       sel, L: tl.constexpr, ACC: tl.constexpr, HAS_EPS: tl.constexpr, HAS_GZ: tl.constexpr,
                       HAS_GLR: tl.constexpr, HAS_W: tl.constexpr, EVEN: tl.constexpr):
    # adds sample k's terms to one quarter's (dmu, dlv, dpm, dpv) under a prior: mpm = mu - pm,
    # ipv = exp(-pv) (module docstring)
    if HAS_EPS:
        e = load(eps_ptr + k * sek + rows[:, None] * seb + cols[None, :] * sel, mask, EVEN)
    e = e.to(ACC)
    std = std_of(lv, ACC)
    half_se = 0.5 * std * e
    if HAS_GZ:
        gz = load(gz_ptr + (k * B + rows[:, None]) * L + cols[None, :], mask, EVEN).to(ACC)
        g = gz * w[:, None] if HAS_W else gz
        dmu += g
        dlv += g * half_se
    if HAS_GLR:
        r = mpm + std * e
        rw = r * ipv
        t = glr[:, None] * rw
        dmu -= t
        dlv += glr[:, None] * 0.5 - t * half_se
        dpm += t
        dpv += (0.5 * glr[:, None]) * (r * rw - 1.0)
    return dmu, dlv, dpm, dpv


@triton.jit
def _reparameterize_iw_bwd_kernel(
    # pointers: the forward's inputs, the upstream gradients (and DReG's weights), the outputs
    # (the prior's with HAS_PRIOR)
    mu_ptr,
    lv_ptr,
    pm_ptr,
    pv_ptr,
    eps_ptr,
    seed_ptr,
    gz_ptr,
    glr_ptr,
    w_ptr,
    gmu_ptr,
    glv_ptr,
    gpm_ptr,
    gpv_ptr,
    # sizes and strides (mu, logvar, the prior, eps: any strides; gz (K, B, L), glr and w (K, B): dense)
    B,
    stride_mb,
    stride_ml,
    stride_vb,
    stride_vl,
    stride_pmb,
    stride_pml,
    stride_pvb,
    stride_pvl,
    stride_ek,
    stride_eb,
    stride_el,
    # shapes and tiling (``_noise.quarter_plan`` over the B rows; K samples each)
    K: tl.constexpr,
    L: tl.constexpr,
    Q: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    EVEN: tl.constexpr,
    # math
    ACC: tl.constexpr,
    # modes: eps given (else drawn again), which upstream gradients, DReG's weights, path gradient,
    # a learned prior (only with HAS_GLR and never with PATH: the launcher and the op see to it)
    HAS_EPS: tl.constexpr,
    HAS_GZ: tl.constexpr,
    HAS_GLR: tl.constexpr,
    HAS_W: tl.constexpr,
    PATH: tl.constexpr,
    HAS_PRIOR: tl.constexpr,
):
    # one program: BLOCK_B rows, all K samples (each drawn again), the four quarters at once:
    # per quarter i (a tuple entry) its columns, mask, mu, logvar and the two sums over k
    rows = tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    seed = 0
    if not HAS_EPS:
        seed = tl.load(seed_ptr)
    for q0 in tl.range(0, Q, BLOCK_Q):
        q = q0 + tl.arange(0, BLOCK_Q)
        cols, masks, mus, lvs, gmus, glvs = (), (), (), (), (), ()
        mpms, ipvs, gpms, gpvs = (), (), (), ()  # with a prior: mu - pm, exp(-pv), their two sums over k
        for i in tl.static_range(4):
            c = i * Q + q
            m = row_ok[:, None] & ((q < Q) & (c < L))[None, :]
            cols, masks = cols + (c,), masks + (m,)
            mus += (load(mu_ptr + rows[:, None] * stride_mb + c[None, :] * stride_ml, m, EVEN).to(ACC),)
            lvs += (load(lv_ptr + rows[:, None] * stride_vb + c[None, :] * stride_vl, m, EVEN).to(ACC),)
            gmus += (tl.zeros([BLOCK_B, BLOCK_Q], ACC),)
            glvs += (tl.zeros([BLOCK_B, BLOCK_Q], ACC),)
            if HAS_PRIOR:
                pm = load(pm_ptr + rows[:, None] * stride_pmb + c[None, :] * stride_pml, m, EVEN).to(ACC)
                pv = load(pv_ptr + rows[:, None] * stride_pvb + c[None, :] * stride_pvl, m, EVEN).to(ACC)
                mpms += (mus[i] - pm,)
                ipvs += (exp_of(-pv, ACC),)
                gpms += (tl.zeros([BLOCK_B, BLOCK_Q], ACC),)
                gpvs += (tl.zeros([BLOCK_B, BLOCK_Q], ACC),)
        for k in range(K):
            kk = k + tl.zeros([], tl.int64)
            glr = tl.zeros([BLOCK_B], ACC)
            w = tl.zeros([BLOCK_B], ACC)
            if HAS_GLR:
                glr = load(glr_ptr + kk * B + rows, row_ok, EVEN).to(ACC)
            if HAS_W:
                w = load(w_ptr + kk * B + rows, row_ok, EVEN).to(ACC)
            eps = normals_or_zeros(seed, rows, q, k, not HAS_EPS)
            new_gmus, new_glvs = (), ()
            if HAS_PRIOR:
                new_gpms, new_gpvs = (), ()
                for i in tl.static_range(4):
                    a, b, gp, gv = _bwd_quarter_prior(mpms[i], ipvs[i], lvs[i], gmus[i], glvs[i], gpms[i], gpvs[i],
                                                      gz_ptr, glr, w, eps_ptr, kk, B, rows, masks[i], cols[i], eps[i],
                                                      stride_ek, stride_eb, stride_el, L, ACC, HAS_EPS, HAS_GZ,
                                                      HAS_GLR, HAS_W, EVEN)
                    new_gmus, new_glvs = new_gmus + (a,), new_glvs + (b,)
                    new_gpms, new_gpvs = new_gpms + (gp,), new_gpvs + (gv,)
                gpms, gpvs = new_gpms, new_gpvs
            else:
                for i in tl.static_range(4):
                    a, b = _bwd_quarter(mus[i], lvs[i], gmus[i], glvs[i], gz_ptr, glr, w, eps_ptr, kk, B, rows,
                                        masks[i], cols[i], eps[i], stride_ek, stride_eb, stride_el, L, ACC, HAS_EPS,
                                        HAS_GZ, HAS_GLR, HAS_W, PATH, EVEN)
                    new_gmus, new_glvs = new_gmus + (a,), new_glvs + (b,)
            gmus, glvs = new_gmus, new_glvs
        out = rows[:, None] * L
        for i in tl.static_range(4):
            store(gmu_ptr + out + cols[i][None, :], gmus[i].to(gmu_ptr.dtype.element_ty), masks[i], EVEN)
            store(glv_ptr + out + cols[i][None, :], glvs[i].to(glv_ptr.dtype.element_ty), masks[i], EVEN)
            if HAS_PRIOR:
                store(gpm_ptr + out + cols[i][None, :], gpms[i].to(gpm_ptr.dtype.element_ty), masks[i], EVEN)
                store(gpv_ptr + out + cols[i][None, :], gpvs[i].to(gpv_ptr.dtype.element_ty), masks[i], EVEN)


def _eps_strides(eps):
    return eps.stride() if eps is not None else (0, 0, 0)


def _strides(t):
    return t.stride() if t is not None else (0, 0)


def reparameterize_iw_fwd(mu, logvar, K, eps=None, seed=None, prior_mu=None, prior_logvar=None):
    """Launch the forward on 2-D (B, L) views (any strides), one program per block of the K * B
    sample rows. eps: (K, B, L) of any float dtype, or None to draw it from ``seed`` (a
    one-element int64 device tensor). prior_mu, prior_logvar: (B, L) views of mu's dtype (any
    strides), or None for N(0, I). Returns ``(z, lr)``: z contiguous (K, B, L) of mu's dtype,
    lr (K, B) float32 (float64 for float64 input)."""
    B, L = mu.shape
    z = torch.empty((K, B, L), device=mu.device, dtype=mu.dtype)
    lr = torch.empty((K, B), device=mu.device, dtype=sum_dtype(mu.dtype))
    if B == 0 or K == 0:
        return z, lr
    if L == 0:
        return z, lr.zero_()
    if eps is None and seed is None:
        raise ValueError("reparameterize_iw_fwd: give eps or seed to draw z")
    prior = prior_mu is not None
    kernel = _reparameterize_iw_fwd_kernel
    programs, bound = quarter_plan(kernel, K * B, L, mu.dtype, (("HAS_EPS", eps is not None), ("HAS_PRIOR", prior)))
    eps = None if eps is None else eps.reshape(K * B, L)  # a view for any (k, b)-contiguous layout
    _launch.launch(kernel, programs, (mu, logvar, prior_mu if prior else mu, prior_logvar if prior else mu,
                                      mu if eps is None else eps, mu if seed is None else seed, z, lr, B,
                                      K * B, *mu.stride(), *logvar.stride(), *_strides(prior_mu),
                                      *_strides(prior_logvar), *_strides(eps)), bound)
    return z, lr


def reparameterize_iw_bwd(mu, logvar, K, eps, seed, grad_z, grad_lr, weight=None, path=False, prior_mu=None,
                          prior_logvar=None):
    """Launch the backward. grad_z (K, B, L) contiguous or None, grad_lr (K, B) contiguous or
    None, weight (K, B) contiguous or None (multiplies grad_z per sample and row). Returns
    contiguous ``(grad_mu, grad_logvar)`` of mu's and logvar's dtype; with a prior (never with
    ``path``), ``(grad_mu, grad_logvar, grad_prior_mu, grad_prior_logvar)``, the prior's None
    without grad_lr (only the log ratio reaches it)."""
    B, L = mu.shape
    if prior_mu is not None and path:
        raise ValueError("reparameterize_iw_bwd: no path gradient with a prior")
    gmu = torch.empty((B, L), device=mu.device, dtype=mu.dtype)
    glv = torch.empty((B, L), device=mu.device, dtype=logvar.dtype)
    prior = prior_mu is not None and grad_lr is not None and K > 0
    gpm = torch.empty((B, L), device=mu.device, dtype=prior_mu.dtype) if prior else None
    gpv = torch.empty((B, L), device=mu.device, dtype=prior_logvar.dtype) if prior else None
    grads = (gmu, glv) if prior_mu is None else (gmu, glv, gpm, gpv)
    if B == 0 or L == 0:
        return grads
    if (grad_z is None and grad_lr is None) or K == 0:
        gmu.zero_(), glv.zero_()
        return grads
    kernel = _reparameterize_iw_bwd_kernel
    programs, bound = quarter_plan(kernel, B, L, mu.dtype, (
        ("K", K), ("HAS_EPS", eps is not None), ("HAS_GZ", grad_z is not None), ("HAS_GLR", grad_lr is not None),
        ("HAS_W", weight is not None), ("PATH", bool(path)), ("HAS_PRIOR", prior)))
    pm, pv = (prior_mu, prior_logvar) if prior else (None, None)
    _launch.launch(kernel, programs, (mu, logvar, mu if pm is None else pm, mu if pv is None else pv,
                                      mu if eps is None else eps, mu if seed is None else seed,
                                      mu if grad_z is None else grad_z, mu if grad_lr is None else grad_lr,
                                      mu if weight is None else weight, gmu, glv, gpm if prior else gmu,
                                      gpv if prior else glv, B, *mu.stride(), *logvar.stride(), *_strides(pm),
                                      *_strides(pv), *_eps_strides(eps)), bound)
    return grads
