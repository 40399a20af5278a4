r"""The log-gamma pieces of the count likelihoods, in float32, written so that nothing cancels.

Triton has no ``lgamma`` or ``digamma`` that runs in the interpreter, and the textbook
``lgamma(x + theta) - lgamma(theta) - lgamma(x + 1)`` cancels catastrophically once theta or x
is large (at theta = 1e6 each term is about 1.4e7, float32 keeps them to about one nat). The
count likelihoods are therefore evaluated in Loader's saddle-point form (C. Loader, "Fast and
accurate computation of binomial probabilities", 2000; R's ``dbinom``/``dnbinom``), from pieces
that are each about as large as the result:

* ``stirlerr(z) = lgamma(z + 1) - (z + 1/2) log z + z - log(2 pi) / 2`` for z > 0, the error of
  Stirling's formula: the asymptotic series
  ``1/(12 z) - 1/(360 z^3) + 1/(1260 z^5) - 1/(1680 z^7) + 1/(1188 z^9)`` for z >= 3 (truncation
  below 1.1e-8), and below 3 the same series at z + 3 with the recurrence's logs,
  ``(z + 1/2) log(1 + 3/z) + log((z + 3)^2 / ((z + 1)(z + 2))) - 3 + phi(z + 3)``, whose terms are
  at most ~10 (absolute error below 3e-6 at z < 3, 1e-7 above).
* ``stirlerr_d(z)``, its derivative (``digamma(z + 1) - log z - 1/(2 z)``), the same way:
  ``-1/(12 z^2) + 1/(120 z^4) - 1/(252 z^6) + 1/(240 z^8) - 1/(132 z^10)`` for z >= 3, and below
  ``log(1 + 3/z) - 1/(2 (z + 3)) - 1/(2 z) - 1/(z + 1) - 1/(z + 2) + phi'(z + 3)``.
* ``bd0(a, m, d, log_am) = a log(a/m) + m - a`` (the deviance of a from m), given ``d = a - m``
  and ``log(a/m)`` formed without cancellation by the caller: with ``v = d / (a + m)``, the series
  ``d v + 2 a (v^3/3 + v^5/5 + v^7/7 + v^9/9)`` where |v| < 0.1 (truncation below 1e-10
  relative), the closed form above (where it cancels by a factor below 20).
* ``log1p_acc(u)`` for u > -1 and ``expm1_acc(v)``: a few ulps, exact as u, v -> 0
  (``log(1 + u) u / ((1 + u) - 1)``, Kahan's ``(e^v - 1) v / log(e^v)``); ``kappa(r) = r/(1 + r)
  - log(1 + r)``: its series below |r| = 0.1 (truncation below 2e-7 relative), else the closed
  form the caller forms without cancellation.

All are plain float32 arithmetic, ``_math.log_f32`` (2 ulp) and ``_math.recip`` (4 ulp) for
positive denominators, so they run unchanged in Triton's interpreter and the CPU tests check what
a GPU runs; with ``F64`` (float64 inputs) the exact ``tl.log`` and division instead.
"""

import triton
import triton.language as tl

from ._math import log_f32, recip


@triton.jit
def log_(v, F64: tl.constexpr):
    # log(v), v > 0: exact in float64, ``log_f32`` in float32
    if F64:
        return tl.log(v)
    else:
        return log_f32(v)


@triton.jit
def rcp(v, F64: tl.constexpr):
    # 1 / v, v > 0: exact in float64, ``recip`` in float32
    if F64:
        return 1.0 / v
    else:
        return recip(v)


# float32: the series above z = 3 to 1/z^9, the recurrence over 3 steps below; float64: above 15 to
# 1/z^15 (truncation below 1e-19), over 15 steps below
SHIFT32 = tl.constexpr(3)
SHIFT64 = tl.constexpr(15)


@triton.jit
def _phi(w, F64: tl.constexpr):
    # Stirling's series sum_n C_n / w^(2n - 1), C_n = B_2n / (2n (2n - 1)), at w >= the shift
    r = rcp(w, F64)
    r2 = r * r
    if F64:
        p = -2.955065359477124e-02 * r2 + 6.410256410256410e-03
        p = (p * r2 - 1.917526917526918e-03) * r2 + 8.417508417508417e-04
    else:
        p = r2 * 0.0 + 8.417508417508417e-04
    p = p * r2 - 5.952380952380953e-04
    p = p * r2 + 7.936507936507937e-04
    p = p * r2 - 2.777777777777778e-03
    return (p * r2 + 8.333333333333333e-02) * r


@triton.jit
def _phi_d(w, F64: tl.constexpr):
    # phi'(w) = -sum_n (2n - 1) C_n / w^(2n)
    r = rcp(w, F64)
    r2 = r * r
    if F64:
        p = 4.432598039215686e-01 * r2 - 8.333333333333333e-02
        p = (p * r2 + 2.109279609279609e-02) * r2 - 7.575757575757576e-03
    else:
        p = r2 * 0.0 - 7.575757575757576e-03
    p = p * r2 + 4.166666666666667e-03
    p = p * r2 - 3.968253968253968e-03
    p = p * r2 + 8.333333333333333e-03
    return (p * r2 - 8.333333333333333e-02) * r2


