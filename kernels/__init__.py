"""Triton kernels of fastvae, installed as ``fastvae.kernels``.

One module per fused op. Each holds its ``@triton.jit`` kernels and the small launch
functions that validate nothing, allocate outputs, pick block sizes and launch. The
launchers know nothing of autograd: ``fastvae.ops`` registers them with PyTorch.
"""

from .bernoulli import bernoulli_ll_bwd, bernoulli_ll_fwd, bernoulli_ll_scale_grad_
from .gaussian import reparameterize_kl_bwd, reparameterize_kl_fwd

__all__ = [
    "bernoulli_ll_fwd",
    "bernoulli_ll_bwd",
    "bernoulli_ll_scale_grad_",
    "reparameterize_kl_fwd",
    "reparameterize_kl_bwd",
]
