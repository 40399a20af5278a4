"""Inputs for any likelihood of the registry, made from its record alone (``fastvae.likelihoods``):
parameters of the decoder's kind, targets in the likelihood's support, its keyword arguments,
and the float64 truth. The contract test (tests/ops/test_likelihood_contract.py) runs every
record through these; a new record whose support, uint8 meaning or argument is not known here
fails loudly."""

import torch

from fastvae import _mixture, likelihoods

from helpers import randn

COUNT_DTYPES = ("int16", "int32", "int64")


def x_shape(spec, shape):
    """The targets' shape for a generic (B, ...) ``shape``: itself, or for a record whose
    parameters have their own layout (an image's channels at dim 1): the shape itself where it is
    an image already (3 or more dims, 1 or 3 at dim 1), else a channel dim inserted (3 channels
    for an even last size, else 1)."""
    if spec.layout is None or (len(shape) >= 3 and shape[1] in (1, 3)):
        return tuple(shape)
    return (shape[0], 3 if shape[-1] % 2 == 0 else 1, *shape[1:])


def settings(spec, shape):
    """A layout record's settings for a generic shape, from its last size alone (so that one
    sample's shape and K samples' give the same): 2 to 4 mixtures, 8 or 5 bits."""
    if spec.layout is None:
        return {}
    return {"num_mixtures": 2 + shape[-1] % 3, "bits": 5 if shape[-1] % 4 == 1 else 8}


def p_shape(spec, shape):
    """The parameters' shape for the generic ``shape`` (its own for an elementwise record)."""
    if spec.layout is None:
        return tuple(shape)
    return spec.params_shape(x_shape(spec, shape), spec.bind(settings(spec, shape)))


def _mixture_params(spec, shape, dtype, device, noncontig):
    # logits and means ~ N(0, 1), coefficients ~ N(0, 1), log-scales ~ N(-2, 1): sharp and flat ones
    p = randn(p_shape(spec, shape), torch.float32, device, noncontig=noncontig)
    with torch.no_grad():
        _mixture.parts(p, settings(spec, shape)["num_mixtures"], 1)[2].sub_(2.0)
    return p.to(dtype)


def target_kinds(spec):
    """The target dtypes a record reads: float, uint8, bool, and the integer ones for counts."""
    return ("float", "uint8", "bool") + (COUNT_DTYPES if spec.counts else ())


def params(spec, shape, dtype, device, noncontig=False):
    """Decoder outputs: logits spread over the sigmoid's range, means near the targets, or
    positive means of counts from 1e-3 to 50."""
    if spec.counts:
        return randn(shape, torch.float32, device, scale=1.5, noncontig=noncontig).exp().to(dtype) * 2
    if spec.layout is not None:
        return _mixture_params(spec, shape, dtype, device, noncontig)
    scale = 3.0 if spec.param == "logits" else 1.0
    return randn(shape, dtype, device, scale=scale, noncontig=noncontig)


def targets(spec, shape, kind, device, dtype=torch.float32):
    """Targets of ``kind`` (float, uint8, bool, an integer dtype) in the likelihood's support
    (for levels of an image: the lowest and the highest level among them)."""
    if kind == "bool":
        return torch.rand(x_shape(spec, shape), device=device) < 0.4
    if spec.uint8 == likelihoods.LEVELS:
        top = 2 ** settings(spec, shape)["bits"] - 1
        k = torch.randint(0, top + 1, x_shape(spec, shape), device=device)
        if k.numel() > 1:
            k.view(-1)[0], k.view(-1)[-1] = 0, top
        return k.to(torch.uint8) if kind == "uint8" else (k * (2.0 / top) - 1.0).to(dtype)
    if spec.counts:  # overdispersed counts with many zeros, as single-cell data
        rate = torch.distributions.Gamma(0.5, 0.1).sample(shape).to(device) * (torch.rand(shape, device=device) < 0.6)
        counts = torch.poisson(rate)
        if kind == "uint8":
            counts = counts.clamp(max=255)
        return counts.to(dtype if kind == "float" else getattr(torch, kind))
    if kind == "uint8":
        top = {likelihoods.BINARY: 2, likelihoods.EIGHT_BIT: 256}.get(spec.uint8)
        if top is None:
            raise NotImplementedError(f"{spec.name}: no uint8 targets for {spec.uint8!r}; add them here")
        return torch.randint(0, top, shape, device=device, dtype=torch.uint8)
    if spec.support == likelihoods.UNIT_INTERVAL:
        return torch.rand(shape, device=device).to(dtype)
    if spec.support == likelihoods.FINITE:
        return torch.randn(shape, device=device).to(dtype)
    raise NotImplementedError(f"{spec.name}: no float targets for support {spec.support!r}; add them here")


def outside_support(spec, shape, device):
    """(float targets, what the error names) for ``validate_args=True`` to refuse."""
    x = targets(spec, shape, "float", device)
    if spec.support == likelihoods.SIGNED_UNIT:
        x.view(-1)[1] = 1.5
        return x, r"values in \[-1, 1\]"
    if spec.counts:
        x.view(-1)[1] = 1.5
        return x, r"counts \(non-negative integers\)"
    x.view(-1)[1] = 1.5 if spec.support == likelihoods.UNIT_INTERVAL else float("nan")
    return x, (r"values in \[0, 1\]" if spec.support == likelihoods.UNIT_INTERVAL else "finite values")


