r"""Per element: the log-density of one target under each likelihood the elementwise kernel
(``likelihood.py``) computes, and its derivatives; ``terms`` picks one by ``KIND``.

For parameters ``p`` and targets ``x`` of a (B, ...) batch, per row b (sum over the row):

* Bernoulli (``KIND = modes.BERNOULLI``), p = logits l, x in [0, 1]:  ``x*l - softplus(l)``;
  d/dl = ``x - sigmoid(l)``, d/dx = ``l``.
* continuous Bernoulli (``CONTINUOUS_BERNOULLI``), Loaiza-Ganem & Cunningham (2019), p = logits l, x in [0, 1]:
  ``x*l - softplus(l) + log C(l)``, ``C(l) = l / tanh(l/2)``; d/dl = ``x - sigmoid(l) + 1/l -
  1/sinh(l)``, d/dx = ``l``.
* Gaussian (``GAUSSIAN``), p = mean m, logscale s: ``-((x - m) e^-s)^2 / 2 - s - log(2 pi) / 2``;
  d/dm = ``(x - m) e^-2s``, d/dx = ``-(x - m) e^-2s``, d/ds = ``((x - m) e^-s)^2 - 1``.

Evaluated stably, with a = |l|, e = exp(-a), p = [l >= 0]:

* Bernoulli: ``(x - p) l - log1p(e)`` and ``(x - p) +- e / (1 + e)``: no overflow, no log of a
  sigmoid, full relative precision for well-fit pixels on both sides.
* continuous Bernoulli: softplus and log C share a term, leaving ``(x - p) l + h(a)`` with
  ``h(a) = log(a / (1 - e))`` and d/dl = ``(x - p) +- h'(a)``, ``h'(a) = 1/a - e / (1 - e)``;
  below a = 0.25 (0.01 in float64) both are Taylor series (``h = a/2 - a^2/24 + a^4/2880 -
  ...``), exact and finite for every finite logit (the closed forms cancel near 0).

* Poisson (``POISSON``), p = rate mu, x a count; negative binomial (``NEGATIVE_BINOMIAL``),
  p = mean mu, s = log theta (inverse dispersion), and with ``HAS_Q`` zero inflation, q = dropout
  logits: ``_counts.py`` (exact in float32 over the whole range); d/dx = 0 (counts are discrete).
"""

import triton
import triton.language as tl

from . import modes
from ._counts import count_terms
from ._gamma import log_, rcp
from ._math import log1p_01, LOG2E, log_pos, recip

HALF_LOG_2PI = tl.constexpr(0.9189385332046728)


@triton.jit
def _bernoulli(l, x, ACC: tl.constexpr):
    pos = l >= 0
    xp = tl.where(pos, x - 1.0, x)
    if ACC == tl.float64:
        e = tl.exp(-tl.abs(l))
        u = 1.0 + e
        term = xp * l - tl.where(u == 1.0, e, tl.log(u) * (e / tl.where(u == 1.0, 1.0, u - 1.0)))
        q = e / u
    else:
        e = tl.exp2(tl.abs(l) * -LOG2E)
        term = xp * l - log1p_01(e)
        q = e * recip(1.0 + e)
    return term, xp + tl.where(pos, q, -q)


@triton.jit
def _continuous_bernoulli(l, x, ACC: tl.constexpr):
    # (x - p) l + h(a) and (x - p) +- h'(a), a = |l|: Taylor series below SMALL (to a^6 and
    # a^5: 2e-12 and 5e-11 at a = 0.25), closed forms above (where they cancel by < 1e-6)
    a = tl.abs(l)
    SMALL: tl.constexpr = 0.01 if ACC == tl.float64 else 0.25
    small = a < SMALL
    a2 = a * a
    hs = ((-5.511463844797178e-06 * a2 + 3.472222222222222e-04) * a2 - 4.1666666666666664e-02) * a2 + 0.5 * a
    dh = ((-3.306878306878307e-05 * a2 + 1.388888888888889e-03) * a2 - 8.333333333333333e-02) * a + 0.5
    # the closed forms: a small a only reaches them in the branch tl.where drops
    if ACC == tl.float64:
        e = tl.exp(-a)
        hl = tl.log(a / (1.0 - e))
        dl = 1.0 / a - e / (1.0 - e)
    else:
        e = tl.exp2(a * -LOG2E)
        r = recip(1.0 - e)
        hl = log_pos(a * r)
        dl = recip(a) - e * r
    pos = l >= 0
    xp = tl.where(pos, x - 1.0, x)
    h = tl.where(small, hs, hl)
    d = tl.where(small, dh, dl)
    return xp * l + h, xp + tl.where(pos, d, -d)


@triton.jit
def _gaussian(m, x, s, ACC: tl.constexpr):
    if ACC == tl.float64:
        r = tl.exp(-s)
    else:
        r = tl.exp2(s * -LOG2E)  # e^-s
    w = (x - m) * r
    return -0.5 * (w * w) - s - HALF_LOG_2PI, w * r, w * w - 1.0


@triton.jit
def _count_terms(p, x, s, q, KIND: tl.constexpr, F64: tl.constexpr, HAS_Q: tl.constexpr):
    # (log-probability, d/dp, d/ds, d/dq) of a count (``_counts.count_terms``); d/d mu = (d/d log
    # mu) / mu where x > 0; s: log theta per element, or (a per-gene one) per column, broadcast here
    term, dlog, ds, dq, d_zero = count_terms(p, log_(p, F64), x, s, q, KIND == modes.NEGATIVE_BINOMIAL, HAS_Q, F64)
    return term, tl.where(x > 0, dlog * rcp(p, F64), d_zero), ds, dq


@triton.jit
def terms(p, x, s, q, KIND: tl.constexpr, ACC: tl.constexpr, HAS_Q: tl.constexpr):
    # per element: (log-density, d/dp, d/dx, d/ds, d/dq); q (zero inflation) only with HAS_Q
    if KIND == modes.GAUSSIAN:
        term, dp, ds = _gaussian(p, x, s, ACC)
        return term, dp, -dp, ds, ds
    elif KIND == modes.CONTINUOUS_BERNOULLI:
        term, dp = _continuous_bernoulli(p, x, ACC)
        return term, dp, p, dp, dp
    elif KIND == modes.BERNOULLI:
        term, dp = _bernoulli(p, x, ACC)
        return term, dp, p, dp, dp
    else:
        term, dp, ds, dq = _count_terms(p, x, s, q, KIND, ACC == tl.float64, HAS_Q)
        return term, dp, dp * 0.0, ds, dq


