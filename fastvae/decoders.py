"""What a VAE's decoder output means for each likelihood: the distribution's mean (what
``sample`` and reconstructions show), the output bias that makes an untrained model predict
the average image, and the Gaussian's logscale (fixed, or a learned parameter with a floor).
The registry (``fastvae.likelihoods``) names each likelihood's pair of functions here.

* Bernoulli: the output is logits l; mean ``sigmoid(l)``.
* continuous Bernoulli: logits l; mean ``lam/(2 lam - 1) + 1/(2 atanh(1 - 2 lam))`` with
  ``lam = sigmoid(l)``, which is ``1/(1 - exp(-l)) - 1/l`` (0.5 at l = 0): not ``sigmoid(l)``.
* Gaussian: the output is the mean itself; the logscale is a number (fixed), ``"learned"`` (one
  shared learned value) or ``"per-pixel"`` (one learned value per feature). A learned logscale
  is clamped from below at ``LOGSCALE_FLOOR`` (e.g. a pixel that is the same in every image
  would otherwise drive its scale to 0 and its log-density to infinity; below the floor its
  gradient is zero).
"""

from numbers import Real

import torch

LOGSCALE_FLOOR = -5.0
LOGSCALES = ("learned", "per-pixel")


def check_logscale_setting(logscale):
    """``"learned"``, ``"per-pixel"`` or a finite number; ValueError/TypeError otherwise."""
    if isinstance(logscale, str):
        if logscale not in LOGSCALES:
            raise ValueError(f"logscale must be 'learned', 'per-pixel' or a number, got {logscale!r}")
        return logscale
    if isinstance(logscale, bool) or not isinstance(logscale, Real):
        raise TypeError(f"logscale must be 'learned', 'per-pixel' or a number, got {type(logscale).__name__}")
    if not torch.isfinite(torch.tensor(float(logscale))):
        raise ValueError(f"logscale must be finite, got {logscale!r}")
    return float(logscale)


def continuous_bernoulli_mean(logits: torch.Tensor) -> torch.Tensor:
    """Mean of a continuous Bernoulli with these logits: ``1/(1 - exp(-l)) - 1/l``, formed in
    float64 (``0.5 + l/12`` near 0, where the two terms cancel), returned in float32."""
    l = logits.double()
    small = l.abs() < 1e-4
    safe = torch.where(small, torch.ones_like(l), l)
    mean = torch.where(small, 0.5 + l / 12, -1 / torch.expm1(-safe) - 1 / safe)
    return mean.float()


def bernoulli_mean(logits: torch.Tensor) -> torch.Tensor:
    """The Bernoulli's mean, ``sigmoid(l)`` (float32)."""
    return torch.sigmoid(logits.float())


def gaussian_mean(mean: torch.Tensor) -> torch.Tensor:
    """The Gaussian's mean: the output itself (float32)."""
    return mean.float()


def _cb_logit_of_mean(m: torch.Tensor) -> torch.Tensor:
    # the logit whose continuous-Bernoulli mean is m (increasing in l): bisection, float64
    lo, hi = torch.full_like(m, -60.0), torch.full_like(m, 60.0)
    for _ in range(80):
        mid = (lo + hi) / 2
        above = continuous_bernoulli_mean(mid).double() > m
        hi, lo = torch.where(above, mid, hi), torch.where(above, lo, mid)
    return (lo + hi) / 2


def bernoulli_logits_of(means: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """The logits (float64) whose Bernoulli means are ``means``, clamped to [eps, 1 - eps]."""
    m = means.double().clamp(eps, 1 - eps)
    return torch.log(m / (1 - m))


def continuous_bernoulli_logits_of(means: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """The logits (float64) whose continuous-Bernoulli means are ``means``, clamped to [eps, 1 - eps]."""
    return _cb_logit_of_mean(means.double().clamp(eps, 1 - eps))


def gaussian_mean_of(means: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """The Gaussian's output for ``means``: the means themselves (float64; ``eps`` unused)."""
    return means.double()
