"""Plain PyTorch twins of every fused op: the ground truth for the tests, the baseline for the
benchmarks, and the ``torch`` backend. Same signatures and output dtypes as the fused ops;
obviously right rather than fast; float64-capable.

Shapes: the first dimension is the batch B; per-row results sum over all other dimensions.
Results that are sums (log-likelihood, KL) are float32 for float16/bfloat16/float32 inputs
and float64 for float64 inputs; z and gradients have their inputs' dtypes.
"""

import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .. import _dreg, likelihoods
from .._checks import (
    check_beta,
    check_eager_dreg,
    check_elbo,
    check_gaussian,
    check_iw_eps,
    check_iwae,
    check_likelihood,
    check_num_samples,
    check_prior,
    check_prior_path,
    check_reduction,
    validate_values,
)
from .._rows import reduce_rows, row_sum, to_sum


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, prior_mu: Optional[torch.Tensor] = None,
                prior_logvar: Optional[torch.Tensor] = None) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row: ``-0.5 * sum(1 + logvar - mu^2 - exp(logvar))``;
    with a prior, KL(N(mu, exp(logvar)) || N(prior_mu, exp(prior_logvar))) per row:
    ``0.5 * sum(prior_logvar - logvar + (exp(logvar) + (mu - prior_mu)^2) * exp(-prior_logvar) - 1)``.

    mu, logvar: (B, ...) of one float dtype; prior_mu, prior_logvar: both or neither, of mu's
    shape and dtype (any strides). Returns (B,) float32 (float64 for float64).
    """
    check_gaussian(mu, logvar)
    if check_prior(mu, prior_mu, prior_logvar):
        return _prior_kl(to_sum(mu), to_sum(logvar), to_sum(prior_mu), to_sum(prior_logvar))
    mu, logvar = to_sum(mu), to_sum(logvar)
    # -0.5 * (1 + logvar - mu^2 - exp(logvar)), with expm1 so that logvar near 0 (a collapsed
    # posterior) does not cancel as badly (the kernels use a series there and do better still)
    return 0.5 * row_sum(mu.pow(2) + (torch.expm1(logvar) - logvar))


def _prior_kl(mu, logvar, prior_mu, prior_logvar):
    # with d = logvar - prior_logvar: 0.5 * sum((e^d - 1 - d) + (mu - prior_mu)^2 e^-prior_logvar),
    # the same value as the form, without its cancellation when the two variances meet
    d = logvar - prior_logvar
    return 0.5 * row_sum((torch.expm1(d) - d) + (mu - prior_mu).pow(2) * torch.exp(-prior_logvar))


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, *, eps: Optional[torch.Tensor] = None,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``z = mu + exp(0.5 * logvar) * eps``, eps ~ N(0, I) drawn with ``generator`` unless given.

    Returns z with mu's shape and dtype.
    """
    check_gaussian(mu, logvar, eps, generator)
    if eps is None:
        # randn_like keeps torch.compile's dynamic shapes symbolic; a generator needs randn
        eps = torch.randn_like(mu) if generator is None else \
            torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=generator)
    # float32 math for half inputs, like the kernels: exp(logvar / 2) may exceed float16's range
    # where z itself does not
    return (to_sum(mu) + torch.exp(0.5 * to_sum(logvar)) * to_sum(eps)).to(mu.dtype)


def reparameterize_kl(mu: torch.Tensor, logvar: torch.Tensor, *, prior_mu: Optional[torch.Tensor] = None,
                      prior_logvar: Optional[torch.Tensor] = None, eps: Optional[torch.Tensor] = None,
                      generator: Optional[torch.Generator] = None):
    """``(reparameterize(mu, logvar, eps=eps), gaussian_kl(mu, logvar, prior_mu, prior_logvar))``."""
    check_gaussian(mu, logvar, eps, generator)
    check_prior(mu, prior_mu, prior_logvar)
    return reparameterize(mu, logvar, eps=eps, generator=generator), gaussian_kl(mu, logvar, prior_mu, prior_logvar)


def _checked(function, p, x, validate_args, logscale=None):
    # the record of the likelihood whose twin ``function`` is; p and its targets in the sum dtype
    spec = _RECORDS[function.__name__]
    check_likelihood(spec, p, x, logscale)
    if validate_args:
        validate_values(spec, p, x)
    p = to_sum(p)
    return p, spec.targets(x, p.dtype)


_RECORDS = {}
for _r in likelihoods.records():
    _RECORDS.setdefault(_r.function, _r)  # a function shared by records: the first one's


def _bce(l, x):
    # softplus(l) - x * l, stably and with exact gradients: BCE-with-logits
    return F.binary_cross_entropy_with_logits(l, x, reduction="none")


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor, *, validate_args: bool = False) -> torch.Tensor:
    """log p(x | logits) of independent Bernoullis per row: ``sum(x * logits - softplus(logits))``.

    logits: (B, ...) float; x: same shape, float in [0, 1], bool, or uint8 of 0/1.
    Returns (B,) float32 (float64 for float64 logits). Stable for any finite logits.
    """
    logits, x = _checked(bernoulli_log_likelihood, logits, x, validate_args)
    return -row_sum(_bce(logits, x))


