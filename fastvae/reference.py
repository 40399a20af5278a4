"""Plain PyTorch twins of every fused op: the ground truth for the tests, the baseline for the
benchmarks, and the ``torch`` backend. Same signatures and output dtypes as the fused ops;
obviously right rather than fast; float64-capable.

Shapes: the first dimension is the batch B; per-row results sum over all other dimensions.
Results that are sums (log-likelihood, KL) are float32 for float16/bfloat16/float32 inputs
and float64 for float64 inputs; z and gradients have their inputs' dtypes.
"""

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_bernoulli, check_beta, check_elbo, check_gaussian, check_reduction
from ._rows import reduce_rows, row_sum, to_sum


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row: ``-0.5 * sum(1 + logvar - mu^2 - exp(logvar))``.

    mu, logvar: (B, ...) of one float dtype. Returns (B,) float32 (float64 for float64).
    """
    check_gaussian(mu, logvar)
    mu, logvar = to_sum(mu), to_sum(logvar)
    # -0.5 * (1 + logvar - mu^2 - exp(logvar)), with expm1 so that logvar near 0 (a collapsed
    # posterior) does not cancel as badly (the kernels use a series there and do better still)
    return 0.5 * row_sum(mu.pow(2) + (torch.expm1(logvar) - logvar))


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


def reparameterize_kl(mu: torch.Tensor, logvar: torch.Tensor, *, eps: Optional[torch.Tensor] = None,
                      generator: Optional[torch.Generator] = None):
    """``(reparameterize(mu, logvar, eps=eps), gaussian_kl(mu, logvar))``."""
    return reparameterize(mu, logvar, eps=eps, generator=generator), gaussian_kl(mu, logvar)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | logits) of independent Bernoullis per row: ``sum(x * logits - softplus(logits))``.

    logits: (B, ...) float; x: same shape, float in [0, 1], bool, or uint8 of 0/1.
    Returns (B,) float32 (float64 for float64 logits). Stable for any finite logits.
    """
    check_bernoulli(logits, x)
    logits = to_sum(logits)
    nll = F.binary_cross_entropy_with_logits(logits, x.to(logits.dtype), reduction="none")
    return -row_sum(nll)


class ELBOTerms(NamedTuple):
    """The reduced loss and its two per-row terms, for logging (``return_terms=True``)."""

    loss: torch.Tensor            # reduced as asked
    log_likelihood: torch.Tensor  # (B,) log p(x | z)
    kl: torch.Tensor              # (B,) KL(q(z | x) || N(0, I))


def elbo_loss(recon_logits: torch.Tensor, x: torch.Tensor, mu: Optional[torch.Tensor] = None,
              logvar: Optional[torch.Tensor] = None, beta: float = 1.0, reduction: str = "mean",
              return_terms: bool = False, *, kl: Optional[torch.Tensor] = None):
    """Negative ELBO ``-(log p(x|z) - beta * KL)`` per row, then reduced; see ``fastvae.elbo_loss``."""
    check_elbo(recon_logits, x, mu, logvar, beta, reduction, kl)
    ll = bernoulli_log_likelihood(recon_logits, x)
    if kl is None:
        kl = gaussian_kl(mu, logvar)
    loss = reduce_rows(beta * kl - ll, reduction)
    return ELBOTerms(loss, ll, kl) if return_terms else loss


class ELBOLoss(nn.Module):
    """Module twin of ``reference.elbo_loss``; see ``fastvae.ELBOLoss``."""

    _elbo_loss = staticmethod(elbo_loss)  # fastvae.ELBOLoss swaps in the fused function

    def __init__(self, beta: float = 1.0, reduction: str = "mean", return_terms: bool = False):
        super().__init__()
        check_reduction(reduction)
        check_beta(beta)
        self.beta, self.reduction, self.return_terms = float(beta), reduction, bool(return_terms)

    def forward(self, recon_logits, x, mu=None, logvar=None, *, kl=None):
        return self._elbo_loss(recon_logits, x, mu, logvar, self.beta, self.reduction, self.return_terms, kl=kl)

    def extra_repr(self):
        return f"beta={self.beta}, reduction={self.reduction!r}"
