"""The VAE objective: negative ELBO with a Bernoulli decoder and a N(0, I) prior."""

from typing import Optional

import torch

from . import reference
from ._backend import use_triton
from ._checks import check_beta, check_elbo, check_reduction
from ._rows import reduce_rows
from .ops import _route, bernoulli_ll_scaled, gaussian_kl
from .ops.elbo import fastvae_elbo
from .reference import ELBOTerms

__all__ = ["ELBOLoss", "ELBOTerms", "elbo_loss"]


def elbo_loss(recon_logits: torch.Tensor, x: torch.Tensor, mu: Optional[torch.Tensor] = None,
              logvar: Optional[torch.Tensor] = None, beta: float = 1.0, reduction: str = "mean",
              return_terms: bool = False, *, kl: Optional[torch.Tensor] = None):
    """Negative ELBO of a VAE with Bernoulli decoder and N(0, I) prior, fused.

    Per row: ``loss = -(log p(x | z) - beta * KL(q(z|x) || N(0, I)))`` with
    ``log p(x|z) = sum(x * l - softplus(l))`` over all non-batch dims of the decoder's logits
    ``l`` and the closed-form Gaussian KL of ``mu, logvar``.

    Args:
        recon_logits: (B, ...) decoder output, Bernoulli **logits** (not probabilities).
        x: targets of recon_logits' shape: float in [0, 1], bool, or uint8 of 0/1.
        mu, logvar: (B, ...) parameters of the diagonal Gaussian q(z | x).
        beta: weight of the KL term (beta-VAE, KL warm-up); a real number.
        reduction: ``'mean'`` (over the batch: nats per example; note that
            ``nn.BCEWithLogitsLoss``'s mean is per *element*; NaN for an empty batch, as
            ``torch.mean``), ``'sum'``, or ``'none'`` (B,).
        return_terms: also return the per-row terms, as ``ELBOTerms(loss, log_likelihood, kl)``.
        kl: instead of ``mu, logvar``, the per-row KL (B,) the model already has from
            ``fastvae.reparameterize_kl``, so the KL is not computed twice.

    Returns:
        The loss, or ``ELBOTerms`` when ``return_terms``. Its dtype is the promotion of the two
        per-row terms: float32 for float16/bfloat16/float32 inputs, float64 if either is float64.
    """
    check_elbo(recon_logits, x, mu, logvar, beta, reduction, kl)
    if not use_triton(recon_logits):
        out = reference.elbo_loss(recon_logits, x, mu, logvar, beta, reduction, return_terms, kl=kl)
        return ELBOTerms(*_route.guard("elbo_loss", tuple(out))) if return_terms else _route.guard("elbo_loss", out)
    if kl is None:
        kl = gaussian_kl(mu, logvar)
    if _route.compiling():
        # the log-likelihood's custom op and plain torch glue, which the compiler fuses
        ll = bernoulli_ll_scaled(recon_logits, x, 1.0)
        loss = reduce_rows(beta * kl - ll, reduction)
    else:
        loss, ll = fastvae_elbo.apply(recon_logits, x, kl, float(beta), reduction)
    return ELBOTerms(loss, ll, kl) if return_terms else loss


class ELBOLoss(reference.ELBOLoss):
    """Drop-in negative-ELBO loss for a Bernoulli VAE; the fused ``elbo_loss`` as a module.

    Replaces the classic ``loss_function(recon_x, x, mu, logvar)`` of PyTorch's VAE example
    (``BCE(recon_x, x, reduction='sum') + KLD``), taking decoder **logits** instead of
    probabilities: ``ELBOLoss(reduction='sum')(logits, x, mu, logvar)`` is that loss, computed
    stably and in fused passes. A model that already has the KL from
    ``fastvae.reparameterize_kl`` passes it instead: ``loss_fn(logits, x, kl=kl)``.

    Args:
        beta: weight of the KL term (a real number).
        reduction: ``'mean'`` over the batch (nats per example, default; differs from
            ``BCEWithLogitsLoss``, whose mean is per element), ``'sum'``, or ``'none'``.
        return_terms: forward returns ``ELBOTerms(loss, log_likelihood, kl)`` for logging.

    Shapes: recon_logits and x (B, ...), mu and logvar (B, ...) or kl (B,); output scalar,
    or (B,) for ``'none'``.
    """

    _elbo_loss = staticmethod(elbo_loss)

    def __init__(self, beta: float = 1.0, reduction: str = "mean", return_terms: bool = False):
        # nn.Module's own __init__, then plain attributes set without its __setattr__ (a loss is
        # often built inside the training step: its construction is host time on every step)
        torch.nn.Module.__init__(self)
        check_reduction(reduction)
        check_beta(beta)
        self.__dict__.update(beta=float(beta), reduction=reduction, return_terms=bool(return_terms))
