"""continuous_bernoulli_log_likelihood against fastvae.reference (float64) and the definition."""

import math

import pytest
import torch

import fastvae
from fastvae import reference

from helpers import assert_close64, randn, sum_dtype

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
SHAPES = [(1, 1), (1, 9), (6, 1), (37, 100), (5, 781), (4, 1, 7, 9)]


def _targets(shape, kind, device, dtype=torch.float32):
    if kind == "uint8":  # 8-bit images: read as k / 255
        return torch.randint(0, 256, shape, device=device, dtype=torch.uint8)
    return torch.rand(shape, device=device).to(dtype)


def _ref64(logits, x, g):
    l64 = logits.detach().double().requires_grad_(True)
    x64 = x.detach().double().requires_grad_(x.is_floating_point()) if x.is_floating_point() else x
    ll = reference.continuous_bernoulli_log_likelihood(l64, x64)
    ll.backward(g.double())
    return ll.detach(), l64.grad, (x64.grad if x.is_floating_point() else None)


@pytest.mark.parametrize("target", ["float", "uint8"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_reference(shape, dtype, target, device):
    logits = randn(shape, dtype, device, scale=3.0).requires_grad_(True)
    x = _targets(shape, target, device, dtype)
    ll = fastvae.continuous_bernoulli_log_likelihood(logits, x)
    assert ll.dtype == sum_dtype(dtype) and ll.shape == (shape[0],)
    assert "fastvae" in type(ll.grad_fn).__name__
    g = torch.randn(shape[0], device=device, dtype=ll.dtype)
    ll.backward(g)
    ll64, gl64, _ = _ref64(logits, x, g)
    assert_close64(ll, ll64, scale=max(1.0, math.prod(shape[1:]) / 64), msg="ll")
    assert logits.grad.dtype == dtype
    assert_close64(logits.grad, gl64, msg="grad_logits")


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


def test_targets_get_their_gradient_and_strides_are_read(device):
    logits = randn((9, 300), torch.float32, device, scale=2.0, noncontig=True).requires_grad_(True)
    x = torch.rand(9, 300, device=device).t().contiguous().t().requires_grad_(True)  # column-major
    ll = fastvae.continuous_bernoulli_log_likelihood(logits, x)
    (ll.sum() * -0.5).backward()  # a stride-0 upstream gradient other than 1
    ll64, gl64, gx64 = _ref64(logits, x, torch.full((9,), -0.5, device=device))
    assert_close64(ll, ll64, scale=5, msg="ll")
    assert_close64(logits.grad, gl64, msg="grad_logits")
    assert_close64(x.grad, gx64, msg="grad_x")


def test_bad_input_and_validation(device):
    logits = torch.zeros(4, 6, device=device)
    with pytest.raises(ValueError, match="same shape"):
        fastvae.continuous_bernoulli_log_likelihood(logits, torch.zeros(4, 5, device=device))
    with pytest.raises(TypeError, match="logits must be a floating tensor"):
        fastvae.continuous_bernoulli_log_likelihood(logits.long(), logits)
    x = torch.rand(4, 6, device=device)
    x[1, 2] = 1.5
    fastvae.continuous_bernoulli_log_likelihood(logits, x)  # not checked by default: the formula's value
    with pytest.raises(ValueError, match=r"values in \[0, 1\].*1.5"):
        fastvae.continuous_bernoulli_log_likelihood(logits, x, validate_args=True)
    # uint8 is k/255 here: any byte is valid
    fastvae.continuous_bernoulli_log_likelihood(logits, torch.full((4, 6), 255, dtype=torch.uint8, device=device),
                                                validate_args=True)
