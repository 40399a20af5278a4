"""CountVAE: the scVI-style count VAE on the fused count likelihoods."""

import pytest
import torch

from fastvae.data.counts import make_counts
from fastvae.models import CountVAE

from helpers import SAME_FLOAT32, SAME_FLOAT32_GRAD

LIKELIHOODS = ["zero_inflated_negative_binomial", "negative_binomial", "poisson"]


@pytest.fixture(scope="module")
def cells():
    counts, batch, kind = make_counts(300, 60, batches=2, seed=3)
    return torch.from_numpy(counts), torch.from_numpy(batch), torch.from_numpy(kind)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_fused_and_reference_compute_the_same(likelihood, cells, device):
    x, batch, _ = (t[:40].to(device) for t in cells)
    model = CountVAE(60, 5, (32,), likelihood=likelihood, batches=2).to(device)
    ref = CountVAE(60, 5, (32,), likelihood=likelihood, batches=2, fused=False).to(device)
    ref.load_state_dict(model.state_dict())
    model.eval(), ref.eval()
    eps = torch.randn(40, 5, device=device)
    a = model.loss(x, batch, eps=eps, return_terms=True)
    b = ref.loss(x, batch, eps=eps, return_terms=True)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, **SAME_FLOAT32.kw)
    ga = torch.autograd.grad(a.loss, list(model.parameters()))
    gb = torch.autograd.grad(b.loss, list(ref.parameters()))
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, **SAME_FLOAT32_GRAD.kw)
    assert (model.zero_inflation_head is not None) == (likelihood == "zero_inflated_negative_binomial")
    assert (model.log_theta is not None) == (likelihood != "poisson")


def test_it_learns_the_counts(cells, device):
    # on the reference ops (the same numbers as the fused ones, above; faster through the interpreter)
    x, batch, _ = (t.to(device) for t in cells)
    torch.manual_seed(0)
    model = CountVAE(60, 5, (32,), batches=2, fused=False).to(device)
    model.init_output_bias(x[:250].float().mean(0))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    model.eval()
    with torch.no_grad():
        before = model.loss(x[250:], batch[250:]).item()
    model.train()
    for step in range(40):
        i = torch.randint(0, 250, (50,), device=device)
        loss = model.loss(x[i], batch[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        after = model.loss(x[250:], batch[250:]).item()
        iwae = model.iwae_loss(x[250:], 5, batch[250:]).item()
    assert after < before - 5, (before, after)
    assert iwae < after + 1  # the K-sample bound is at least as tight, up to noise


def test_sample_reconstruct_and_bad_input(cells, device):
    x, batch, _ = (t[:8].to(device) for t in cells)
    model = CountVAE(60, 5, (16,), batches=2).to(device).eval()
    assert model.reconstruct(x, batch).shape == (8, 60)
    rec = model.reconstruct(x, batch)
    torch.testing.assert_close(rec.sum(1), x.sum(1).float(), rtol=1e-5, atol=1e-3)  # the observed library
    s = model.sample(4, torch.tensor([0, 1, 0, 1], device=device), library=500.0)
    assert s.shape == (4, 60) and torch.allclose(s.sum(1), torch.full((4,), 500.0, device=device))
    terms = model.iwae_loss(x, 3, batch, return_terms=True)
    assert terms.log_likelihood.shape == (8,) and terms.kl.shape == (8,)
    with pytest.raises(ValueError, match="pass batch="):
        model.loss(x)
    with pytest.raises(ValueError, match="x must be \\(B, 60\\) counts"):
        model.loss(x[:, :10], batch)
    with pytest.raises(ValueError, match="CountVAE models counts"):
        CountVAE(60, likelihood="bernoulli")
