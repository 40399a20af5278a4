"""fastvae: fused Triton kernels for training Variational Autoencoders.

Public API: ``reparameterize_kl``, ``reparameterize``, ``gaussian_kl``,
``bernoulli_log_likelihood``, ``continuous_bernoulli_log_likelihood``,
``gaussian_log_likelihood``, the count likelihoods ``negative_binomial_log_likelihood``,
``softmax_negative_binomial_log_likelihood`` and ``poisson_log_likelihood``, ``elbo_loss`` /
``ELBOLoss`` (with ``ELBOTerms``),
``reparameterize_iw`` and ``iwae_loss`` (importance-weighted training, IWAE and DReG), the plain
PyTorch twins in ``fastvae.reference``, the registry of likelihoods ``fastvae.likelihoods``,
and the backend switch (``FASTVAE_BACKEND``,
``set_backend``, ``get_backend``, ``backend``; ``implementation(tensor)`` says what runs).
Sub-modules: ``fastvae.models`` (MLP and
convolutional VAEs; ``load`` for a trained one), ``fastvae.evaluate`` (ELBO, IWAE
log-likelihood), ``fastvae.data`` (data sets, your own files, device-resident loader),
``fastvae.train`` (the training command) and ``fastvae.sample`` (``python -m fastvae.sample``).
"""

from importlib import metadata as _metadata

from . import data, evaluate, likelihoods, models, reference
from ._backend import backend, get_backend, implementation, set_backend
from .loss import elbo_loss, ELBOLoss, ELBOTerms
from .ops import (
    bernoulli_log_likelihood,
    continuous_bernoulli_log_likelihood,
    gaussian_kl,
    gaussian_log_likelihood,
    iwae_loss,
    negative_binomial_log_likelihood,
    poisson_log_likelihood,
    reparameterize,
    reparameterize_iw,
    reparameterize_kl,
    softmax_negative_binomial_log_likelihood,
)

try:  # the version is written once, in pyproject.toml
    __version__ = _metadata.version("fastvae")
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ELBOLoss",
    "ELBOTerms",
    "backend",
    "bernoulli_log_likelihood",
    "continuous_bernoulli_log_likelihood",
    "data",
    "elbo_loss",
    "evaluate",
    "gaussian_kl",
    "gaussian_log_likelihood",
    "get_backend",
    "implementation",
    "iwae_loss",
    "likelihoods",
    "models",
    "negative_binomial_log_likelihood",
    "poisson_log_likelihood",
    "reference",
    "reparameterize",
    "reparameterize_iw",
    "reparameterize_kl",
    "set_backend",
    "softmax_negative_binomial_log_likelihood",
]
