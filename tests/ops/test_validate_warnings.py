"""What ``validate_args=True`` warns about without refusing (``fastvae/_mistakes.py``):
probabilities passed where the likelihood takes logits (a decoder that still ends in a
sigmoid), once per process, for every likelihood whose decoder outputs logits, on the kernels
and the reference alike. And the kernels' launches through Triton's interpreter, which keep
its NumPy warnings to themselves."""

import warnings

import likelihood_cases as cases
import pytest
import torch

import fastvae
from fastvae import _mistakes, likelihoods, reference

LOGITS = [r for r in likelihoods.records() if r.param == "logits"]
OTHERS = [r for r in likelihoods.records() if r.param != "logits"]


@pytest.fixture(autouse=True)
def _not_warned_yet(monkeypatch):
    monkeypatch.setattr(_mistakes, "_warned", set())


def _caught(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [w for w in caught if "look like probabilities" in str(w.message)]


def _inputs(B=8, D=50):
    x = (torch.rand(B, D) < 0.3).float()
    return torch.randn(B, D), x, torch.randn(B, 4), torch.randn(B, 4)


@pytest.mark.parametrize("spec", LOGITS, ids=lambda r: r.name)
@pytest.mark.parametrize("lib", [fastvae, reference], ids=["fastvae", "reference"])
def test_probabilities_given_as_logits_warn_once(spec, lib):
    logits, x, mu, logvar = _inputs()
    loss_fn = lib.ELBOLoss(likelihood=spec.name, validate_args=True)
    assert not _caught(lambda: loss_fn(logits, x, mu, logvar))  # logits: nothing to say
    assert not _caught(lambda: loss_fn(torch.zeros_like(logits), x, mu, logvar))  # one value: nor here
    first = _caught(lambda: loss_fn(torch.sigmoid(logits), x, mu, logvar))
    assert len(first) == 1 and issubclass(first[0].category, UserWarning)
    assert f"The {spec.title} likelihood takes logits: drop the decoder's final sigmoid" in str(first[0].message)
    assert not _caught(lambda: loss_fn(torch.sigmoid(logits), x, mu, logvar))  # once
    assert not _caught(lambda: lib.ELBOLoss(likelihood=spec.name)(torch.sigmoid(logits), x, mu, logvar))


@pytest.mark.parametrize("spec", LOGITS, ids=lambda r: r.name)
def test_the_likelihood_functions_warn_too(spec):
    logits, x, _, _ = _inputs()
    fn = getattr(fastvae, spec.function)
    assert len(_caught(lambda: fn(torch.sigmoid(logits), x, validate_args=True))) == 1


@pytest.mark.parametrize("spec", OTHERS, ids=lambda r: r.name)
def test_a_likelihood_of_means_does_not_warn(spec):
    # means in (0, 1), as a sigmoid gives: nothing to say for a likelihood that takes means
    _, _, mu, logvar = _inputs()
    mean = torch.randn(8, 50).sigmoid()
    x = cases.targets(spec, mean.shape, "float", mean.device)
    args = {n: v.detach() for n, v in cases.extra(spec, mean.shape, torch.float32, mean.device).items()}
    loss_fn = fastvae.ELBOLoss(likelihood=spec.name, validate_args=True)
    assert not _caught(lambda: loss_fn(mean, x, mu, logvar, **args))


@pytest.mark.skipif(not fastvae._backend.INTERPRET, reason="the interpreter's warnings (CPU runs)")
def test_the_interpreters_numpy_warnings_stay_inside_the_launch():
    # the continuous Bernoulli at logit 0: the interpreter evaluates the dropped side of a tl.where, 1/l
    spec = next(r for r in likelihoods.records() if r.param == "logits" and r.uint8 == likelihoods.EIGHT_BIT)
    logits = torch.zeros(4, 64, requires_grad=True)
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        getattr(fastvae, spec.function)(logits, torch.rand(4, 64)).sum().backward()
        assert list(warnings.filters)[1:] == filters  # only the "always" above: nothing left behind
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
    assert list(warnings.filters) == filters
