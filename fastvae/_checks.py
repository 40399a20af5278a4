"""Input validation shared by the fused ops and their references (metadata only: no sync)."""

from numbers import Integral, Real

import torch

from . import likelihoods
from ._mistakes import warn_if_probabilities

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


def check_prior(mu, prior_mu, prior_logvar):
    """A learned Gaussian prior: both ``prior_mu`` and ``prior_logvar`` or neither, each a float
    tensor of mu's shape, dtype and device (any strides: an expanded (1, L) view is fine).
    Returns whether a prior was given."""
    if (prior_mu is None) != (prior_logvar is None):
        given = "prior_mu" if prior_mu is not None else "prior_logvar"
        raise ValueError(f"give both prior_mu and prior_logvar (a Gaussian prior) or neither (N(0, I)); "
                         f"got {given} alone")
    if prior_mu is None:
        return False
    for name, t in (("prior_mu", prior_mu), ("prior_logvar", prior_logvar)):
        _float(name, t)
        if t.dtype != mu.dtype:
            raise TypeError(f"{name} must have mu's dtype {mu.dtype}, got {t.dtype}")
        if t.shape != mu.shape:
            raise ValueError(f"{name} must have mu's shape {tuple(mu.shape)}, got {tuple(t.shape)} (fastvae never "
                             f"broadcasts: expand a learned (1, L) prior with .expand_as(mu), which copies nothing)")
        if t.device != mu.device:
            raise ValueError(f"{name} and mu must be on the same device, got {t.device} and {mu.device}")
    return True


def check_prior_path(prior):
    """``path_gradient=True`` (DReG) is refused with a prior: the prior belongs to the generative
    model, whose gradient takes the IWAE weights, while the loss gives a log ratio DReG's squared
    ones."""
    if prior:
        raise ValueError("path_gradient=True (DReG) with a prior is not supported: the prior's parameters would "
                         "get DReG's squared weights instead of the IWAE weights; use path_gradient=False "
                         "(estimator='iwae')")


COUNT_DTYPES = (torch.uint8, torch.int16, torch.int32, torch.int64)


def _targets_text(spec):
    if spec.counts:
        return "an integer dtype (uint8, int16, int32, int64) holding counts"
    return "uint8 holding 0/1" if spec.uint8 == likelihoods.BINARY else f"uint8 (read as {spec.uint8})"


def check_targets_dtype(spec, x):
    """Targets ``x`` are a tensor of a dtype likelihood ``spec`` reads."""
    _tensor("x", x)
    if x.dtype not in FLOAT_DTYPES + (torch.bool, torch.uint8) + (COUNT_DTYPES if spec.counts else ()):
        raise TypeError(f"x must be {_FLOAT_NAMES}, bool, or {_targets_text(spec)}, got dtype {x.dtype}")


def check_likelihood(spec, p, x, logscale=None):
    """Parameters ``p`` (B, ...) float and targets ``x`` of its shape for the likelihood of
    record ``spec`` (``fastvae.likelihoods``), and, where it has a scale, a logscale: a real
    number or a float tensor broadcastable to p's shape without changing it."""
    _float(spec.param, p)
    check_targets_dtype(spec, x)
    _same(spec.param, p, "x", x)
    if spec.has_scale:
        check_logscale(logscale, p)


def check_broadcast(name, t, p, p_name):
    """``t``: a float tensor on p's device that broadcasts to p's shape without changing it."""
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating tensor ({_FLOAT_NAMES}), got dtype {t.dtype}")
    if t.device != p.device:
        raise ValueError(f"{name} and {p_name} must be on the same device, got {t.device} and {p.device}")
    try:
        shape = torch.broadcast_shapes(t.shape, p.shape)
    except RuntimeError:
        shape = None
    if shape != p.shape:
        raise ValueError(f"{name} of shape {tuple(t.shape)} does not broadcast to {p_name}'s shape "
                         f"{tuple(p.shape)} without changing it (use a 0-d, a per-feature {tuple(p.shape[1:])}, "
                         f"a per-channel or a per-element {tuple(p.shape)} tensor)")


