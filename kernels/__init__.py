"""Triton kernels of fastvae, installed as ``fastvae.kernels``.

One module per fused op. Each holds its ``@triton.jit`` kernels and the small launch
functions that validate nothing, allocate outputs, pick block sizes and launch (through
``_launch.launch``, the one place where work is handed to Triton). The launchers know nothing
of autograd: ``fastvae.ops`` wraps them as autograd functions and ``torch.library`` ops.
"""

from .bernoulli import bernoulli_grad_like, bernoulli_ll_bwd, bernoulli_ll_fwd, bernoulli_ll_scale_grad
from .gaussian import reparameterize_kl_bwd, reparameterize_kl_fwd

__all__ = [
    "bernoulli_grad_like",
    "bernoulli_ll_fwd",
    "bernoulli_ll_bwd",
    "bernoulli_ll_scale_grad",
    "reparameterize_kl_fwd",
    "reparameterize_kl_bwd",
]
