"""Elementwise float32 math the kernels share, cheaper than the library calls it replaces.

On an H100/H200 ``tl.log`` is a ~25-instruction exact routine, a division ~8 instructions with
a slow-path branch, and ``tl.sin``/``tl.cos`` over 100 (range reduction for any argument). The
kernels stream their bytes at about 70 instructions per element at the most, so they use:

* ``log1p_01(e)``: log(1 + e) for e in [0, 1], a degree-8 polynomial (3.6 ulp relative, exact
  as e -> 0, where ``log(1 + e)`` would round to 0);
* ``log_pos(v)``: log(v) for a positive normal float32: v = m * 2**k with m in [2/3, 4/3),
  log(m) = f * P(f), f = m - 1, P of degree 6 (1.1e-6 relative error in log(m));
* ``recip(v)``: 1 / v for v > 0 as rsqrt(v)^2 on the special-function unit (~4 ulp);
* ``log_f32(v)``: log(v) for a positive normal float32 to about 2 ulp (relative to log(m): the
  result keeps full relative precision near v = 1), in ~16 instructions where ``tl.log`` takes
  ~26: Cephes' ``logf`` (m in [sqrt(1/2), sqrt(2)), a degree-8 polynomial).

``exp_of(v, ACC)`` is exp in the kernel's compute dtype: ``exp2`` on the special-function unit in
float32, the library's exp in float64.

All of them run unchanged in Triton's interpreter (NumPy), so the CPU tests check the same
approximations a GPU runs. float64 kernels use the exact library functions instead.
"""

import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)
LN2 = tl.constexpr(0.6931471805599453)


@triton.jit
def log1p_01(e):
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
def log_pos(v):
    # log(v), v > 0 normal: k = exponent of v relative to 2/3, f = v / 2**k - 1 in [-1/3, 1/3)
    bits = v.to(tl.int32, bitcast=True)
    k = (bits - 0x3F2AAAAB) >> 23
    f = (bits - (k << 23)).to(tl.float32, bitcast=True) - 1.0
    p = 0.17065296 * f - 0.19407688
    p = p * f + 0.19802687
    p = p * f - 0.24841659
    p = p * f + 0.3333767
    p = p * f - 0.5000224
    p = p * f + 0.9999999
    return k.to(tl.float32) * LN2 + f * p


@triton.jit
def recip(v):
    # 1 / v for v > 0, without a division
    r = tl.rsqrt(v)
    return r * r


@triton.jit
def log_f32(v):
    # log(v), v > 0 normal: v = m 2^k, m in [sqrt(1/2), sqrt(2)), f = m - 1;
    # log(1 + f) = f - f^2/2 + f^3 P(f), P of degree 8 (Cephes logf), k ln 2 in two parts
    bits = v.to(tl.int32, bitcast=True)
    k = (bits - 0x3F3504F3) >> 23
    f = (bits - (k << 23)).to(tl.float32, bitcast=True) - 1.0
    p = 7.0376836292e-2 * f - 1.1514610310e-1
    p = p * f + 1.1676998740e-1
    p = p * f - 1.2420140846e-1
    p = p * f + 1.4249322787e-1
    p = p * f - 1.6668057665e-1
    p = p * f + 2.0000714765e-1
    p = p * f - 2.4999993993e-1
    p = p * f + 3.3333331174e-1
    f2 = f * f
    e = k.to(tl.float32)
    r = f2 * f * p + e * -2.12194440e-4 - 0.5 * f2
    return (f + r) + e * 0.693359375


@triton.jit
def exp_of(v, ACC: tl.constexpr):
    # exp(v) in the compute dtype ACC: one MUFU.EX2 and a multiply in float32
    if ACC == tl.float64:
        return tl.exp(v)
    else:
        return tl.exp2(v * LOG2E)