def _log_cb_normaliser(l):
    """log C(l) = log(l / tanh(l / 2)), formed in float64: its Taylor series
    ``log 2 + l^2/12 - 7 l^4/1440`` below |l| = 0.01 (the closed form and its derivative cancel
    near 0), the closed form above."""
    l64 = l.double()
    small = l64.abs() < 1e-2
    safe = torch.where(small, torch.ones_like(l64), l64)
    l2 = l64 * l64
    series = math.log(2.0) + l2 / 12 - 7 * l2 * l2 / 1440
    return torch.where(small, series, torch.log(safe / torch.tanh(safe / 2))).to(l.dtype)


def continuous_bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor, *,
                                        validate_args: bool = False) -> torch.Tensor:
    """log p(x | logits) of independent continuous Bernoullis per row:
    ``sum(x * l - softplus(l) + log C(l))``, ``C(l) = l / tanh(l / 2)``; see
    ``fastvae.continuous_bernoulli_log_likelihood``. uint8 x is read as k/255."""
    logits, x = _checked(continuous_bernoulli_log_likelihood, logits, x, validate_args)
    return row_sum(_log_cb_normaliser(logits) - _bce(logits, x))


def gaussian_log_likelihood(mean: torch.Tensor, x: torch.Tensor, logscale=0.0, *,
                            validate_args: bool = False) -> torch.Tensor:
    """log N(x; mean, exp(logscale)^2) per row: the sum of ``-0.5 * ((x - mean) * exp(-logscale))^2
    - logscale - 0.5 * log(2 pi)``; see ``fastvae.gaussian_log_likelihood``. uint8 x is read as
    k/255; logscale is a number or a tensor broadcastable to mean's shape."""
    mean, x = _checked(gaussian_log_likelihood, mean, x, validate_args, logscale)
    s = to_sum(logscale) if isinstance(logscale, torch.Tensor) else float(logscale)
    w = (x - mean) * (torch.exp(-s) if isinstance(s, torch.Tensor) else math.exp(-s))
    return row_sum(-0.5 * w * w - s - 0.5 * math.log(2 * math.pi))


class ELBOTerms(NamedTuple):
    """The reduced loss and its two per-row terms, for logging (``return_terms=True``)."""

    loss: torch.Tensor            # reduced as asked
    log_likelihood: torch.Tensor  # (B,) log p(x | z)
    kl: torch.Tensor              # (B,) KL(q(z | x) || N(0, I))


def elbo_loss(recon_logits: torch.Tensor, x: torch.Tensor, mu: Optional[torch.Tensor] = None,
              logvar: Optional[torch.Tensor] = None, beta: float = 1.0, reduction: str = "mean",
              return_terms: bool = False, *, kl: Optional[torch.Tensor] = None, likelihood: str = likelihoods.DEFAULT,
              logscale=0.0, validate_args: bool = False, **likelihood_args):
    """Negative ELBO ``-(log p(x|z) - beta * KL)`` per row, then reduced; see ``fastvae.elbo_loss``."""
    spec = likelihoods.get(likelihood)
    args = spec.bind(spec.given(logscale, likelihood_args))
    check_elbo(spec, recon_logits, x, mu, logvar, beta, reduction, kl, args)
    ll = spec.call(recon_logits, x, args, fused=False, validate_args=validate_args)
    if kl is None:
        kl = gaussian_kl(mu, logvar)
    loss = reduce_rows(beta * kl - ll, reduction)
    return ELBOTerms(loss, ll, kl) if return_terms else loss


class ELBOLoss(nn.Module):
    """Module twin of ``reference.elbo_loss``; see ``fastvae.ELBOLoss``."""

    _elbo_loss = staticmethod(elbo_loss)  # fastvae.ELBOLoss swaps in the fused function
    beta, reduction, return_terms, likelihood, validate_args = 1.0, "mean", False, likelihoods.DEFAULT, False

    def __init__(self, beta: float = 1.0, reduction: str = "mean", return_terms: bool = False, *,
                 likelihood: str = likelihoods.DEFAULT, validate_args: bool = False):
        super().__init__()  # not nn.Module.__init__(self): torch.compile breaks its graph on that
        check_reduction(reduction)
        check_beta(beta)
        likelihood = likelihoods.get(likelihood).name
        # a loss is often built inside the training step: only settings other than the class
        # defaults below are set (each nn.Module.__setattr__ costs about a microsecond)
        for name, value in (("beta", float(beta)), ("reduction", reduction), ("return_terms", bool(return_terms)),
                            ("likelihood", likelihood), ("validate_args", bool(validate_args))):
            if value != getattr(ELBOLoss, name):
                setattr(self, name, value)

    def forward(self, recon_logits, x, mu=None, logvar=None, *, kl=None, logscale=0.0, **likelihood_args):
        return self._elbo_loss(recon_logits, x, mu, logvar, self.beta, self.reduction, self.return_terms, kl=kl,
                               likelihood=self.likelihood, logscale=logscale, validate_args=self.validate_args,
                               **likelihood_args)

    def extra_repr(self):
        return f"beta={self.beta}, reduction={self.reduction!r}, likelihood={self.likelihood!r}"


