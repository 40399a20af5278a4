"""What is bit-identical on one device, as the README's Determinism section says: the same seed
gives the same noise, losses and gradients, to the bit, on the kernels (here through Triton's
interpreter) and on the reference; the kernels' reductions have a fixed order (no atomics), so
repeating a step repeats every bit. What is not: the two implementations against each other
(different noise and arithmetic; equal within tests/helpers.py's tolerances, tested in
tests/models/test_models.py)."""

import pytest
import torch

import fastvae
from fastvae import likelihoods
from fastvae.models import ConvVAE, CountVAE, MLPVAE

IMAGE_LIKELIHOODS = [r.name for r in likelihoods.records() if not r.counts]
COUNT_LIKELIHOODS = [r.name for r in likelihoods.records() if r.counts]


def _step(model, x, seed, objective):
    torch.manual_seed(seed)
    model.zero_grad(set_to_none=True)
    loss = model.loss(x) if objective == "elbo" else model.iwae_loss(x, 3, estimator=objective)
    loss.backward()
    return loss.detach().clone(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("objective", ["elbo", "iwae", "dreg"])
@pytest.mark.parametrize("likelihood", IMAGE_LIKELIHOODS)
@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_the_same_seed_gives_the_same_bits(backend, likelihood, objective):
    fastvae.set_backend(backend)
    torch.manual_seed(0)
    settings = dict(num_mixtures=2) if likelihoods.get(likelihood).layout is not None else {}  # the mixture's
    model = MLPVAE((1, 8, 8), hidden=(16,), latent_dim=4, likelihood=likelihood, **settings)
    x = torch.randint(0, 2, (6, 1, 8, 8), dtype=torch.uint8)
    first, again, other = _step(model, x, 5, objective), _step(model, x, 5, objective), _step(model, x, 6, objective)
    assert torch.equal(first[0], again[0])
    assert all(torch.equal(a, b) for a, b in zip(first[1], again[1]))
    assert not torch.equal(first[0], other[0]), "another seed must draw other noise"


def test_a_conv_model_in_bfloat16_under_autocast_repeats_to_the_bit():
    torch.manual_seed(0)
    model = ConvVAE((1, 16, 16), latent_dim=4, channels=(4, 8))
    x = torch.randint(0, 2, (4, 1, 16, 16), dtype=torch.uint8)
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model.loss(x)
        loss.backward()
        runs.append((loss.detach().clone(), [p.grad.clone() for p in model.parameters()]))
    assert torch.equal(runs[0][0], runs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


@pytest.mark.parametrize("objective", ["elbo", "dreg"])
@pytest.mark.parametrize("likelihood", COUNT_LIKELIHOODS)
def test_a_count_model_repeats_to_the_bit(likelihood, objective):
    torch.manual_seed(0)
    model = CountVAE(37, latent_dim=3, hidden=(8,), likelihood=likelihood)
    x = torch.poisson(torch.full((5, 37), 2.0)).to(torch.int16)
    first, again, other = _step(model, x, 5, objective), _step(model, x, 5, objective), _step(model, x, 6, objective)
    assert torch.equal(first[0], again[0])
    assert all(torch.equal(a, b) for a, b in zip(first[1], again[1]))
    assert not torch.equal(first[0], other[0]), "another seed must draw other noise"
