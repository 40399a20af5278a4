"""bernoulli_log_likelihood against fastvae.reference (float64)."""

import math

import pytest
import torch
import torch.nn.functional as F

import fastvae
from fastvae import kernels as K
from fastvae import reference
from fastvae.kernels import modes

from helpers import assert_close64, randn, sum_dtype


def bernoulli_ll_fwd(logits, x, grad_scale=1.0, store_grad=False, **tiles):
    ll, grad, *_ = K.likelihood_pass(modes.BERNOULLI, logits, x, grad_scale=grad_scale, store_gp=store_grad, **tiles)
    return ll, grad


def bernoulli_ll_bwd(logits, x, g, **tiles):
    return K.likelihood_pass(modes.BERNOULLI, logits, x, g=g, write_ll=False, store_gp=True, **tiles)[1]


bernoulli_ll_scale_grad = K.scale_rows
DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
SHAPES = [(1, 1), (1, 9), (6, 1), (37, 100), (5, 781), (3, 2500), (4, 1, 7, 9)]
TARGETS = ["float", "bool", "uint8"]


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


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_reference(shape, dtype, target, device):
    logits = randn(shape, dtype, device, scale=4.0).requires_grad_(True)
    x = _targets(shape, target, device, dtype)
    ll = fastvae.bernoulli_log_likelihood(logits, x)
    assert ll.dtype == sum_dtype(dtype) and ll.shape == (shape[0],)
    assert "fastvae" in type(ll.grad_fn).__name__
    g = torch.randn(shape[0], device=device, dtype=ll.dtype)
    ll.backward(g)
    ll64, gl64, _ = _ref64(logits, x, g)
    n = math.prod(shape[1:])
    assert_close64(ll, ll64, scale=max(1.0, n / 64), msg="ll")
    assert logits.grad.dtype == dtype
    assert_close64(logits.grad, gl64, msg="grad_logits")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_non_contiguous_and_not_last_layer(dtype, device):
    shape = (11, 300)
    logits = randn(shape, dtype, device, scale=3.0, noncontig=True).requires_grad_(True)
    x = _targets(shape, "uint8", device, noncontig=True)
    ll = fastvae.bernoulli_log_likelihood(logits, x)
    (ll.sum() * 3).backward()  # expanded stride-0 upstream gradient of 3, not 1
    ll64, gl64, _ = _ref64(logits, x, torch.full((11,), 3.0, device=device))
    assert_close64(ll, ll64, scale=5, msg="ll")
    assert_close64(logits.grad, gl64, msg="grad_logits")


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


