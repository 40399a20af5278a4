"""Inputs for any likelihood of the registry, made from its record alone (``fastvae.likelihoods``):
parameters of the decoder's kind, targets in the likelihood's support, its extra arguments, and
the float64 truth. The contract test (tests/ops/test_likelihood_contract.py) runs every record
through these; a new record whose support or uint8 meaning is not known here fails loudly."""

import torch

from fastvae import likelihoods

from helpers import randn

TARGET_KINDS = ("float", "uint8", "bool")


def params(spec, shape, dtype, device, noncontig=False):
    """Decoder outputs: logits spread over the sigmoid's range, or means near the targets."""
    scale = 3.0 if spec.param == "logits" else 1.0
    return randn(shape, dtype, device, scale=scale, noncontig=noncontig)


def targets(spec, shape, kind, device, dtype=torch.float32):
    """Targets of ``kind`` (float, uint8, bool) that lie in the likelihood's support."""
    if kind == "bool":
        return torch.rand(shape, device=device) < 0.4
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
    """(targets, what the error names) for ``validate_args=True`` to refuse, float targets."""
    x = targets(spec, shape, "float", device)
    x.view(-1)[1] = 1.5 if spec.support == likelihoods.UNIT_INTERVAL else float("nan")
    return x, (r"values in \[0, 1\]" if spec.support == likelihoods.UNIT_INTERVAL else "finite values")


# the forms of the extra arguments (``extra``): a number, or tensors broadcast to the parameters'
# shape: shared by everything (0-d), per feature, per channel ((1, C, 1, 1) of 4-D parameters),
# per element, or per row ((B, 1, ...): one value for a whole row)
EXTRA_FORMS = ("number", "shared", "feature", "channel", "element", "row")


def extra_forms(spec, shape):
    """The forms of ``extra`` that fit parameters of ``shape`` (none without extra arguments)."""
    if not spec.has_scale:
        return ()
    return tuple(f for f in EXTRA_FORMS if f != "channel" or len(shape) == 4)


def extra(spec, shape, dtype, device, form="shared", extreme=False):
    """The extra positional arguments the likelihood takes: a logscale where it has a scale
    (``form``: one of ``EXTRA_FORMS``); with ``extreme``, its documented extremes (logscale
    +-20) among ordinary values."""
    if not spec.has_scale:
        return ()
    if form == "number":
        return (20.0 if extreme else -0.3,)
    size = {"shared": (), "feature": shape[1:], "channel": (1, shape[1], 1, 1), "element": shape,
            "row": (shape[0],) + (1,) * (len(shape) - 1)}[form]
    s = randn(size, dtype, device, scale=0.5)
    if extreme:
        s = torch.where(torch.rand(size, device=device) < 0.5, s, torch.tensor(20.0, dtype=dtype, device=device)
                        * torch.randint(0, 2, size, device=device).mul(2).sub(1))
    return (s.requires_grad_(True),)


def extra_kwargs(spec, args):
    """The extra arguments as ``elbo_loss`` and ``iwae_loss`` take them, by keyword."""
    return dict(logscale=args[0]) if spec.has_scale and args else {}


# the extreme values each kind of decoder output documents (the README's Testing section): the
# fuzzing mixes them among ordinary values
EXTREMES = {"logits": (1e4, -1e4, 30.0, -30.0, 0.0, 1e-7, -1e-7, 1e-4, -1e-4),
            "mean": (1e4, -1e4, 30.0, -30.0, 0.0)}


def extremes(spec):
    """The documented extreme values of the record's decoder output (``spec.param``)."""
    if spec.param not in EXTREMES:
        raise NotImplementedError(f"{spec.name}: no extreme values for {spec.param!r}; add them here")
    return EXTREMES[spec.param]


def call(spec, p, x, args, fused=True, **kw):
    """The likelihood's function, fused (``fastvae``) or its twin (``fastvae.reference``)."""
    return (spec.fused if fused else spec.reference)(p, x, *args, **kw)


def truth(spec, p, x, args, g):
    """float64 reference: (ll, grad p, grad x or None, grads of the tensor args) for upstream g."""
    p64 = p.detach().double().requires_grad_(True)
    x64 = x.detach().double().requires_grad_(True) if x.is_floating_point() else x
    a64 = [a.detach().double().requires_grad_(True) if isinstance(a, torch.Tensor) else a for a in args]
    ll = call(spec, p64, x64, a64, fused=False)
    ll.backward(g.double())
    grads = [a.grad if isinstance(a, torch.Tensor) else None for a in a64]
    return ll.detach(), p64.grad, (x64.grad if x.is_floating_point() else None), grads
