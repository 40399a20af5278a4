"""Plain PyTorch twins of the count likelihoods: the textbook formulas, evaluated in float64
(where ``lgamma(x + theta) - lgamma(theta) - lgamma(x + 1)`` keeps about 1e-9 nats at theta =
1e6) and returned in the sum dtype, so that the torch backend is exact too. scvi-tools'
``log_nb_positive`` / ``log_zinb_positive`` without their ``eps``.
"""

from typing import Optional

import torch
import torch.nn.functional as F

from .. import likelihoods
from .._checks import check_counts, check_softmax_counts, validate_targets
from .._rows import row_sum, sum_dtype
from ..kernels import modes


def _nb(mu, log_mu, x, log_theta):
    # log NB(x; mu, exp(log_theta)) per element, float64; mu may be 0 (log_mu -inf)
    theta = log_theta.exp()
    x_log_mu = torch.where(x > 0, x * torch.where(x > 0, log_mu, torch.zeros_like(log_mu)), torch.zeros_like(mu))
    return (torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1) - theta * torch.log1p(mu / theta)
            + x_log_mu - x * torch.log(theta + mu))


def _poisson(mu, log_mu, x):
    x_log_mu = torch.where(x > 0, x * torch.where(x > 0, log_mu, torch.zeros_like(log_mu)), torch.zeros_like(mu))
    return x_log_mu - mu - torch.lgamma(x + 1)


def _zero_inflate(term, x, rho):
    # dropout probability sigmoid(rho): log(pi + (1 - pi) e^term) at x = 0, log(1 - pi) + term above
    return torch.where(x == 0, F.softplus(term - rho) - F.softplus(-rho), term - F.softplus(rho))


def _terms(mu, log_mu, x, log_theta, zero_inflation_logits):
    terms = _poisson(mu, log_mu, x) if log_theta is None else _nb(mu, log_mu, x, log_theta.double())
    if zero_inflation_logits is not None:
        terms = _zero_inflate(terms, x, zero_inflation_logits.double())
    return terms


def _checked(spec, p, x, log_theta, zero_inflation_logits, validate_args):
    check_counts(spec, p, x, log_theta, zero_inflation_logits)
    if validate_args:
        validate_targets(spec, x)
    return x.double()


def _spec(log_theta):
    # the record whose checks apply: the negative binomial, or its Poisson limit
    return likelihoods.by_code(modes.POISSON if log_theta is None else modes.NEGATIVE_BINOMIAL)


def negative_binomial_log_likelihood(mean: torch.Tensor, x: torch.Tensor, log_theta: Optional[torch.Tensor], *,
                                     zero_inflation_logits: Optional[torch.Tensor] = None,
                                     validate_args: bool = False) -> torch.Tensor:
    """log NB(x; mean, exp(log_theta)) per row (zero-inflated with ``zero_inflation_logits``,
    the Poisson limit for ``log_theta=None``); see ``fastvae.negative_binomial_log_likelihood``."""
    spec = _spec(log_theta)
    x64 = _checked(spec, mean, x, log_theta, zero_inflation_logits, validate_args)
    mu = mean.double()
    ll = row_sum(_terms(mu, torch.log(mu), x64, log_theta, zero_inflation_logits))
    return ll.to(sum_dtype(mean.dtype))


def poisson_log_likelihood(rate: torch.Tensor, x: torch.Tensor, *, validate_args: bool = False) -> torch.Tensor:
    """log Poisson(x; rate) per row; see ``fastvae.poisson_log_likelihood``."""
    x64 = _checked(_spec(None), rate, x, None, None, validate_args)
    mu = rate.double()
    return row_sum(_poisson(mu, torch.log(mu), x64)).to(sum_dtype(rate.dtype))


def softmax_negative_binomial_log_likelihood(logits: torch.Tensor, x: torch.Tensor, log_theta: Optional[torch.Tensor],
                                             log_library: torch.Tensor, *,
                                             zero_inflation_logits: Optional[torch.Tensor] = None,
                                             validate_args: bool = False) -> torch.Tensor:
    """The negative binomial with ``mean = exp(log_library) * softmax(logits, -1)`` per row;
    see ``fastvae.softmax_negative_binomial_log_likelihood``."""
    spec = _spec(log_theta)
    check_softmax_counts(logits, log_library)
    x64 = _checked(spec, logits, x, log_theta, zero_inflation_logits, validate_args)
    log_mu = log_library.double().reshape(-1, 1) + torch.log_softmax(logits.double(), dim=-1)
    ll = row_sum(_terms(log_mu.exp(), log_mu, x64, log_theta, zero_inflation_logits))
    return ll.to(sum_dtype(logits.dtype))
