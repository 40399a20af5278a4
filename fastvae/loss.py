"""The VAE objective: the negative ELBO with any of the registry's likelihoods
(``fastvae.likelihoods``) and a N(0, I) prior."""

from typing import Optional

import torch

from . import likelihoods, reference
from ._backend import use_triton
from ._checks import check_elbo, validate_values
from ._rows import reduce_rows
from .ops import _route, gaussian_kl
from .ops.elbo import _row_weight, fastvae_elbo
from .ops.likelihood import log_likelihood, operands
from .ops.softmax_counts import softmax_log_likelihood
from .reference import ELBOTerms

__all__ = ["ELBOLoss", "ELBOTerms", "elbo_loss"]


def elbo_loss(recon_logits: torch.Tensor, x: torch.Tensor, mu: Optional[torch.Tensor] = None,
              logvar: Optional[torch.Tensor] = None, beta: float = 1.0, reduction: str = "mean",
              return_terms: bool = False, *, kl: Optional[torch.Tensor] = None, likelihood: str = likelihoods.DEFAULT,
              logscale=0.0, validate_args: bool = False, **likelihood_args):
    """Negative ELBO of a VAE with a N(0, I) prior, fused.

    Per row: ``loss = -(log p(x | z) - beta * KL(q(z|x) || N(0, I)))`` with ``log p(x|z)`` summed
    over all non-batch dims of the decoder's output and the closed-form Gaussian KL of
    ``mu, logvar``. ``likelihood`` picks p(x | z), any record of ``fastvae.likelihoods`` (see
    ``bernoulli_log_likelihood``, ``continuous_bernoulli_log_likelihood``,
    ``gaussian_log_likelihood``, ``negative_binomial_log_likelihood``, ``poisson_log_likelihood``).

    Args:
        recon_logits: (B, ...) decoder output: **logits** (not probabilities) for the Bernoulli
            and continuous Bernoulli, the mean for the Gaussian and the count likelihoods (their
            logits (B, G) with ``log_library``).
        x: targets of recon_logits' shape: float, bool, or uint8 (0/1 for the Bernoulli, k/255
            for the continuous ones, counts for the count likelihoods, which also take int16,
            int32 and int64).
        mu, logvar: (B, ...) parameters of the diagonal Gaussian q(z | x).
        beta: weight of the KL term (beta-VAE, KL warm-up); a real number.
        reduction: ``'mean'`` (over the batch: nats per example; note that
            ``nn.BCEWithLogitsLoss``'s mean is per *element*; NaN for an empty batch, as
            ``torch.mean``), ``'sum'``, or ``'none'`` (B,).
        return_terms: also return the per-row terms, as ``ELBOTerms(loss, log_likelihood, kl)``.
        kl: instead of ``mu, logvar``, the per-row KL (B,) the model already has from
            ``fastvae.reparameterize_kl``, so the KL is not computed twice.
        likelihood: a name of ``fastvae.likelihoods.names()``: ``'bernoulli'`` (default),
            ``'continuous_bernoulli'``, ``'gaussian'``, ``'poisson'``, ``'negative_binomial'``,
            ``'zero_inflated_negative_binomial'`` (hyphens work too).
        logscale: the Gaussian's log standard deviation (a number or a tensor broadcastable to
            the mean; see ``gaussian_log_likelihood``); ignored by the others.
        validate_args: check the target values against the likelihood's support (a host sync), and
            warn once when every logit of a batch lies in [0, 1] (probabilities passed as logits).
        **likelihood_args: the count likelihoods' tensors, by name: ``log_theta`` (the negative
            binomials'), ``zero_inflation_logits`` (the zero-inflated one's; optional for the
            negative binomial), and ``log_library`` (B,) for the softmax form, where
            ``recon_logits`` are logits and the mean is ``exp(log_library) * softmax(logits)``
            (scVI's decoder); a name the likelihood does not take, or one it needs missing, is a
            TypeError.

    Returns:
        The loss, or ``ELBOTerms`` when ``return_terms``. Its dtype is the promotion of the two
        per-row terms: float32 for float16/bfloat16/float32 inputs, float64 if either is float64.
    """
    spec = likelihoods.get(likelihood)
    args = spec.bind(spec.given(logscale, likelihood_args))
    check_elbo(spec, recon_logits, x, mu, logvar, beta, reduction, kl, args)
    if not use_triton(recon_logits):
        out = reference.elbo_loss(recon_logits, x, mu, logvar, beta, reduction, return_terms, kl=kl,
                                  likelihood=spec, logscale=logscale, validate_args=validate_args, **likelihood_args)
        return ELBOTerms(*_route.guard("elbo_loss", tuple(out))) if return_terms else _route.guard("elbo_loss", out)
    if validate_args:
        validate_values(spec, recon_logits, x)
    loss, ll, kl = _fused(spec, args, recon_logits, x, gaussian_kl(mu, logvar) if kl is None else kl, beta, reduction)
    return ELBOTerms(loss, ll, kl) if return_terms else loss


def _fused(spec, args, recon, x, kl, beta, reduction):
    """(loss, ll, kl) on the kernels, inputs checked."""
    s, s_value, q, library = operands(spec, args)
    if library is not None:  # the softmax form of the count likelihoods: its own op, plain glue
        folded = 1.0 if recon.dtype == torch.float64 else -_row_weight(reduction, recon.shape[0])
        ll = softmax_log_likelihood(recon, x, s, library, q, folded)
        return reduce_rows(beta * kl - ll, reduction), ll, kl
    if _route.compiling():  # the log-likelihood's custom op and plain torch glue, which the compiler fuses
        ll = log_likelihood(spec, recon, x, s, s_value, q=q)
        return reduce_rows(beta * kl - ll, reduction), ll, kl
    loss, ll = fastvae_elbo.apply((spec, s_value, float(beta), reduction), recon, x, s, q, kl)
    return loss, ll, kl


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
        likelihood: a name of ``fastvae.likelihoods.names()`` (keyword only; ``'bernoulli'`` by
            default; hyphens work too); an unknown one is a ValueError.
            The Gaussian takes its logscale in the call: ``loss_fn(mean, x, mu, logvar, logscale=ls)``,
            the count likelihoods their tensors: ``loss_fn(logits, x, kl=kl, log_theta=lt,
            log_library=lib)`` (see ``elbo_loss``).
        validate_args: check target values on every call (a host sync; off by default), and warn
            once when every logit of a batch lies in [0, 1] (probabilities passed as logits).

    Shapes: recon_logits and x (B, ...), mu and logvar (B, ...) or kl (B,); output scalar,
    or (B,) for ``'none'``.
    """

    _elbo_loss = staticmethod(elbo_loss)