def check_logscale(logscale, mean):
    if isinstance(logscale, torch.Tensor):
        check_broadcast("logscale", logscale, mean, "mean")
    elif isinstance(logscale, bool) or not isinstance(logscale, Real):
        raise TypeError(f"logscale must be a real number or a tensor, got {type(logscale).__name__}")


def check_counts(spec, p, x, log_theta=None, zero_inflation_logits=None):
    """A count likelihood's inputs: ``p`` (B, ...) float, counts ``x`` of its shape, ``log_theta``
    a tensor broadcastable to p's shape without changing it (or None), zero-inflation logits of
    p's shape (or None)."""
    check_likelihood(spec, p, x)
    if log_theta is not None:
        _tensor("log_theta", log_theta)
        check_broadcast("log_theta", log_theta, p, spec.param)
    if zero_inflation_logits is not None:
        _float("zero_inflation_logits", zero_inflation_logits)
        _same(spec.param, p, "zero_inflation_logits", zero_inflation_logits)


def check_softmax_counts(logits, log_library):
    """The softmax form's logits (B, G) and log library sizes (B,) or (B, 1)."""
    _float("logits", logits)
    if logits.dim() != 2:
        raise ValueError(f"logits must be (B, G), one row of gene logits per cell, got shape {tuple(logits.shape)}")
    _float("log_library", log_library)
    if tuple(log_library.shape) not in ((logits.shape[0],), (logits.shape[0], 1)):
        raise ValueError(f"log_library must be (B,) or (B, 1) with B = {logits.shape[0]}, got shape "
                         f"{tuple(log_library.shape)}")
    if log_library.device != logits.device:
        raise ValueError(f"log_library and logits must be on the same device, got {log_library.device} and "
                         f"{logits.device}")


def validate_targets(spec, x):
    """``validate_args=True``: the target values lie in the support of the likelihood of record
    ``spec`` (one reduction and a host sync: off by default). ValueError naming the offending
    value otherwise."""
    if x.dtype == torch.bool or x.numel() == 0:
        return
    if spec.counts:
        bad = (x < 0) if not x.is_floating_point() else ~((x >= 0) & (x == torch.floor(x)) & torch.isfinite(x))
        what = "counts (non-negative integers)"
    elif x.dtype == torch.uint8:
        bad = x > 1 if spec.uint8 == likelihoods.BINARY else None
        what = (f"0 or 1 (uint8 targets of the {spec.title} likelihood are 0/1; raw 8-bit images: binarize "
                f"them, or use a likelihood that reads uint8 as k/255)")
    elif spec.support == likelihoods.FINITE:
        bad, what = ~torch.isfinite(x), "finite values"
    else:
        bad, what = ~((x >= 0) & (x <= 1)), "values in [0, 1]"
    if bad is not None and bool(bad.any()):
        i = int(bad.flatten().nonzero()[0])
        raise ValueError(f"x must hold {what} for the {spec.title} likelihood; "
                         f"x.flatten()[{i}] = {x.flatten()[i].item()!r}")


def validate_values(spec, p, x):
    """``validate_args=True``: the targets ``x`` in the likelihood's support (a ValueError
    otherwise), and a warning, once, when the decoder output ``p`` looks like probabilities
    where the likelihood takes logits (``fastvae._mistakes``)."""
    validate_targets(spec, x)
    warn_if_probabilities(spec, p)


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
    if type(beta) is float or type(beta) is int:  # the usual case, without the ABC check's cost
        return
    if isinstance(beta, bool) or not isinstance(beta, Real):
        raise TypeError(f"beta must be a real number (float, int or NumPy scalar), got {type(beta).__name__}")


def check_likelihood_args(spec, p, x, args):
    """Parameters, targets and the likelihood's keyword arguments ``args`` (``spec.bind``'s)."""
    if not spec.counts:
        return check_likelihood(spec, p, x, args.get("logscale"))
    if args.get("log_library") is not None:
        check_softmax_counts(p, args["log_library"])
    check_counts(spec, p, x, args.get("log_theta"), args.get("zero_inflation_logits"))


