"""fastvae: fused Triton kernels for training Variational Autoencoders.

Public API: ``reparameterize_kl``, ``reparameterize``, ``gaussian_kl``,
``bernoulli_log_likelihood``, ``elbo_loss`` / ``ELBOLoss`` (with ``ELBOTerms``), the plain
PyTorch twins in ``fastvae.reference``, and the backend switch (``FASTVAE_BACKEND``,
``set_backend``, ``get_backend``, ``backend``).
"""

from . import reference
from ._backend import backend, get_backend, set_backend
from .loss import ELBOLoss, ELBOTerms, elbo_loss
from .ops import bernoulli_log_likelihood, gaussian_kl, reparameterize, reparameterize_kl

__version__ = "0.1.0"

__all__ = [
    "ELBOLoss",
    "ELBOTerms",
    "backend",
    "bernoulli_log_likelihood",
    "elbo_loss",
    "gaussian_kl",
    "get_backend",
    "reference",
    "reparameterize",
    "reparameterize_kl",
    "set_backend",
]
