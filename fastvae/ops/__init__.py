"""The fused ops: one module per op, each wrapping its kernels (``fastvae.kernels``) as an
eager ``torch.autograd.Function`` and as ``torch.library`` custom ops for ``torch.compile``
(see ``_route.py``), plus its public functions."""

from .bernoulli import bernoulli_ll_scaled, bernoulli_log_likelihood
from .gaussian import gaussian_kl, reparameterize, reparameterize_kl

__all__ = ["bernoulli_ll_scaled", "bernoulli_log_likelihood", "gaussian_kl", "reparameterize", "reparameterize_kl"]
