"""Triton kernels of fastvae, installed as ``fastvae.kernels``; they know nothing of autograd
or of ``fastvae`` (nothing here imports from it) and run as a plain package too.

One module per fused op, each holding its ``@triton.jit`` kernels and the small launch
functions that validate nothing, allocate outputs, pick block sizes and launch (through
``_launch.launch``, the one place where work is handed to Triton):

* ``likelihood.py``: the elementwise log-likelihoods (Bernoulli, continuous Bernoulli,
  Gaussian, Poisson, negative binomial; the math per element in ``_terms.py``, ``_counts.py``
  and ``_gamma.py``) and their gradients in one pass; ``rescale.py``: its backward passes over the
  gradients it stored;
* ``softmax_counts.py``: the count likelihoods fused with scVI's softmax decoder (row-wise);
* ``gaussian.py``: the reparameterized sample and KL; ``importance.py``: K samples and their
  log importance ratios;

and what they share: ``modes.py`` (the compile-time modes by name), ``_noise.py`` (the
in-kernel normals and the tiling that follows them), ``_math.py`` (float32 math),
``_launch.py`` (tiles, strides, the call into Triton), ``_env.py`` (the interpreter switch and
the sum dtype, which ``fastvae`` imports from here).

``modes`` and ``_env`` import without Triton; the launchers below are imported on first use,
so that ``import fastvae`` works (on its PyTorch backend) where Triton is not installed.
"""

import importlib

_LAUNCHERS = {  # launcher -> the module (relative) that holds it
    "likelihood_pass": ".likelihood", "grad_like": ".likelihood",
    "scale_rows": ".rescale", "sum_partials": ".rescale",
    "reparameterize_kl_fwd": ".gaussian", "reparameterize_kl_bwd": ".gaussian",
    "reparameterize_iw_fwd": ".importance", "reparameterize_iw_bwd": ".importance",
    "softmax_counts": ".softmax_counts",
}

__all__ = sorted(_LAUNCHERS)


def __getattr__(name):
    module = _LAUNCHERS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # imported once
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAUNCHERS))
