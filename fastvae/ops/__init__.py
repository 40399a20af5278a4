"""The fused ops: one module per op, each wrapping its kernels (``fastvae.kernels``) as an
eager ``torch.autograd.Function`` and as ``torch.library`` custom ops for ``torch.compile``
(see ``_route.py``), plus its public functions: ``likelihood.py`` (the elementwise
log-likelihoods: Bernoulli, continuous Bernoulli, Gaussian, and through ``counts.py`` Poisson and
negative binomial), ``softmax_counts.py`` (the count likelihoods with scVI's softmax decoder),
``gaussian.py`` (sample and KL), ``elbo.py`` (the
loss's reconstruction term and reduction as one eager node), ``importance.py`` (K samples, the
importance-weighted bound and its IWAE and DReG gradients)."""

from .counts import negative_binomial_log_likelihood, poisson_log_likelihood
from .gaussian import gaussian_kl, reparameterize, reparameterize_kl
from .importance import iwae_loss, reparameterize_iw
from .likelihood import bernoulli_log_likelihood, continuous_bernoulli_log_likelihood, gaussian_log_likelihood
from .softmax_counts import softmax_negative_binomial_log_likelihood

__all__ = ["bernoulli_log_likelihood", "continuous_bernoulli_log_likelihood", "gaussian_kl",
           "gaussian_log_likelihood", "iwae_loss", "negative_binomial_log_likelihood", "poisson_log_likelihood",
           "reparameterize", "reparameterize_iw", "reparameterize_kl", "softmax_negative_binomial_log_likelihood"]
