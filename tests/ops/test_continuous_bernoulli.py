"""What is particular to continuous_bernoulli_log_likelihood (the contract every likelihood passes
is in test_likelihood_contract.py): exact and finite at every logit, and a normalised density."""

import torch

import fastvae
from fastvae import reference

from helpers import assert_close64


def _ref64(logits, x, g):
    l64 = logits.detach().double().requires_grad_(True)
    x64 = x.detach().double().requires_grad_(x.is_floating_point()) if x.is_floating_point() else x
    ll = reference.continuous_bernoulli_log_likelihood(l64, x64)
    ll.backward(g.double())
    return ll.detach(), l64.grad, (x64.grad if x.is_floating_point() else None)


def test_extreme_logits_are_exact_and_finite(device):
    # near 0 the normaliser and its derivative cancel in closed form: series there; 1e4: log|l|
    vals = [0.0, 1e-7, -1e-7, 1e-4, -1e-4, 3e-3, -3e-3, 0.2, -0.249, 0.251, -1.0, 5.0, -20.0, 40.0, 1e4, -1e4]
    logits = torch.tensor(vals, device=device).repeat(3, 1).requires_grad_(True)
    x = torch.rand(3, len(vals), device=device)
    ll = fastvae.continuous_bernoulli_log_likelihood(logits, x)
    ll.backward(torch.ones(3, device=device))
    assert torch.isfinite(ll).all() and torch.isfinite(logits.grad).all()
    ll64, gl64, _ = _ref64(logits, x, torch.ones(3, device=device))
    assert_close64(ll, ll64, dtype=torch.float32, scale=1e3, msg="ll")  # ~1e4-sized terms in the rows
    assert_close64(logits.grad, gl64, msg="grad_logits")
    # per element, against the closed form written out in float64 (log C via the series at 0)
    l64 = torch.tensor(vals, dtype=torch.float64)
    dlogc = torch.where(l64.abs() < 1e-2, l64 / 6 - 7 * l64**3 / 360, 1 / l64 - 1 / torch.sinh(l64))
    want = x[0].double().cpu() - torch.sigmoid(l64) + dlogc
    torch.testing.assert_close(logits.grad[0].double().cpu(), want, rtol=2e-5, atol=2e-6)


def test_is_a_normalised_density_with_the_torch_distribution_s_values(device):
    # integrates to 1 over [0, 1]; equals torch.distributions.ContinuousBernoulli where that is exact
    logits = torch.tensor([[-6.0, -1.5, -0.3, 0.0, 0.7, 2.5, 8.0]], dtype=torch.float64)
    xs = torch.linspace(0, 1, 20001, dtype=torch.float64)[:, None]
    dens = torch.exp(reference.continuous_bernoulli_log_likelihood(logits.expand(len(xs), -1).reshape(-1, 1),
                                                                   xs.expand(-1, 7).reshape(-1, 1))).reshape(-1, 7)
    integral = torch.trapezoid(dens, xs[:, 0], dim=0)
    torch.testing.assert_close(integral, torch.ones(7, dtype=torch.float64), rtol=1e-6, atol=0)
    x = torch.rand(5, 7, dtype=torch.float64)
    ours = fastvae.continuous_bernoulli_log_likelihood(logits.expand(5, 7).to(device), x.to(device))
    theirs = torch.distributions.ContinuousBernoulli(logits=logits.expand(5, 7)).log_prob(x).sum(1)
    torch.testing.assert_close(ours.cpu(), theirs, rtol=1e-6, atol=1e-6)


