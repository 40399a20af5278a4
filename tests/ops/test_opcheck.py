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
    """(kind, p, x, s, s_value) of ``fastvae::likelihood`` for the record."""
    p = cases.params(rec, shape, dtype, CPU).requires_grad_(grad)
    x = cases.targets(rec, shape, target, CPU, dtype)
    extra = cases.extra(rec, shape, dtype, CPU, form)
    s = extra[0] if extra and isinstance(extra[0], torch.Tensor) else None
    s_value = float(extra[0]) if extra and s is None else 0.0
    return rec.code, p, x, s, s_value


def _likelihood_cases():
    out = []
    for rec in likelihoods.records():
        forms = ("number",) + tuple(f for f in cases.extra_forms(rec, (3, 2, 4, 5)) if f != "number")
        for form in forms if rec.has_scale else ("shared",):
            for shape, dtype, target in (((5, 7), torch.float32, "float"), ((3, 2, 4, 5), torch.bfloat16, "uint8")):
                if form == "channel" and len(shape) != 4:
                    continue
                out.append((f"{rec.name}, {form}, {dtype}, {target}",
                            lambda rec=rec, shape=shape, dtype=dtype, target=target, form=form:
                            _likelihood(rec, shape, dtype, target, form)))
    return out


def _likelihood_backward_cases():
    out = []
    for rec in likelihoods.records():
        modes_ = (modes.GS_NONE, modes.GS_ELEMENTS, modes.GS_PARTIALS, modes.GS_ROW_SUMS) if rec.has_scale \
            else (modes.GS_NONE,)
        form = {modes.GS_NONE: "number", modes.GS_ELEMENTS: "element", modes.GS_PARTIALS: "feature",
                modes.GS_ROW_SUMS: "row"}
        for mode in modes_:
            def make(rec=rec, mode=mode):
                kind, p, x, s, s_value = _likelihood(rec, (4, 6), torch.float32, "float", form[mode], grad=False)
                return kind, p, x, None if s is None else s.detach(), s_value, torch.randn(4), True, True, mode
            out.append((f"{rec.name}, {mode}", make))
    return out


def _gaussian(shape=(5, 7), dtype=torch.float32):
    return _grad(torch.randn(shape, dtype=dtype)), _grad(torch.randn(shape, dtype=dtype) * 0.5)


CASES = {
    "fastvae::likelihood": _likelihood_cases(),
    "fastvae::likelihood_backward": _likelihood_backward_cases(),
    "fastvae::reparameterize_kl": [
        ("drawn, z and kl", lambda: (*_gaussian(), None, _seed(), True, True)),
        ("given eps, 3-D, bfloat16", lambda: (*_gaussian((3, 2, 5), torch.bfloat16),
                                              torch.randn(3, 2, 5, dtype=torch.bfloat16), None, True, True)),
        ("kl alone", lambda: (*_gaussian(), None, None, False, True)),
        ("z alone", lambda: (*_gaussian(), None, _seed(), True, False)),
    ],
    "fastvae::reparameterize_kl_backward": [
        ("drawn", lambda: (torch.randn(5, 7), torch.randn(5, 7), None, _seed(), torch.randn(5, 7), torch.randn(5))),
        ("given eps, kl alone", lambda: (torch.randn(5, 7), torch.randn(5, 7), torch.randn(5, 7), None, None,
                                         torch.randn(5))),
    ],
    "fastvae::reparameterize_iw": [
        ("drawn", lambda: (*_gaussian(), None, _seed(), 3)),
        ("given eps, 3-D", lambda: (*_gaussian((3, 2, 5)), torch.randn(4, 3, 2, 5), None, 4)),
    ],
    "fastvae::reparameterize_iw_backward": [
        ("drawn", lambda: (torch.randn(5, 7), torch.randn(5, 7), None, _seed(), 3, torch.randn(3, 5, 7),
                           torch.randn(3, 5))),
        ("given eps, log ratios alone", lambda: (torch.randn(5, 7), torch.randn(5, 7), torch.randn(2, 5, 7), None, 2,
                                                 None, torch.randn(2, 5))),
    ],
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
