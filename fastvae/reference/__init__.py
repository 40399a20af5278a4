"""Plain PyTorch twins of every fused op: the ground truth for the tests, the baseline for the
benchmarks, and the ``torch`` backend. Same signatures and output dtypes as the fused ops;
obviously right rather than fast; float64-capable.

Shapes: the first dimension is the batch B; per-row results sum over all other dimensions.
Results that are sums (log-likelihood, KL) are float32 for float16/bfloat16/float32 inputs
and float64 for float64 inputs; z and gradients have their inputs' dtypes.

``_core``: the Gaussian latent, the image likelihoods, the ELBO and the importance-weighted
bound; ``_counts``: the count likelihoods.
"""

from ._core import (
                    bernoulli_log_likelihood,
                    continuous_bernoulli_log_likelihood,
                    elbo_loss,
                    ELBOLoss,
                    ELBOTerms,
                    gaussian_kl,
                    gaussian_log_likelihood,
                    iwae_loss,
                    reparameterize,
                    reparameterize_iw,
                    reparameterize_kl,
)
from ._counts import negative_binomial_log_likelihood, poisson_log_likelihood, softmax_negative_binomial_log_likelihood

__all__ = ["ELBOLoss", "ELBOTerms", "bernoulli_log_likelihood", "continuous_bernoulli_log_likelihood", "elbo_loss",
           "gaussian_kl", "gaussian_log_likelihood", "iwae_loss", "negative_binomial_log_likelihood",
           "poisson_log_likelihood", "reparameterize", "reparameterize_iw", "reparameterize_kl",
           "softmax_negative_binomial_log_likelihood"]