@triton.jit
def stirlerr(z, F64: tl.constexpr):
    # lgamma(z + 1) - (z + 1/2) log z + z - log(2 pi)/2, z > 0, as the series at z + k less the
    # recurrence's logs: (z + 1/2) log(1 + k/z) + log((z + k)^k / prod_i (z + i)) - k + phi(z + k)
    K: tl.constexpr = SHIFT64 if F64 else SHIFT32
    big = z >= K
    zs = tl.where(big, 1.0 * K, z)  # the small branch only ever sees z < K
    num = zs + K
    den = zs + 1.0
    for i in tl.static_range(2, K + 1):
        num, den = num * (zs + K), den * (zs + i)
    small = (zs + 0.5) * log_(rcp(zs, F64) * K + 1.0, F64) + log_(num * rcp(den, F64), F64) - K
    return tl.where(big, _phi(z, F64), small + _phi(zs + K, F64))


@triton.jit
def stirlerr_d(z, F64: tl.constexpr):
    # d/dz stirlerr(z) = digamma(z + 1) - log z - 1/(2 z) = log(1 + k/z) + 1/(2 (z + k)) - 1/(2 z)
    # - sum_i 1/(z + i) + phi'(z + k), z > 0
    K: tl.constexpr = SHIFT64 if F64 else SHIFT32
    big = z >= K
    zs = tl.where(big, 1.0 * K, z)
    acc = log_(rcp(zs, F64) * K + 1.0, F64) + 0.5 * rcp(zs + K, F64) - 0.5 * rcp(zs, F64)
    for i in tl.static_range(1, K + 1):
        acc -= rcp(zs + i, F64)
    return tl.where(big, _phi_d(z, F64), acc + _phi_d(zs + K, F64))


@triton.jit
def bd0(a, m, d, log_am, F64: tl.constexpr):
    # a log(a/m) + m - a with d = a - m and log_am = log(a/m) given accurately: below |v| = 0.1,
    # v = d / (a + m), the series d v + 2 a sum_j v^(2j+1) / (2j+1) (to v^9, or v^21 in float64)
    v = d * rcp(a + m, F64)
    v2 = v * v
    N: tl.constexpr = 10 if F64 else 4
    p = v2 * 0.0 + 1.0 / (2 * N + 1)
    for i in tl.static_range(1, N):
        p = p * v2 + 1.0 / (2 * (N - i) + 1)
    series = d * v + 2.0 * a * (v * v2) * p
    return tl.where(tl.abs(v) < 0.1, series, a * log_am - d)


@triton.jit
def log1p_acc(u, F64: tl.constexpr):
    # log(1 + u) for u > -1, to a few ulps: log(w), w = 1 + u rounded, corrected by the rounding
    # error c = u - (w - 1) (exact): log(1 + u) = log(w) + log(1 + c/w) ~ log(w) + c/w (float32);
    # float64: the rounding divided back out (Kahan)
    w = 1.0 + u
    if F64:
        return tl.where(w == 1.0, u, tl.log(w) * (u / tl.where(w == 1.0, 1.0, w - 1.0)))
    else:
        return log_f32(w) + (u - (w - 1.0)) * recip(w)


@triton.jit
def expm1_acc(v, F64: tl.constexpr):
    # exp(v) - 1 to a few ulps: below |v| = 0.5 its Taylor series to v^9 (float32; truncation
    # 3e-10 relative) or the rounding of exp(v) divided back out by its log (float64, Kahan),
    # above it e^v - 1 as it is (exact enough, and no log of an underflowed e^v)
    u = tl.exp(v)
    near = tl.abs(v) < 0.5
    if F64:
        near = near & (u != 1.0)
        small = (u - 1.0) * (v / tl.log(tl.where(near, u, 2.0)))
    else:
        p = 2.755731922398589e-06 * v + 2.48015873015873e-05
        p = p * v + 1.984126984126984e-04
        p = p * v + 1.388888888888889e-03
        p = p * v + 8.333333333333333e-03
        p = p * v + 4.1666666666666664e-02
        p = p * v + 0.16666666666666666
        p = p * v + 0.5
        small = (p * v + 1.0) * v
    return tl.where(near, small, tl.where(u == 1.0, v, u - 1.0))


@triton.jit
def kappa(r, closed, F64: tl.constexpr):
    # r/(1 + r) - log(1 + r) for r > -1, given its closed form formed accurately by the caller:
    # below |r| = 0.1 the series -r^2/2 + 2r^3/3 - 3r^4/4 + ... - 7r^8/8 (float64: below 1e-3,
    # where the closed form loses at most 2e3 ulps)
    p = -0.875 * r + 0.8571428571428571
    p = p * r - 0.8333333333333334
    p = p * r + 0.8
    p = p * r - 0.75
    p = p * r + 0.6666666666666666
    p = p * r - 0.5
    SMALL: tl.constexpr = 1e-3 if F64 else 0.1
    return tl.where(tl.abs(r) < SMALL, r * r * p, closed)
