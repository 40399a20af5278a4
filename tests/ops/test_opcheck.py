"""PyTorch's registration checker on every custom op of the ``fastvae::`` namespace (what
``torch.compile`` sees): ``torch.library.opcheck`` tests the schema, the fake (meta) function,
the autograd registration and AOT dispatch with dynamic shapes, on representative inputs. The
ops are enumerated from the dispatcher, so a new custom op without cases here fails
``test_every_custom_op_has_representative_inputs``; each likelihood of the registry gets its
cases from its record (``likelihood_cases``)."""

import likelihood_cases as cases
import pytest
import torch

from fastvae import likelihoods
from fastvae.kernels import modes

CPU = torch.device("cpu")


def _grad(t):
    return t.requires_grad_(True)


def _seed():
    return torch.randint(0, 2**63 - 1, (1,), dtype=torch.int64)


def _likelihood(rec, shape, dtype, target, form, grad=True):
    """(kind, p, x, s, s_value, q) of ``fastvae::likelihood`` for the record: s the logscale or
    log theta, q the zero-inflation logits."""
    p = cases.params(rec, shape, dtype, CPU).requires_grad_(grad)
    x = cases.targets(rec, shape, target, CPU, dtype)
    args = cases.extra(rec, shape, dtype, CPU, form)
    s = args.get("logscale", args.get("log_theta"))
    s_value = float(s) if s is not None and not isinstance(s, torch.Tensor) else 0.0
    s = s if isinstance(s, torch.Tensor) else None
    q = args.get("zero_inflation_logits")
    return rec.code, p, x, s, s_value, q


def _forms(rec):
    forms = cases.extra_forms(rec, (3, 2, 4, 5))
    return forms or ("shared",)


def _elementwise():
    # the records of fastvae::likelihood; a layout record (the mixture) has its own op
    return [rec for rec in likelihoods.records() if rec.layout is None]


def _likelihood_cases():
    out = []
    for rec in _elementwise():
        for form in _forms(rec):
            for shape, dtype, target in (((5, 7), torch.float32, "float"), ((3, 2, 4, 5), torch.bfloat16, "uint8")):
                if form == "channel" and len(shape) != 4:
                    continue
                out.append((f"{rec.name}, {form}, {dtype}, {target}",
                            lambda rec=rec, shape=shape, dtype=dtype, target=target, form=form:
                            _likelihood(rec, shape, dtype, target, form)))
    return out


def _likelihood_backward_cases():
    out = []
    form = {modes.GS_NONE: "number", modes.GS_ELEMENTS: "element", modes.GS_PARTIALS: "feature",
            modes.GS_ROW_SUMS: "row"}
    for rec in _elementwise():
        modes_ = (modes.GS_NONE,)
        if rec.has_scale:
            modes_ = (modes.GS_NONE, modes.GS_ELEMENTS, modes.GS_PARTIALS, modes.GS_ROW_SUMS)
        elif cases.extra_forms(rec, (4, 6)):  # a log theta
            modes_ = (modes.GS_ELEMENTS, modes.GS_PARTIALS, modes.GS_ROW_SUMS)
        for mode in modes_:
            def make(rec=rec, mode=mode):
                kind, p, x, s, s_value, q = _likelihood(rec, (4, 6), torch.float32, "float", form[mode], grad=False)
                s = None if s is None or mode == modes.GS_NONE and not rec.has_scale else s.detach()
                q = None if q is None else q.detach()
                return (kind, p, x, s, q, s_value, torch.randn(4), True, not rec.counts, mode, q is not None)
            out.append((f"{rec.name}, {mode}", make))
    return out


def _gaussian(shape=(5, 7), dtype=torch.float32):
    return _grad(torch.randn(shape, dtype=dtype)), _grad(torch.randn(shape, dtype=dtype) * 0.5)


def _prior(shape=(5, 7), dtype=torch.float32):
    """A learned prior (prior_mu, prior_logvar), as a hierarchy's p(z_l | z_<l) gives it."""
    return _gaussian(shape, dtype)


def _softmax_counts(zero_inflated, theta="feature", dtype=torch.float32, library=(5,)):
    """(logits, x, log_library, log_theta, q) of ``fastvae::softmax_counts``."""
    rec = likelihoods.get("zero_inflated_negative_binomial" if zero_inflated else "negative_binomial")
    logits = _grad(torch.randn(5, 33, dtype=dtype))
    x = cases.targets(rec, (5, 33), "int32", CPU)
    args = cases.extra(rec, (5, 33), dtype, CPU, theta) if theta else {}
    return (logits, x, _grad(3.0 + torch.randn(library, dtype=dtype)), args.get("log_theta"),
            args.get("zero_inflation_logits"))


def _softmax_counts_backward(mode, zero_inflated):
    logits, x, lib, s, q = (t.detach() if isinstance(t, torch.Tensor) else t
                            for t in _softmax_counts(zero_inflated, {modes.GS_NONE: None, modes.GS_ELEMENTS: "element",
                                                                     modes.GS_PARTIALS: "feature",
                                                                     modes.GS_ROW_SUMS: "shared"}[mode]))
    return logits, x, lib, s, q, torch.randn(5), True, True, mode, q is not None


def _mixture(shape, dtype=torch.float32, target="uint8"):
    """(params, x, num_mixtures, bits, dim) of ``fastvae::mixture`` for the generic ``shape``
    (``likelihood_cases``: its settings and layout)."""
    rec = likelihoods.get("discretized_logistic_mixture")
    s = rec.bind(cases.settings(rec, shape))
    return (cases.params(rec, shape, dtype, CPU).requires_grad_(True), cases.targets(rec, shape, target, CPU),
            s["num_mixtures"], s["bits"], s["dim"])


