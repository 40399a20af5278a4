"""The VAE objective: the negative ELBO with any of the registry's likelihoods
(``fastvae.likelihoods``) and a N(0, I) prior."""

from typing import Optional

import torch

from . import likelihoods, reference
from ._backend import use_triton
from ._checks import check_elbo, validate_values
from ._rows import reduce_rows
from .ops import _route, gaussian_kl
from .ops.elbo import fastvae_elbo
from .ops.likelihood import log_likelihood, logscale_args
from .reference import ELBOTerms

__all__ = ["ELBOLoss", "ELBOTerms", "elbo_loss"]


def elbo_loss(recon_logits: torch.Tensor, x: torch.Tensor, mu: Optional[torch.Tensor] = None,
              logvar: Optional[torch.Tensor] = None, beta: float = 1.0, reduction: str = "mean",
              return_terms: bool = False, *, kl: Optional[torch.Tensor] = None, likelihood: str = likelihoods.DEFAULT,
              logscale=0.0, validate_args: bool = False):
    """Negative ELBO of a VAE with a N(0, I) prior, fused.

    Per row: ``loss = -(log p(x | z) - beta * KL(q(z|x) || N(0, I)))`` with ``log p(x|z)`` summed
    over all non-batch dims of the decoder's output and the closed-form Gaussian KL of
    ``mu, logvar``. ``likelihood`` picks p(x | z) (see ``bernoulli_log_likelihood``,
    ``continuous_bernoulli_log_likelihood``, ``gaussian_log_likelihood``).

    Args:
        recon_logits: (B, ...) decoder output: **logits** (not probabilities) for the Bernoulli
            and continuous Bernoulli, the mean for the Gaussian.
        x: targets of recon_logits' shape: float, bool, or uint8 (0/1 for the Bernoulli, k/255
            for the others).
        mu, logvar: (B, ...) parameters of the diagonal Gaussian q(z | x).
        beta: weight of the KL term (beta-VAE, KL warm-up); a real number.
        reduction: ``'mean'`` (over the batch: nats per example; note that
            ``nn.BCEWithLogitsLoss``'s mean is per *element*; NaN for an empty batch, as
            ``torch.mean``), ``'sum'``, or ``'none'`` (B,).
        return_terms: also return the per-row terms, as ``ELBOTerms(loss, log_likelihood, kl)``.
        kl: instead of ``mu, logvar``, the per-row KL (B,) the model already has from
            ``fastvae.reparameterize_kl``, so the KL is not computed twice.
        likelihood: ``'bernoulli'`` (default), ``'continuous_bernoulli'`` or ``'gaussian'``.
        logscale: the Gaussian's log standard deviation (a number or a tensor broadcastable to
            the mean; see ``gaussian_log_likelihood``); ignored by the others.
        validate_args: check the target values against the likelihood's support (a host sync), and
            warn once when every logit of a batch lies in [0, 1] (probabilities passed as logits).

    Returns:
        The loss, or ``ELBOTerms`` when ``return_terms``. Its dtype is the promotion of the two
        per-row terms: float32 for float16/bfloat16/float32 inputs, float64 if either is float64.
    """
    spec = likelihoods.get(likelihood)
    check_elbo(spec, recon_logits, x, mu, logvar, beta, reduction, kl, logscale)
    if not use_triton(recon_logits):
        out = reference.elbo_loss(recon_logits, x, mu, logvar, beta, reduction, return_terms, kl=kl,
                                  likelihood=spec, logscale=logscale, validate_args=validate_args)
        return ELBOTerms(*_route.guard("elbo_loss", tuple(out))) if return_terms else _route.guard("elbo_loss", out)
    if validate_args:
        validate_values(spec, recon_logits, x)
    if kl is None:
        kl = gaussian_kl(mu, logvar)
    s, s_value = logscale_args(spec, logscale)
    if _route.compiling():
        # the log-likelihood's custom op and plain torch glue, which the compiler fuses
        ll = log_likelihood(spec, recon_logits, x, s, s_value)
        loss = reduce_rows(beta * kl - ll, reduction)
    else:
        loss, ll = fastvae_elbo.apply((spec, s_value, float(beta), reduction), recon_logits, x, s, kl)
    return ELBOTerms(loss, ll, kl) if return_terms else loss


class ELBOLoss(reference.ELBOLoss):
    """Drop-in negative-ELBO loss for a VAE; the fused ``elbo_loss`` as a module.

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
        likelihood: ``'bernoulli'`` (default), ``'continuous_bernoulli'`` or ``'gaussian'``
            (keyword only; ``'continuous-bernoulli'`` works too); an unknown one is a ValueError.
            The Gaussian takes its logscale in the call: ``loss_fn(mean, x, mu, logvar, logscale=ls)``.
        validate_args: check target values on every call (a host sync; off by default), and warn
            once when every logit of a batch lies in [0, 1] (probabilities passed as logits).

    Shapes: recon_logits and x (B, ...), mu and logvar (B, ...) or kl (B,); output scalar,
    or (B,) for ``'none'``.
    """

    _elbo_loss = staticmethod(elbo_loss)
