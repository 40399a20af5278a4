r"""Per element: the Poisson and (zero-inflated) negative binomial log-probabilities of a count
and their derivatives, exact in float32 over the whole range (``_gamma.py`` for the pieces).

For a count x >= 0, mean mu >= 0 and inverse dispersion theta = exp(lt) > 0 (variance
``mu + mu^2 / theta``), with ``n = x + theta``, ``t = theta + mu`` and ``d = theta (x - mu) / t``:

    log NB(x) = lgamma(x + theta) - lgamma(theta) - lgamma(x + 1) + theta log(theta/t) + x log(mu/t)
              = -theta log(1 + mu/theta)                                        x = 0
              = -log(1 + x/theta)/2 - log(2 pi x)/2 + stirlerr(n) - stirlerr(theta) - stirlerr(x)
                - bd0(theta, theta n/t) - bd0(x, mu n/t)                        x > 0 (Loader)

where ``theta - theta n/t = -d`` and ``x - mu n/t = d`` are formed without cancellation, and
``log(theta / (theta n/t)) = log(t/n)``. Every piece is about as large as the result, so nothing
cancels: the textbook form loses up to a nat at theta = 1e6; this one keeps float32's precision
relative to the pieces (about 1e-6 nats on ordinary counts). Poisson (theta -> oo) is
``-mu`` at x = 0 and ``-log(2 pi x)/2 - stirlerr(x) - bd0(x, mu)`` above.

Derivatives, with r = (mu - x)/n (also without cancellation: the terms of the textbook form that
cancel as theta -> oo, or as theta -> 0, combined by hand):

    d/d log mu    = d                                         (Poisson: x - mu)
    d/d log theta = x/(2 n) + theta (stirlerr'(n) - stirlerr'(theta)) + theta kappa(r),
    kappa(r)      = r/(1 + r) - log(1 + r) = (mu - x)/t - log(t/n)      (a series for small r)

Zero inflation with dropout logits rho (dropout probability sigmoid(rho), as scvi-tools'
``log_zinb_positive``): ``softplus(L0 - rho) - softplus(-rho)`` at x = 0, where L0 is the NB term,
and ``L - softplus(rho)`` above; d/d rho is ``sigmoid(-rho) - sigmoid(L0 - rho)`` and
``-sigmoid(rho)`` (the first as ``sigmoid(-rho) sigmoid(rho - L0) (1 - e^L0)``, which does not
cancel), and the NB derivatives are weighted by ``sigmoid(L0 - rho)`` at x = 0.
log theta is clamped at 80 (theta = 5.5e34; the Poisson limit to float32's precision).
"""

import triton
import triton.language as tl

from ._gamma import bd0, expm1_acc, kappa, log1p_acc, log_, rcp, stirlerr, stirlerr_d
from ._math import log1p_01

LOG_2PI = tl.constexpr(1.8378770664093453)
MAX_LOG_THETA = tl.constexpr(80.0)


@triton.jit
def poisson(mu, log_mu, x, F64: tl.constexpr):
    # (log Poisson(x; mu), d/d log mu)
    pos = x > 0
    xs = tl.where(pos, x, 1.0)  # the x > 0 branch never sees 0
    log_x = log_(xs, F64)
    term = -0.5 * (LOG_2PI + log_x) - stirlerr(xs, F64) - bd0(xs, mu, xs - mu, log_x - log_mu, F64)
    return tl.where(pos, term, -mu), x - mu


@triton.jit
def theta_terms(lt, F64: tl.constexpr):
    # what depends on log theta alone: (theta, 1/theta, stirlerr(theta), stirlerr'(theta)), from
    # lt clamped at MAX_LOG_THETA; a per-gene log theta's once per column, not per element
    theta = tl.exp(tl.minimum(lt, MAX_LOG_THETA))
    return theta, rcp(theta, F64), stirlerr(theta, F64), stirlerr_d(theta, F64)


