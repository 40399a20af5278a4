"""gaussian_log_likelihood against fastvae.reference (float64): every form of logscale."""

import math

import pytest
import torch

import fastvae
from fastvae import reference

from helpers import assert_close64, randn, sum_dtype

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
SHAPE = (6, 3, 5, 4)  # (B, C, H, W)


def _logscale(kind, dtype, device, shape=SHAPE):
    """Each form a model uses; None for a fixed number."""
    return {"number": None, "shared": lambda: torch.tensor(0.3, dtype=dtype, device=device),
            "feature": lambda: randn(shape[1:], dtype, device, scale=0.5),
            "channel": lambda: randn((1, shape[1], 1, 1), dtype, device, scale=0.5),
            "channel, no batch dim": lambda: randn((shape[1], 1, 1), dtype, device, scale=0.5),
            "element": lambda: randn(shape, dtype, device, scale=0.5),
            "per row": lambda: randn((shape[0], 1, 1, 1), dtype, device, scale=0.5)}[kind]


def _ref64(mean, x, ls, g):
    m64 = mean.detach().double().requires_grad_(True)
    x64 = x.detach().double().requires_grad_(True) if x.is_floating_point() else x
    ls64 = ls.detach().double().requires_grad_(True) if isinstance(ls, torch.Tensor) else ls
    ll = reference.gaussian_log_likelihood(m64, x64, ls64)
    ll.backward(g.double())
    return ll.detach(), m64.grad, (x64.grad if x.is_floating_point() else None), \
        (ls64.grad if isinstance(ls, torch.Tensor) else None)


