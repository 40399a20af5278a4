"""Triton kernels of fastvae, installed as ``fastvae.kernels``.

One module per fused op: ``likelihood.py`` (the Bernoulli, continuous Bernoulli and Gaussian
log-likelihoods; ``rescale.py`` its backward passes over the gradients it stored),
``gaussian.py`` (the reparameterized sample and KL) and ``importance.py`` (K
samples and their log importance ratios), plus ``_noise.py`` (the in-kernel normals),
``_math.py`` (the float32 math they share) and ``_launch.py`` (tiles, strides, the call into
Triton). Each
op module holds its ``@triton.jit`` kernels and the small launch functions that validate
nothing, allocate outputs, pick block sizes and launch (through ``_launch.launch``, the one
place where work is handed to Triton). The launchers know nothing of autograd:
``fastvae.ops`` wraps them as autograd functions and ``torch.library`` ops.
"""

from .gaussian import reparameterize_kl_bwd, reparameterize_kl_fwd
from .importance import reparameterize_iw_bwd, reparameterize_iw_fwd
from .likelihood import KINDS, grad_like, likelihood
from .rescale import scale_rows, sum_partials

__all__ = [
    "KINDS",
    "grad_like",
    "likelihood",
    "scale_rows",
    "sum_partials",
    "reparameterize_kl_fwd",
    "reparameterize_kl_bwd",
    "reparameterize_iw_fwd",
    "reparameterize_iw_bwd",
]