@triton.jit
def negative_binomial(mu, log_mu, x, th, F64: tl.constexpr):
    # (log NB(x; mu, theta), d/d log mu, d/d log theta, theta / (theta + mu)) (module docstring),
    # th = theta_terms(log theta)
    theta, r_theta, s_theta, ds_theta = th
    t = theta + mu
    n = x + theta
    r_t = rcp(t, F64)
    w = theta * r_t  # in (0, 1]: theta / t without theta^2
    d = (x - mu) * w
    log_tn = log_(t / n, F64)  # a correctly rounded quotient: kappa's closed form cancels by up to 20x
    pos = x > 0
    xs = tl.where(pos, x, 1.0)
    log_x = log_(xs, F64)
    big = (-0.5 * log1p_acc(xs * r_theta, F64) - 0.5 * (LOG_2PI + log_x) + stirlerr(n, F64)
           - s_theta - stirlerr(xs, F64) - bd0(theta, n * w, -d, log_tn, F64)
           - bd0(xs, mu * (n * r_t), d, log_x - log_mu + log_tn, F64))
    term = tl.where(pos, big, -theta * log1p_acc(mu * r_theta, F64))
    # theta d/d theta of the gamma and log terms: x/(2n) + theta (stirlerr'(n) - stirlerr'(theta))
    # + theta kappa(r), r = (mu - x)/n, 1 + r = t/n: kappa's closed form is (mu - x)/t - log(t/n)
    r_n = rcp(n, F64)
    kap = kappa((mu - x) * r_n, (mu - x) / t - log_tn, F64)
    d_lt = 0.5 * x * r_n + theta * (stirlerr_d(n, F64) - ds_theta) + theta * kap
    return term, d, d_lt, w


@triton.jit
def count_terms(mu, log_mu, x, lt, q, NB: tl.constexpr, HAS_Q: tl.constexpr, F64: tl.constexpr):
    # per element: (log p, d/d log mu, d/d log theta, d/dq, d/d mu where x = 0) of the negative
    # binomial (NB; lt: its log theta, per element or per column) or the Poisson, zero-inflated
    # with dropout logits q (HAS_Q); d/d mu at x = 0 is -theta/(theta + mu) (Poisson: -1) times
    # the zero inflation's weight, finite where mu = 0 (d/d log mu / mu is not)
    if NB:
        term, a, d_lt, w = negative_binomial(mu, log_mu, x, theta_terms(lt, F64), F64)
    else:
        term, a = poisson(mu, log_mu, x, F64)
        d_lt = a * 0.0
        w = d_lt + 1.0
    dq = d_lt
    if HAS_Q:
        term, weight, dq = zero_inflate(term, x, q, F64)
        a, d_lt, w = a * weight, d_lt * weight, w * weight
    return term, a, d_lt, dq, -w


@triton.jit
def _logistic(v, F64: tl.constexpr):
    # (softplus(v), softplus(-v), sigmoid(v), sigmoid(-v)) from one e = exp(-|v|), no overflow
    e = tl.exp(-tl.abs(v))
    if F64:
        lp = log1p_acc(e, F64)
    else:
        lp = log1p_01(e)
    s = rcp(1.0 + e, F64)
    pos = v >= 0
    return tl.maximum(v, 0.0) + lp, tl.maximum(-v, 0.0) + lp, tl.where(pos, s, e * s), tl.where(pos, e * s, s)


@triton.jit
def zero_inflate(term, x, rho, F64: tl.constexpr):
    # (log ZINB, the weight of the NB derivatives, d/d rho) from the NB term (module docstring)
    v = term - rho
    zero = x == 0
    sp_v, _, sig_v, sig_mv = _logistic(v, F64)
    sp_rho, sp_mrho, sig_rho, sig_mrho = _logistic(rho, F64)
    value = tl.where(zero, sp_v - sp_mrho, term - sp_rho)
    weight = tl.where(zero, sig_v, 1.0)
    # sigmoid(-rho) - sigmoid(term - rho) = sigmoid(-rho) sigmoid(rho - term) (1 - e^term), term <= 0
    d_zero = sig_mrho * sig_mv * -expm1_acc(tl.minimum(term, 0.0), F64)
    d_rho = tl.where(zero, d_zero, -sig_rho)
    return value, weight, d_rho