def check_elbo(spec, recon_logits, x, mu, logvar, beta, reduction, kl=None, args=None):
    check_likelihood_args(spec, recon_logits, x, args or {})
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
    recon = "recon_logits" if spec.param == "logits" else f"the {spec.param} (recon_logits)"
    if recon_logits.shape[0] != batch:
        raise ValueError(f"{recon} and {name} must have the same batch size, got "
                         f"{tuple(recon_logits.shape)} and batch {batch}")
    if recon_logits.device != device:
        raise ValueError(f"{recon} and {name} must be on the same device, got {recon_logits.device} and {device}")
    check_beta(beta)
    check_reduction(reduction)


ESTIMATORS = ("iwae", "dreg")


def check_num_samples(num_samples):
    return check_int("num_samples", num_samples, 1)


def check_iw_eps(eps, mu, K):
    if eps is not None:
        _float("eps", eps)
        if tuple(eps.shape) != (K, *mu.shape):
            raise ValueError(f"eps must have shape (num_samples, *mu.shape) = {(K, *mu.shape)}, got {tuple(eps.shape)}")
        if eps.device != mu.device:
            raise ValueError(f"eps and mu must be on the same device, got {eps.device} and {mu.device}")


def check_eager_dreg(what):
    """DReG's weights pass from the loss to z's backward through a Python object (``_dreg.Slot``)
    that ``torch.compile`` does not follow: traced, the gradients would come out silently wrong.
    Refused while compiling, on every backend."""
    if torch.compiler.is_compiling():
        raise NotImplementedError(f"{what} (estimator='dreg') runs eagerly only; torch.compile supports "
                                  "estimator='iwae'")


def check_iwae(spec, recon, x, log_ratio, args, z, estimator, reduction, has_slot):
    """iwae_loss's inputs: recon (K, B, ...), x (B, ...), log_ratio (K, B); see fastvae.iwae_loss."""
    _float(f"recon ({spec.param})", recon)
    if recon.dim() < 2:
        raise ValueError(f"recon must be (K, B, ...), one decoder output per sample, got shape {tuple(recon.shape)}")
    check_targets_dtype(spec, x)
    if tuple(x.shape) != tuple(recon.shape[1:]):
        raise ValueError(f"x must have one sample's shape recon.shape[1:] = {tuple(recon.shape[1:])} (it is not "
                         f"repeated per sample), got {tuple(x.shape)}")
    _float("log_ratio", log_ratio)
    if tuple(log_ratio.shape) != tuple(recon.shape[:2]):
        raise ValueError(f"log_ratio must be (K, B) = {tuple(recon.shape[:2])}, got {tuple(log_ratio.shape)}")
    for name, t in (("x", x), ("log_ratio", log_ratio)):
        if t.device != recon.device:
            raise ValueError(f"recon and {name} must be on the same device, got {recon.device} and {t.device}")
    for name, t in args.items():  # per sample (K, B, ...), or broadcast against one sample's shape
        per_sample = isinstance(t, torch.Tensor) and tuple(t.shape) == tuple(recon.shape)
        against = recon if per_sample else recon[0]
        if name == "logscale":
            check_logscale(t, against)
        elif name == "log_theta" and t is not None:
            _tensor(name, t)
            check_broadcast(name, t, against, "recon")
        elif name == "zero_inflation_logits" and t is not None:
            _float(name, t)
            _same("recon", recon, name, t)
        elif name == "log_library" and t is not None:
            check_softmax_counts(recon[0], t)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if estimator == "dreg":
        check_eager_dreg("iwae_loss(estimator='dreg')")
        if z is None:
            raise ValueError("estimator='dreg' needs z=, the z of reparameterize_iw(..., path_gradient=True)")
        if not has_slot:
            raise ValueError("estimator='dreg' needs the z returned by reparameterize_iw(..., path_gradient=True) "
                             "itself (not a copy, a view or a z made otherwise)")
        if tuple(z.shape[:2]) != tuple(recon.shape[:2]):
            raise ValueError(f"z must be (K, B, ...) with (K, B) = {tuple(recon.shape[:2])}, got {tuple(z.shape)}")
    check_reduction(reduction)