# the forms of the extra arguments (``extra``): a number (a logscale only), or tensors broadcast
# to the parameters' shape: shared by everything (0-d), per feature, per channel ((1, C, 1, 1) of
# 4-D parameters), per element, or per row ((B, 1, ...): one value for a whole row). A log theta
# takes the shared, per-feature and per-element forms (the README's).
EXTRA_FORMS = ("number", "shared", "feature", "channel", "element", "row")
THETA_FORMS = ("shared", "feature", "element")
# the documented extremes of the extra arguments: logscale +-20, theta 1e-4 .. 1e6, dropout logits
ARG_EXTREMES = {"logscale": (20.0, -20.0), "log_theta": (-9.2, 13.8), "zero_inflation_logits": (30.0, -30.0)}


def extra_forms(spec, shape):
    """The forms of ``extra`` that fit parameters of ``shape`` (none without a logscale or log theta)."""
    names = {n for n, _ in spec.arguments}
    if "logscale" in names:
        return tuple(f for f in EXTRA_FORMS if f != "channel" or len(shape) == 4)
    return THETA_FORMS if "log_theta" in names else ()


def _extreme(t, name, extreme):
    if not extreme:
        return t
    ends = torch.tensor(ARG_EXTREMES[name], dtype=torch.float64)[torch.randint(0, 2, t.shape, device=t.device)]
    return torch.where(torch.rand(t.shape, device=t.device) < 0.5, t, ends.to(t.dtype))


def extra(spec, shape, dtype, device, form="shared", extreme=False, param_shape=None):
    """The likelihood's keyword arguments (name -> value), as ``spec.bind`` fills them: a logscale
    or log theta of ``form`` (one of ``EXTRA_FORMS``; ``number``: a logscale's float, a log
    theta per feature), zero-inflation logits of the parameters' shape (``param_shape``, default
    ``shape``) where the record needs them; each tensor requires grad. With ``extreme``, about
    half the values at the documented extremes (``ARG_EXTREMES``). A layout record's arguments
    are its settings (``settings``)."""
    if spec.layout is not None:
        return settings(spec, shape)
    args = {}
    for name, default in spec.arguments:
        if name in ("logscale", "log_theta"):
            if form == "number" and name == "logscale":
                args[name] = 20.0 if extreme else -0.3
                continue
            size = {"shared": (), "feature": shape[1:], "channel": (1, shape[1], 1, 1)[:len(shape)],
                    "element": shape, "row": (shape[0],) + (1,) * (len(shape) - 1), "number": shape[1:]}[form]
            t = _extreme(randn(size, dtype, device, scale=0.5), name, extreme)
            args[name] = t.detach().requires_grad_(True)
        elif name == "zero_inflation_logits":
            if default is likelihoods.REQUIRED:
                t = _extreme(randn(param_shape or shape, dtype, device), name, extreme)
                args[name] = t.detach().requires_grad_(True)
        elif name != "log_library":
            raise NotImplementedError(f"{spec.name}: no inputs for its argument {name!r}; add them here")
    return args


def tensors(args):
    """The tensor arguments, in order."""
    return [v for v in args.values() if isinstance(v, torch.Tensor)]


# the extreme values each kind of decoder output documents (the README's Testing section and
# its count data section): the fuzzing mixes them among ordinary values
EXTREMES = {"logits": (1e4, -1e4, 30.0, -30.0, 0.0, 1e-7, -1e-7, 1e-4, -1e-4),
            "mean": (1e4, -1e4, 30.0, -30.0, 0.0),
            "counts": (1e-8, 1e-3, 1e4, 1e5, 0.5)}  # a count likelihood's means (or rates)


def extremes(spec):
    """The documented extreme values of the record's decoder output (``spec.param``)."""
    key = "counts" if spec.counts else spec.param
    if key not in EXTREMES:
        raise NotImplementedError(f"{spec.name}: no extreme values for {spec.param!r}; add them here")
    return EXTREMES[key]


def call(spec, p, x, args, fused=True, **kw):
    """The likelihood's function, fused (``fastvae``) or its twin (``fastvae.reference``)."""
    return spec.call(p, x, args, fused=fused, **kw)


def truth(spec, p, x, args, g):
    """float64 reference: (ll, grad p, grad x or None, grads of the tensor args) for upstream g."""
    p64 = p.detach().double().requires_grad_(True)
    x64 = x.detach().double().requires_grad_(True) if x.is_floating_point() and not spec.discrete else x.detach()
    a64 = {n: v.detach().double().requires_grad_(True) if isinstance(v, torch.Tensor) else v for n, v in args.items()}
    ll = call(spec, p64, x64, a64, fused=False)
    ll.backward(g.double())
    return ll.detach(), p64.grad, x64.grad, [t.grad for t in tensors(a64)]
