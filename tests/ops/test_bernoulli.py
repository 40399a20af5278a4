"""What is particular to bernoulli_log_likelihood and its kernel (the contract every likelihood
passes is in test_likelihood_contract.py): extreme and well-fit logits, the definition users
know, the column loop and the rescale kernel's early exit."""

import math

import pytest
import torch
import torch.nn.functional as F

import fastvae
from fastvae import kernels as K
from fastvae import reference
from fastvae.kernels import modes

from helpers import assert_close64, randn, RELATIVE_FLOAT32


def bernoulli_ll_fwd(logits, x, grad_scale=1.0, store_grad=False, **tiles):
    ll, grad, *_ = K.likelihood_pass(modes.BERNOULLI, logits, x, grad_scale=grad_scale, store_gp=store_grad, **tiles)
    return ll, grad


def bernoulli_ll_bwd(logits, x, g, **tiles):
    return K.likelihood_pass(modes.BERNOULLI, logits, x, g=g, write_ll=False, store_gp=True, **tiles)[1]


bernoulli_ll_scale_grad = K.scale_rows


def _targets(shape, kind, device, dtype=torch.float32, noncontig=False):
    x = torch.rand(shape, device=device) < 0.4
    x = {"float": x.to(dtype), "bool": x, "uint8": x.to(torch.uint8),
         "soft": torch.rand(shape, device=device).to(dtype)}[kind]
    if noncontig:
        big = torch.stack([x, x], dim=-1)  # (..., 2)
        x = big[..., 0]
        assert not x.is_contiguous() or x.numel() <= 1
    return x


def _ref64(logits, x, grad_ll):
    l64 = logits.detach().double().requires_grad_(True)
    x64 = x.detach().double().requires_grad_(x.is_floating_point())
    ll = reference.bernoulli_log_likelihood(l64, x64)
    ll.backward(grad_ll.double())
    return ll.detach(), l64.grad, x64.grad


def test_unit_upstream_gradient_takes_the_early_exit(device):
    # ll.sum().backward(): upstream exactly 1 everywhere, so backward returns the forward's buffer
    logits = torch.randn(7, 50, device=device, requires_grad=True)
    x = _targets((7, 50), "bool", device)
    fastvae.bernoulli_log_likelihood(logits, x).sum().backward()
    _, gl64, _ = _ref64(logits, x, torch.ones(7, device=device))
    assert_close64(logits.grad, gl64, msg="grad_logits")


def test_scale_kernel_skips_rows_equal_to_the_expected_scale(device):
    B, D = 16, 40
    grad = torch.randn(B, D, device=device)
    before = grad.clone()
    # every row as expected: untouched (programs return early)
    bernoulli_ll_scale_grad(grad, torch.full((B,), -0.25, device=device).expand(B), -0.25, block_rows=4)
    assert torch.equal(grad, before)
    # one row differs: only that program's rows are rescaled, each by g / s
    g = torch.full((B,), -0.25, device=device)
    g[5] = 0.5
    g[12] = float("nan")  # a NaN upstream gradient is applied, never skipped
    bernoulli_ll_scale_grad(grad, g, -0.25, block_rows=4)
    torch.testing.assert_close(grad[5], before[5] * -2.0)
    assert torch.isnan(grad[12]).all()
    keep = [i for i in range(B) if i not in (5, 12)]
    torch.testing.assert_close(grad[keep], before[keep])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_extreme_logits(dtype, device):
    vals = torch.tensor([1e4, -1e4, 1e4, -1e4, 88.0, -88.0, 0.0, 20.0], device=device)
    logits = vals.repeat(3, 4).to(dtype).requires_grad_(True)
    x = torch.tensor([1, 0, 0, 1, 1, 0, 1, 0], device=device).repeat(3, 4).to(torch.uint8)
    ll = fastvae.bernoulli_log_likelihood(logits, x)
    ll.sum().backward()
    ll64, gl64, _ = _ref64(logits, x, torch.ones(3, device=device))
    assert torch.isfinite(ll).all() and torch.isfinite(logits.grad).all()
    assert_close64(ll, ll64, dtype=torch.float32, msg="ll")  # ~ -4 * 2e4 - 4 * (20 + log 2)
    assert_close64(logits.grad, gl64, msg="grad_logits")