def reparameterize_iw(mu: torch.Tensor, logvar: torch.Tensor, num_samples: int, *,
                      prior_mu: Optional[torch.Tensor] = None, prior_logvar: Optional[torch.Tensor] = None,
                      eps: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
                      path_gradient: bool = False):
    """K samples ``z_k = mu + exp(logvar/2) * eps_k`` (K, B, ...) in mu's dtype and the log
    importance ratios ``log N(z_k; 0, I) - log q(z_k | x)`` (K, B) in the sum dtype (with a
    prior, ``log N(z_k; prior_mu, exp(prior_logvar)) - log q(z_k | x)``); with ``path_gradient``
    log q sees mu and logvar as constants. See ``fastvae.reparameterize_iw``."""
    check_gaussian(mu, logvar, None, generator)
    K = check_num_samples(num_samples)
    prior = check_prior(mu, prior_mu, prior_logvar)
    if path_gradient:
        check_prior_path(prior)
        check_eager_dreg("reparameterize_iw(path_gradient=True)")
    check_iw_eps(eps, mu, K)
    if eps is None:
        eps = torch.randn((K, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator)
    m, lv = to_sum(mu), to_sum(logvar)
    z = m + torch.exp(0.5 * lv) * to_sum(eps)
    mq, lq = (m.detach(), lv.detach()) if path_gradient else (m, lv)
    e = (z - mq) * torch.exp(-0.5 * lq)  # eps again, written so that log q differentiates as it should
    if prior:  # z standardised under the prior, and the prior's log-variance
        pm, plv = to_sum(prior_mu), to_sum(prior_logvar)
        a, lp = (z - pm) * torch.exp(-0.5 * plv), plv
    else:
        a, lp = z, 0.0
    log_ratio = (0.5 * (e * e - a * a + lq - lp)).reshape(K, mu.shape[0], -1).sum(-1)
    z = z.to(mu.dtype)
    if path_gradient:
        slot = _dreg.Slot()
        z = _dreg.attach(_dreg.ScaleByWeights.apply(z, slot), slot)
    return z, log_ratio


def _per_sample_rows(name, t, recon, K, B):
    """The likelihood argument ``name`` for the K * B rows of recon: (K, B, ...) reshaped to
    them; the library (one per row of x) and any other (broadcast against one sample's shape)
    repeated for every sample; a number as it is."""
    if not isinstance(t, torch.Tensor):
        return t
    if tuple(t.shape) == tuple(recon.shape):
        return t.reshape(K * B, *recon.shape[2:])
    one = t if name == "log_library" else t.expand(recon.shape[1:])
    return one.expand(K, *one.shape).reshape(K * B, *one.shape[1:])


def iwae_loss(recon: torch.Tensor, x: torch.Tensor, log_ratio: torch.Tensor, *,
              likelihood: str = likelihoods.DEFAULT, logscale=0.0, z: Optional[torch.Tensor] = None,
              estimator: str = "iwae", reduction: str = "mean", **likelihood_args):
    """The importance-weighted bound's loss, ``-(logsumexp_k(log p(x | z_k) + log_ratio_k) - log K)``
    per row, reduced; ``estimator='dreg'`` routes the gradients as ``fastvae.iwae_loss`` does."""
    spec = likelihoods.get(likelihood)
    args = spec.bind(spec.given(logscale, likelihood_args))
    slot = _dreg.slot_of(z) if z is not None else None
    check_iwae(spec, recon, x, log_ratio, args, z, estimator, reduction, slot is not None)
    K, B = log_ratio.shape
    rows = recon.reshape(K * B, *recon.shape[2:])
    x_rows = x.expand(K, *x.shape).reshape(K * B, *x.shape[1:])
    ll = spec.call(rows, x_rows, {n: _per_sample_rows(n, t, recon, K, B) for n, t in args.items()}, fused=False)
    ll = ll.view(K, B)
    a = ll + log_ratio.to(ll.dtype) if log_ratio.dtype != torch.float64 else ll.double() + log_ratio
    per_row = -(torch.logsumexp(a, 0) - math.log(K))
    if estimator == "dreg":
        w = torch.softmax(a, 0).detach()
        slot.weights = w.contiguous()
        surrogate = -(w * ll).sum(0) - (w * w * log_ratio.to(w.dtype)).sum(0)
        per_row = per_row.detach() + surrogate - surrogate.detach()
    return reduce_rows(per_row, reduction)
