"""Input validation shared by the fused ops and their references (metadata only: no sync)."""

from numbers import Integral, Real

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_FLOAT_NAMES = "float16, bfloat16, float32 or float64"


def _tensor(name, t):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")


def _float(name, t):
    _tensor(name, t)
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating tensor ({_FLOAT_NAMES}), got dtype {t.dtype}")
    if t.dim() < 1:
        raise ValueError(f"{name} must have a batch dimension (shape (B, ...)), got a 0-d tensor")


def _same(name_a, a, name_b, b):
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)} (fastvae never broadcasts)")
    if a.device != b.device:
        raise ValueError(f"{name_a} and {name_b} must be on the same device, got {a.device} and {b.device}")


def check_gaussian(mu, logvar, eps=None, generator=None):
    _float("mu", mu)
    _float("logvar", logvar)
    if mu.dtype != logvar.dtype:
        raise TypeError(f"mu and logvar must have the same dtype, got {mu.dtype} and {logvar.dtype}")
    _same("mu", mu, "logvar", logvar)
    if eps is not None:
        _float("eps", eps)
        _same("mu", mu, "eps", eps)
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if generator.device.type != mu.device.type:
            raise ValueError(f"generator is on {generator.device} but mu is on {mu.device}; "
                             "pass a generator of mu's device type")


def check_bernoulli(logits, x):
    _float("logits", logits)
    _tensor("x", x)
    if x.dtype not in FLOAT_DTYPES + (torch.bool, torch.uint8):
        raise TypeError(f"x must be {_FLOAT_NAMES}, bool, or uint8 holding 0/1, got dtype {x.dtype}")
    _same("logits", logits, "x", x)


def check_int(name, value, minimum=None):
    """``value`` as an int (NumPy integers accepted); TypeError for any other type, ValueError
    below ``minimum``. The one integer-argument check of the package."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_reduction(reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def check_beta(beta):
    if isinstance(beta, bool) or not isinstance(beta, Real):
        raise TypeError(f"beta must be a real number (float, int or NumPy scalar), got {type(beta).__name__}")


def check_elbo(recon_logits, x, mu, logvar, beta, reduction, kl=None):
    check_bernoulli(recon_logits, x)
    if kl is None:
        if mu is None or logvar is None:
            raise ValueError("pass mu and logvar, or the per-row kl (e.g. from fastvae.reparameterize_kl)")
        check_gaussian(mu, logvar)
        batch, name, device = mu.shape[0], "mu", mu.device
    else:
        if mu is not None or logvar is not None:
            raise ValueError("pass either mu and logvar, or kl, not both")
        _float("kl", kl)
        if kl.dim() != 1:
            raise ValueError(f"kl must be per row, shape (B,), got {tuple(kl.shape)}")
        batch, name, device = kl.shape[0], "kl", kl.device
    if recon_logits.shape[0] != batch:
        raise ValueError(f"recon_logits and {name} must have the same batch size, got "
                         f"{tuple(recon_logits.shape)} and batch {batch}")
    if recon_logits.device != device:
        raise ValueError(f"recon_logits and {name} must be on the same device, got {recon_logits.device} and {device}")
    check_beta(beta)
    check_reduction(reduction)