@pytest.mark.parametrize("kind", ["number", "shared", "feature", "channel", "channel, no batch dim", "element",
                                  "per row"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_logscale_form(kind, dtype, device):
    mean = randn(SHAPE, dtype, device).requires_grad_(True)
    x = randn(SHAPE, dtype, device).requires_grad_(dtype != torch.float16)
    make = _logscale(kind, dtype, device)
    ls = 1.3 if make is None else make().requires_grad_(True)
    ll = fastvae.gaussian_log_likelihood(mean, x, ls)
    assert ll.dtype == sum_dtype(dtype) and ll.shape == (SHAPE[0],)
    g = torch.randn(SHAPE[0], device=device, dtype=ll.dtype)
    ll.backward(g)
    ll64, gm64, gx64, gs64 = _ref64(mean, x, ls, g)
    assert_close64(ll, ll64, scale=4, msg="ll")
    assert mean.grad.dtype == dtype
    assert_close64(mean.grad, gm64, msg="grad_mean")
    if x.requires_grad:
        assert_close64(x.grad, gx64, msg="grad_x")
    if isinstance(ls, torch.Tensor):
        assert ls.grad.shape == ls.shape and ls.grad.dtype == dtype
        n = ls.numel()
        assert_close64(ls.grad, gs64, scale=max(1.0, mean.numel() / n / 8), msg="grad_logscale")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("kind", ["shared", "feature", "element"])
def test_inside_the_elbo_with_other_upstream_gradients(kind, dtype, device):
    # the loss folds -1/B into the gradients it stores; (loss * 3) and a second backward through
    # a kept graph send other upstream gradients, and a shared logscale's sums are refreshed
    B, D, L = 9, 40, 4
    mean = randn((B, D), dtype, device).requires_grad_(True)
    x = torch.randint(0, 256, (B, D), dtype=torch.uint8, device=device)  # k / 255
    ls = _logscale(kind, dtype, device, (B, D))().requires_grad_(True)
    mu, logvar = randn((B, L), dtype, device).requires_grad_(True), randn((B, L), dtype, device).requires_grad_(True)
    loss = fastvae.elbo_loss(mean, x, mu, logvar, likelihood="gaussian", logscale=ls)
    (loss * 3).backward(retain_graph=True)
    first = [t.grad.clone() for t in (mean, ls, mu)]
    for t in (mean, ls, mu):
        t.grad = None
    loss.backward()
    m64, ls64, mu64, lv64 = (t.detach().double().requires_grad_(True) for t in (mean, ls, mu, logvar))
    ref = reference.elbo_loss(m64, x, mu64, lv64, likelihood="gaussian", logscale=ls64)
    assert_close64(loss, ref, dtype=torch.float32, scale=50, msg="loss")
    want = torch.autograd.grad(ref, (m64, ls64, mu64))
    for name, a, b, f in zip(("grad_mean", "grad_logscale", "grad_mu"), (mean.grad, ls.grad, mu.grad), want, first):
        assert_close64(a, b, scale=20, msg=name)
        assert_close64(f, 3 * b, scale=60, msg=name + " (loss * 3)")


@pytest.mark.parametrize("view", ["one value viewed per feature", "one row viewed for every row"])
def test_an_expanded_logscale_gets_the_gradient_of_its_shape(view, device):
    # stride 0 where the view repeats one value: the gradient is still one per element of the
    # logscale's shape (found by the fuzzing: the stride-0 memory was taken for a logscale
    # shared by all, and the gradient came back in the wrong shape, a RuntimeError)
    mean, x = randn((31, 7), torch.float32, device).requires_grad_(True), randn((31, 7), torch.float32, device)
    base = randn((1,) if view.startswith("one value") else (1, 7), torch.float32, device).requires_grad_(True)
    ls = base.expand(7) if base.dim() == 1 else base.expand(31, 7)
    g = torch.randn(31, device=device)
    fastvae.gaussian_log_likelihood(mean, x, ls).backward(g)
    b64 = base.detach().double().requires_grad_(True)
    ls64 = b64.expand(7) if base.dim() == 1 else b64.expand(31, 7)
    reference.gaussian_log_likelihood(mean.detach().double(), x.double(), ls64).backward(g.double())
    assert_close64(base.grad, b64.grad, scale=31 * 7 / 8, msg="grad of the logscale")


def test_extreme_logscales_and_uint8_targets(device):
    mean = torch.rand(4, 50, device=device).requires_grad_(True)
    ls = torch.tensor([-20.0, -3.0, 3.0, 20.0], device=device).repeat_interleave(50).view(4, 50).requires_grad_(True)
    x = torch.randint(0, 256, (4, 50), dtype=torch.uint8, device=device)
    ll = fastvae.gaussian_log_likelihood(mean, x, ls)
    ll.sum().backward()
    assert torch.isfinite(ll).all() and torch.isfinite(mean.grad).all() and torch.isfinite(ls.grad).all()
    ll64, gm64, _, gs64 = _ref64(mean, x, ls, torch.ones(4, device=device))
    # at logscale -20 the terms are ~1e17: the float32 sum carries float32's relative error
    torch.testing.assert_close(ll.double(), ll64, rtol=2e-6, atol=1e-4)
    # per row, against the row's own scale (x - mean cancels where x, read as k/255 in float32, is near mean)
    for got, want in ((mean.grad, gm64), (ls.grad, gs64)):
        scale = want.abs().amax(1, keepdim=True)
        torch.testing.assert_close(got.double() / scale, want / scale, rtol=0, atol=2e-5)
    # uint8 targets are k / 255
    want = reference.gaussian_log_likelihood(mean.detach(), x.float() / 255, ls.detach())
    torch.testing.assert_close(ll.detach(), want, rtol=1e-5, atol=1e-3)


def test_bad_logscales_and_validation(device):
    mean = torch.zeros(4, 6, device=device)
    x = torch.zeros(4, 6, device=device)
    with pytest.raises(ValueError, match="does not broadcast to mean's shape"):
        fastvae.gaussian_log_likelihood(mean, x, torch.zeros(2, 4, 6, device=device))  # a new batch dim
    with pytest.raises(ValueError, match="does not broadcast"):
        fastvae.gaussian_log_likelihood(mean, x, torch.zeros(5, device=device))
    with pytest.raises(TypeError, match="logscale must be a real number or a tensor"):
        fastvae.gaussian_log_likelihood(mean, x, "0.5")
    with pytest.raises(TypeError, match="logscale must be a floating tensor"):
        fastvae.gaussian_log_likelihood(mean, x, torch.zeros(6, dtype=torch.long, device=device))
    x[0, 0] = float("nan")
    assert torch.isnan(fastvae.gaussian_log_likelihood(mean, x)[0])  # unchecked by default
    with pytest.raises(ValueError, match="finite values"):
        fastvae.gaussian_log_likelihood(mean, x, validate_args=True)


def test_fixed_logscale_value(device):
    # the closed form at x = mean: -D * (logscale + log(2 pi) / 2)
    mean = torch.randn(3, 10, device=device)
    ll = fastvae.gaussian_log_likelihood(mean, mean.clone(), -0.7)
    torch.testing.assert_close(ll, torch.full((3,), -10 * (-0.7 + 0.5 * math.log(2 * math.pi)), device=device))