def test_agrees_with_bce_with_logits(device):
    # the definition users know: -BCEWithLogits summed per row
    logits, x = torch.randn(8, 20, device=device) * 5, torch.rand(8, 20, device=device)
    expect = -F.binary_cross_entropy_with_logits(logits.double(), x.double(), reduction="none").sum(1)
    assert_close64(fastvae.bernoulli_log_likelihood(logits, x), expect, msg="ll")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_column_loop_and_many_programs(dtype, device):
    B, D = 13, 70
    logits = randn((B, D), dtype, device, scale=3.0)
    x = _targets((B, D), "float", device)
    ll, grad = bernoulli_ll_fwd(logits, x, grad_scale=-0.125, store_grad=True, block_rows=4, block_cols=16)
    ll64, gl64, _ = _ref64(logits, x, torch.full((B,), -0.125, device=device))
    assert_close64(ll, ll64, msg="ll")
    assert_close64(grad, gl64, msg="grad")
    g = torch.randn(B, device=device, dtype=ll.dtype)
    bernoulli_ll_scale_grad(grad, g, -0.125, block_rows=4, block_cols=16)
    _, gl64, _ = _ref64(logits, x, g)
    assert_close64(grad, gl64, msg="rescaled grad")
    recomputed = bernoulli_ll_bwd(logits, x, g, block_rows=4, block_cols=16)
    assert_close64(recomputed, gl64, msg="recomputed grad")


@pytest.mark.gpu
def test_over_2_31_elements():
    # int64 offsets: (B, 784) logits with B * 784 > 2**31, bf16 logits + uint8 targets (~5 GiB)
    B = 2**31 // 784 + 5
    logits = torch.zeros(B, 784, device="cuda", dtype=torch.bfloat16)
    x = torch.zeros(B, 784, device="cuda", dtype=torch.uint8)
    logits[-1].fill_(8.0)
    x[-1].fill_(1)
    logits.requires_grad_(True)
    ll = fastvae.bernoulli_log_likelihood(logits, x)
    ll.sum().backward()
    assert ll[0].item() == pytest.approx(-784 * math.log(2), rel=1e-5)
    assert ll[-1].item() == pytest.approx(-784 * math.log1p(math.exp(-8.0)), rel=1e-4)
    assert logits.grad[0, 0].item() == pytest.approx(-0.5)
    assert logits.grad[-1, -1].float().item() == pytest.approx(1 - 1 / (1 + math.exp(-8.0)), rel=1e-2)


@pytest.mark.parametrize("side", ["x=0, logits << 0", "x=1, logits >> 0"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_well_fit_pixels_keep_relative_precision(side, dtype, device):
    # well-fit pixels: log p = -softplus(-|l|) ~ -exp(-|l|) and d/dl ~ +-exp(-|l|), far below
    # float32's epsilon relative to 1; `log(1 + e)`, `x*l - (l + log1p(e))` or `1 - sigmoid(l)`
    # would round them to 0, the kernels keep them on both sides.
    mag = torch.full((4, 50), 30.0, device=device) + torch.rand(4, 50, device=device)
    if side.startswith("x=0"):
        logits, x = -mag, torch.zeros(4, 50, device=device, dtype=torch.bool)
    else:
        logits, x = mag, torch.ones(4, 50, device=device, dtype=torch.bool)
    lg = logits.to(dtype).detach().requires_grad_(True)
    ll = fastvae.bernoulli_log_likelihood(lg, x)
    ll.backward(torch.full_like(ll, 2.0))
    tiny = torch.exp(-lg.detach().double().abs())  # = -log p and |d log p / dl| to relative 1e-13
    sign = 1.0 if side.startswith("x=1") else -1.0
    assert (ll < 0).all()
    torch.testing.assert_close(ll.double(), -torch.log1p(tiny).sum(1), **RELATIVE_FLOAT32.kw)
    torch.testing.assert_close(lg.grad.double(), 2.0 * sign * tiny / (1 + tiny), **RELATIVE_FLOAT32.kw)
    # the recomputing backward kernel (used for float16 logits) evaluates the same form
    g = torch.full((4,), 2.0, device=device, dtype=ll.dtype)
    torch.testing.assert_close(bernoulli_ll_bwd(lg.detach(), x, g).double(), 2.0 * sign * tiny / (1 + tiny),
                               **RELATIVE_FLOAT32.kw)