def _mixture_backward(shape):
    params, x, m, bits, dim = _mixture(shape)
    return params.detach(), x, torch.randn(shape[0]), m, bits, dim


CASES = {
    "fastvae::likelihood": _likelihood_cases(),
    "fastvae::likelihood_backward": _likelihood_backward_cases(),
    "fastvae::reparameterize_kl": [
        ("drawn, z and kl", lambda: (*_gaussian(), None, None, None, _seed(), True, True)),
        ("given eps, 3-D, bfloat16", lambda: (*_gaussian((3, 2, 5), torch.bfloat16), None, None,
                                              torch.randn(3, 2, 5, dtype=torch.bfloat16), None, True, True)),
        ("kl alone", lambda: (*_gaussian(), None, None, None, None, False, True)),
        ("z alone", lambda: (*_gaussian(), None, None, None, _seed(), True, False)),
        ("learned prior, drawn", lambda: (*_gaussian(), *_prior(), None, _seed(), True, True)),
        ("learned prior, kl alone, bfloat16", lambda: (*_gaussian((4, 3), torch.bfloat16),
                                                       *_prior((4, 3), torch.bfloat16), None, None, False, True)),
    ],
    "fastvae::reparameterize_kl_backward": [
        ("drawn", lambda: (torch.randn(5, 7), torch.randn(5, 7), None, None, None, _seed(), torch.randn(5, 7),
                           torch.randn(5))),
        ("given eps, kl alone", lambda: (torch.randn(5, 7), torch.randn(5, 7), None, None, torch.randn(5, 7), None,
                                         None, torch.randn(5))),
        ("learned prior, drawn", lambda: (torch.randn(5, 7), torch.randn(5, 7), torch.randn(5, 7), torch.randn(5, 7),
                                          None, _seed(), torch.randn(5, 7), torch.randn(5))),
    ],
    "fastvae::reparameterize_iw": [
        ("drawn", lambda: (*_gaussian(), None, None, None, _seed(), 3)),
        ("given eps, 3-D", lambda: (*_gaussian((3, 2, 5)), None, None, torch.randn(4, 3, 2, 5), None, 4)),
        ("learned prior, drawn", lambda: (*_gaussian(), *_prior(), None, _seed(), 3)),
    ],
    "fastvae::reparameterize_iw_backward": [
        ("drawn", lambda: (torch.randn(5, 7), torch.randn(5, 7), None, None, None, _seed(), 3, torch.randn(3, 5, 7),
                           torch.randn(3, 5))),
        ("given eps, log ratios alone", lambda: (torch.randn(5, 7), torch.randn(5, 7), None, None,
                                                 torch.randn(2, 5, 7), None, 2, None, torch.randn(2, 5))),
        ("learned prior, log ratios alone", lambda: (torch.randn(5, 7), torch.randn(5, 7), torch.randn(5, 7),
                                                     torch.randn(5, 7), None, _seed(), 3, None, torch.randn(3, 5))),
    ],
    "fastvae::softmax_counts": [
        ("negative binomial, per-gene theta", lambda: _softmax_counts(False)),
        ("zero-inflated, per-element theta, (B, 1) library", lambda: _softmax_counts(True, "element",
                                                                                    library=(5, 1))),
        ("Poisson (no theta), bfloat16", lambda: _softmax_counts(False, None, torch.bfloat16)),
    ],
    "fastvae::softmax_counts_backward": [
        (f"mode {mode}, {'zero-inflated' if zi else 'negative binomial'}",
         lambda mode=mode, zi=zi: _softmax_counts_backward(mode, zi))
        for mode, zi in ((modes.GS_NONE, False), (modes.GS_ELEMENTS, True), (modes.GS_PARTIALS, False),
                         (modes.GS_ROW_SUMS, True))],
    "fastvae::mixture": [
        ("grey 8-bit, uint8 levels", lambda: _mixture((3, 4, 5, 3))),
        ("colour 5-bit, float levels, bfloat16", lambda: _mixture((2, 3, 4, 5), torch.bfloat16, "float")),
    ],
    "fastvae::mixture_backward": [("grey", lambda: _mixture_backward((3, 4, 5, 3))),
                                  ("colour", lambda: _mixture_backward((2, 3, 4, 5)))],
    "fastvae::mixture_sample": [("colour", lambda: (_mixture((2, 3, 4, 5))[0].detach(), _seed(), 4, 1))],
    "fastvae::draw_seed": [("cpu", lambda: (CPU,))],
}


def test_every_custom_op_has_representative_inputs():
    registered = {n for n in torch._C._dispatch_get_all_op_names() if n.startswith("fastvae::")}
    assert registered, "no fastvae:: custom ops registered"
    missing = registered - set(CASES)
    assert not missing, f"custom ops without opcheck cases in tests/ops/test_opcheck.py: {sorted(missing)}"
    assert all(CASES[n] for n in registered)


# the seed draw is random by design (tagged nondeterministic_seeded): its schema, fake function
# and registration are checked, not the equality of two draws
_TESTS = {"fastvae::draw_seed": ("test_schema", "test_autograd_registration", "test_faketensor")}


@pytest.mark.parametrize("name, make", [(n, m) for n, ms in CASES.items() for _, m in ms],
                         ids=[f"{n}: {what}" for n, ms in CASES.items() for what, _ in ms])
def test_opcheck(name, make):
    namespace, op = name.split("::")
    overload = getattr(getattr(torch.ops, namespace), op).default
    kw = dict(test_utils=_TESTS[name]) if name in _TESTS else {}
    torch.library.opcheck(overload, make(), **kw)