def test_logits_are_never_overwritten(device):
    logits = torch.randn(9, 64, device=device, requires_grad=True)
    x = _targets((9, 64), "float", device)
    saved = logits.detach().clone()
    ll = fastvae.bernoulli_log_likelihood(logits, x)
    ll.backward(torch.randn(9, device=device))
    assert torch.equal(logits.detach(), saved)
    assert logits.grad.data_ptr() != logits.data_ptr()
    # the same logits used again give the same answer
    assert torch.equal(fastvae.bernoulli_log_likelihood(logits, x), ll)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_retain_graph_second_backward_and_create_graph(backend, dtype, device):
    # one behaviour on every backend and device: a second backward through a kept graph gives
    # the gradient again (the stored buffer is left as the forward wrote it), and create_graph
    # (second-order gradients) is refused rather than silently missing terms
    fastvae.set_backend(backend)
    logits = randn((4, 10), dtype, device, scale=3.0).requires_grad_(True)
    x = _targets((4, 10), "float", device)
    ll = fastvae.bernoulli_log_likelihood(logits, x)
    g = torch.randn(4, device=device)
    ll.backward(g, retain_graph=True)
    first = logits.grad.clone()
    logits.grad = None
    ll.backward(2 * g, retain_graph=True)
    torch.testing.assert_close(logits.grad, 2 * first, rtol=1e-2 if dtype == torch.float16 else 1e-6, atol=0)
    _, gl64, _ = _ref64(logits, x, g)
    assert_close64(first, gl64, msg="first backward")
    with pytest.raises(RuntimeError, match="not twice differentiable"):
        torch.autograd.grad(ll.sum(), logits, create_graph=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_soft_targets_get_gradients_too(dtype, device):
    shape = (6, 33)
    logits = randn(shape, dtype, device, scale=2.0).requires_grad_(True)
    x = _targets(shape, "soft", device, dtype).requires_grad_(True)
    ll = fastvae.bernoulli_log_likelihood(logits, x)
    g = torch.randn(6, device=device)
    ll.backward(g)
    ll64, gl64, gx64 = _ref64(logits, x, g)
    assert_close64(ll, ll64, msg="ll")
    assert_close64(logits.grad, gl64, msg="grad_logits")
    assert_close64(x.grad, gx64, msg="grad_x")
    # x alone requiring grad
    x.grad = None
    fastvae.bernoulli_log_likelihood(logits.detach(), x).backward(g)
    assert_close64(x.grad, gx64, msg="grad_x without grad_logits")


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


def test_no_gradient_buffer_without_grad(device):
    logits = torch.randn(5, 12, device=device, requires_grad=True)
    x = _targets((5, 12), "float", device)
    with torch.no_grad():
        ll = fastvae.bernoulli_log_likelihood(logits, x)
    assert ll.grad_fn is None
    assert_close64(ll, _ref64(logits, x, torch.ones(5, device=device))[0], msg="ll")


def test_empty(device):
    logits = torch.zeros(0, 5, device=device, requires_grad=True)
    ll = fastvae.bernoulli_log_likelihood(logits, torch.zeros(0, 5, device=device))
    assert ll.shape == (0,)
    ll.sum().backward()
    assert logits.grad.shape == (0, 5)
    no_cols = torch.zeros(3, 0, device=device)
    assert torch.equal(fastvae.bernoulli_log_likelihood(no_cols, no_cols), torch.zeros(3, device=device))


@pytest.mark.parametrize("fn", [fastvae.bernoulli_log_likelihood, reference.bernoulli_log_likelihood])
def test_bad_input(fn, device):
    logits = torch.zeros(4, 6, device=device)
    with pytest.raises(ValueError, match=r"\(4, 6\) and \(4, 1\)"):
        fn(logits, torch.zeros(4, 1, device=device))  # broadcastable, still refused
    with pytest.raises(ValueError, match="same shape"):
        fn(logits, torch.zeros(24, device=device))  # same numel, still refused
    with pytest.raises(TypeError, match="logits must be a floating tensor.*int64"):
        fn(torch.zeros(4, 6, dtype=torch.long, device=device), logits)
    with pytest.raises(TypeError, match="x must be .*int32"):
        fn(logits, torch.zeros(4, 6, dtype=torch.int32, device=device))
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn(logits, 1.0)
    if device.type == "cpu":
        with pytest.raises(ValueError, match="same device"):
            fn(logits, torch.zeros(4, 6, device="meta"))


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
    torch.testing.assert_close(ll.double(), -torch.log1p(tiny).sum(1), rtol=1e-5, atol=0)
    torch.testing.assert_close(lg.grad.double(), 2.0 * sign * tiny / (1 + tiny), rtol=1e-5, atol=0)
    # the recomputing backward kernel (used for float16 logits) evaluates the same form
    g = torch.full((4,), 2.0, device=device, dtype=ll.dtype)
    torch.testing.assert_close(bernoulli_ll_bwd(lg.detach(), x, g).double(), 2.0 * sign * tiny / (1 + tiny),
                               rtol=1e-5, atol=0)


@pytest.mark.parametrize("layout", ["channels_last", "cropped", "permuted targets"])
def test_strided_4d_logits_are_read_through_their_strides(layout, device, monkeypatch):
    # a conv decoder's output: (B, C, H, W), channels-last or a crop of a larger map; the kernel
    # walks it in its own memory order and reads the (differently laid out) targets to match,
    # never making a contiguous copy of the logits first
    from fastvae.kernels import _launch

    base = randn((3, 4, 9, 10), torch.float32, device, scale=3.0)
    if layout == "channels_last":
        logits = base.to(memory_format=torch.channels_last)
        x = _targets((3, 4, 9, 10), "uint8", device)
    elif layout == "cropped":
        logits = base[:, :, 1:-1, 2:-1]
        x = _targets(tuple(logits.shape), "uint8", device)
    else:
        logits = base
        x = _targets((3, 10, 9, 4), "uint8", device).permute(0, 3, 2, 1)
    logits = logits.detach().requires_grad_(True)
    seen = []
    real = _launch.launch
    monkeypatch.setattr(_launch, "launch", lambda k, n, a, b: (seen.append(a[0]), real(k, n, a, b))[1])
    ll = fastvae.bernoulli_log_likelihood(logits, x)
    g = torch.randn(3, device=device)
    ll.backward(g)
    assert seen[0] is logits, "the logits must reach the kernel as they are, not a copy"
    ll64, gl64, _ = _ref64(logits, x, g)
    assert_close64(ll, ll64, scale=5, msg="ll")
    assert_close64(logits.grad, gl64, msg="grad_logits")
    if layout == "channels_last":
        assert logits.grad.is_contiguous(memory_format=torch.channels_last)
