"""The VAE objective: negative ELBO with a Bernoulli decoder and a N(0, I) prior."""

import torch
from torch import nn

from . import reference
from ._backend import use_triton
from ._checks import check_elbo, check_reduction
from .ops import _bernoulli_ll_scaled, gaussian_kl
from .reference import ELBOTerms, _reduce

__all__ = ["ELBOLoss", "ELBOTerms", "elbo_loss"]


def elbo_loss(recon_logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
              beta: float = 1.0, reduction: str = "mean", return_terms: bool = False):
    """Negative ELBO of a VAE with Bernoulli decoder and N(0, I) prior, fused.

    Per row: ``loss = -(log p(x | z) - beta * KL(q(z|x) || N(0, I)))`` with
    ``log p(x|z) = sum(x * l - softplus(l))`` over all non-batch dims of the decoder's logits
    ``l`` and the closed-form Gaussian KL of ``mu, logvar``.

    Args:
        recon_logits: (B, ...) decoder output, Bernoulli **logits** (not probabilities).
        x: targets of recon_logits' shape: float in [0, 1], bool, or uint8 of 0/1.
        mu, logvar: (B, ...) parameters of the diagonal Gaussian q(z | x).
        beta: weight of the KL term (beta-VAE, KL warm-up).
        reduction: ``'mean'`` (over the batch: nats per example; note that
            ``nn.BCEWithLogitsLoss``'s mean is per *element*), ``'sum'``, or ``'none'`` (B,).
        return_terms: also return the per-row terms, as ``ELBOTerms(loss, log_likelihood, kl)``.

    Returns:
        The loss (float32; float64 for float64 logits), or ``ELBOTerms`` when ``return_terms``.
    """
    check_elbo(recon_logits, x, mu, logvar, beta, reduction)
    if not use_triton(recon_logits):
        return reference.elbo_loss(recon_logits, x, mu, logvar, beta, reduction, return_terms)
    B = recon_logits.shape[0]
    # The upstream gradient log p(x|z) will receive from `loss.backward()`: folded into the
    # gradient the forward stores, so that backward has nothing left to do over (B, D).
    grad_scale = -1.0 / B if (reduction == "mean" and B > 0) else -1.0
    ll = _bernoulli_ll_scaled(recon_logits, x, grad_scale)
    kl = gaussian_kl(mu, logvar)
    loss = _reduce(beta * kl - ll, reduction)
    return ELBOTerms(loss, ll, kl) if return_terms else loss


class ELBOLoss(nn.Module):
    """Drop-in negative-ELBO loss for a Bernoulli VAE; the fused ``elbo_loss`` as a module.

    Replaces the classic ``loss_function(recon_x, x, mu, logvar)`` of PyTorch's VAE example
    (``BCE(recon_x, x, reduction='sum') + KLD``), taking decoder **logits** instead of
    probabilities: ``ELBOLoss(reduction='sum')(logits, x, mu, logvar)`` is that loss, computed
    stably and in fused passes.

    Args:
        beta: weight of the KL term.
        reduction: ``'mean'`` over the batch (nats per example, default; differs from
            ``BCEWithLogitsLoss``, whose mean is per element), ``'sum'``, or ``'none'``.
        return_terms: forward returns ``ELBOTerms(loss, log_likelihood, kl)`` for logging.

    Shapes: recon_logits and x (B, ...), mu and logvar (B, ...); output scalar, or (B,) for
    ``'none'``.
    """

    def __init__(self, beta: float = 1.0, reduction: str = "mean", return_terms: bool = False):
        super().__init__()
        check_reduction(reduction)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)):
            raise TypeError(f"beta must be a Python float, got {type(beta).__name__}")
        self.beta, self.reduction, self.return_terms = float(beta), reduction, bool(return_terms)

    def forward(self, recon_logits, x, mu, logvar):
        return elbo_loss(recon_logits, x, mu, logvar, self.beta, self.reduction, self.return_terms)

    def extra_repr(self):
        return f"beta={self.beta}, reduction={self.reduction!r}"
