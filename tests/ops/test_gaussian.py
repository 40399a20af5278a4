"""reparameterize_kl / reparameterize / gaussian_kl against fastvae.reference (float64)."""

import math

import pytest
import torch

import fastvae
from fastvae import reference
from fastvae.kernels import reparameterize_kl_bwd, reparameterize_kl_fwd

from helpers import assert_close64, randn, RELATIVE_FLOAT32, sum_dtype

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
SHAPES = [(1, 1), (1, 7), (5, 1), (37, 64), (6, 781), (3, 2500), (4, 3, 5)]


def _leaf(t):
    return t.detach().clone().requires_grad_(True) if t.is_contiguous() else t.detach().requires_grad_(True)


def _ref64(mu, logvar, eps, grad_z, grad_kl):
    """Reference z, kl and gradients, all in float64, from the same (rounded) inputs."""
    mu64, lv64 = mu.detach().double().requires_grad_(True), logvar.detach().double().requires_grad_(True)
    z, kl = reference.reparameterize_kl(mu64, lv64, eps=eps.double())
    torch.autograd.backward([z, kl], [grad_z.double(), grad_kl.double()])
    return z.detach(), kl.detach(), mu64.grad, lv64.grad


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_reparameterize_kl_matches_reference(shape, dtype, device):
    mu = _leaf(randn(shape, dtype, device))
    logvar = _leaf(randn(shape, dtype, device))
    eps = randn(shape, dtype, device)
    z, kl = fastvae.reparameterize_kl(mu, logvar, eps=eps)
    assert z.dtype == dtype and z.shape == mu.shape
    assert kl.dtype == sum_dtype(dtype) and kl.shape == (shape[0],)
    assert "fastvae" in type(z.grad_fn).__name__  # the fused op ran, not the reference
    grad_z, grad_kl = randn(shape, dtype, device), torch.randn(shape[0], device=device, dtype=kl.dtype)
    torch.autograd.backward([z, kl], [grad_z, grad_kl])
    z64, kl64, gmu64, glv64 = _ref64(mu, logvar, eps, grad_z, grad_kl)
    n = math.prod(shape[1:])
    assert_close64(z, z64, msg="z")
    assert_close64(kl, kl64, scale=max(1.0, n / 64), msg="kl")
    assert_close64(mu.grad, gmu64, msg="grad_mu")
    assert_close64(logvar.grad, glv64, msg="grad_logvar")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_non_contiguous_inputs_and_expanded_gradients(dtype, device):
    shape = (9, 70)
    mu = randn(shape, dtype, device, noncontig=True).requires_grad_(True)
    logvar = randn(shape, dtype, device, noncontig=True).requires_grad_(True)
    eps = randn(shape, dtype, device, noncontig=True)
    z, kl = fastvae.reparameterize_kl(mu, logvar, eps=eps)
    # .sum() hands backward stride-0 expanded gradients; the factors make them != 1
    (3.0 * z.sum() - 0.5 * kl.sum()).backward()
    z64, kl64, gmu64, glv64 = _ref64(mu, logvar, eps, torch.full(shape, 3.0, device=device),
                                     torch.full((9,), -0.5, device=device))
    assert_close64(z, z64, msg="z")
    assert_close64(kl, kl64, scale=2, msg="kl")
    assert_close64(mu.grad, gmu64, msg="grad_mu")
    assert_close64(logvar.grad, glv64, msg="grad_logvar")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_halves_alone(dtype, device):
    shape = (10, 33)
    mu, logvar = _leaf(randn(shape, dtype, device)), _leaf(randn(shape, dtype, device))
    eps = randn(shape, dtype, device)
    z = fastvae.reparameterize(mu, logvar, eps=eps)
    gz = randn(shape, dtype, device)
    z.backward(gz)
    z64, _, gmu64, glv64 = _ref64(mu, logvar, eps, gz, torch.zeros(10, device=device))
    assert_close64(z, z64, msg="z")
    assert_close64(mu.grad, gmu64, msg="grad_mu from z alone")
    assert_close64(logvar.grad, glv64, msg="grad_logvar from z alone")

    mu.grad = logvar.grad = None
    kl = fastvae.gaussian_kl(mu, logvar)
    gkl = torch.randn(10, device=device)
    kl.backward(gkl)
    _, kl64, gmu64, glv64 = _ref64(mu, logvar, eps, torch.zeros(shape, device=device), gkl)
    assert_close64(kl, kl64, msg="kl")
    assert_close64(mu.grad, gmu64, msg="grad_mu from kl alone")
    assert_close64(logvar.grad, glv64, msg="grad_logvar from kl alone")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_column_loop_and_many_programs(dtype, device):
    # force small tiles: several programs and several column blocks per row, ragged edges
    B, L = 13, 45
    mu, logvar, eps = (randn((B, L), dtype, device) for _ in range(3))
    gz, gkl = randn((B, L), dtype, device), torch.randn(B, device=device, dtype=sum_dtype(dtype))
    z, kl = reparameterize_kl_fwd(mu, logvar, eps=eps, block_rows=4, block_cols=16)
    gmu, glv = reparameterize_kl_bwd(mu, logvar, eps, None, gz, gkl, block_rows=4, block_cols=16)
    z64, kl64, gmu64, glv64 = _ref64(mu, logvar, eps, gz, gkl)
    for name, a, b in [("z", z, z64), ("kl", kl, kl64), ("grad_mu", gmu, gmu64), ("grad_logvar", glv, glv64)]:
        assert_close64(a, b, msg=name)


def test_extreme_logvar_is_finite_and_right(device):
    B, L = 4, 64
    logvar = torch.linspace(-30, 30, B * L, device=device).reshape(B, L)
    mu = torch.randn(B, L, device=device) * 10
    eps = torch.randn(B, L, device=device)
    mu_, lv_ = _leaf(mu), _leaf(logvar)
    z, kl = fastvae.reparameterize_kl(mu_, lv_, eps=eps)
    (z.sum() + kl.sum()).backward()
    z64, kl64, gmu64, glv64 = _ref64(mu, logvar, eps, torch.ones(B, L), torch.ones(B))
    for name, a, b in [("z", z, z64), ("kl", kl, kl64), ("grad_mu", mu_.grad, gmu64), ("grad_logvar", lv_.grad, glv64)]:
        assert torch.isfinite(a).all(), name
        assert_close64(a, b, msg=name)


def test_kl_of_collapsed_posterior_is_accurate(device):
    # mu = 0, logvar ~ 1e-4: the KL per dim is ~logvar^2/4; `exp(v) - 1 - v` in float32 would
    # cancel to garbage, the kernel's series keeps full relative precision.
    logvar = (torch.rand(8, 32, device=device) - 0.5) * 2e-4
    mu = torch.zeros_like(logvar)
    kl = fastvae.gaussian_kl(mu, logvar)
    kl64 = 0.5 * (logvar.double().exp() - 1 - logvar.double()).sum(1)
    torch.testing.assert_close(kl.double(), kl64, **RELATIVE_FLOAT32.kw)


def test_sampler_reproducible_and_fresh(device):
    mu, logvar = torch.randn(16, 24, device=device), torch.randn(16, 24, device=device)
    torch.manual_seed(1234)
    z1, _ = fastvae.reparameterize_kl(mu, logvar)
    z2, _ = fastvae.reparameterize_kl(mu, logvar)
    torch.manual_seed(1234)
    z1b, _ = fastvae.reparameterize_kl(mu, logvar)
    assert torch.equal(z1, z1b), "torch.manual_seed must reproduce z exactly"
    assert not torch.allclose(z1, z2), "the next call must draw fresh noise"
    g = torch.Generator(device=device).manual_seed(7)
    za = fastvae.reparameterize(mu, logvar, generator=g)
    g.manual_seed(7)
    zb = fastvae.reparameterize(mu, logvar, generator=g)
    assert torch.equal(za, zb)
    assert not torch.allclose(za, z1)


def _normal_cdf(x):
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


def test_noise_is_standard_normal(device):
    # mu = 0, logvar = 0: z is eps itself. 2**16 draws, Kolmogorov-Smirnov at alpha = 1e-3.
    B, L = 256, 256
    zero = torch.zeros(B, L, device=device)
    torch.manual_seed(0)
    eps = fastvae.reparameterize(zero, zero).double().flatten().cpu()
    n = eps.numel()
    assert abs(eps.mean().item()) < 4 / math.sqrt(n)
    assert abs(eps.var().item() - 1) < 4 * math.sqrt(2 / n)
    s = eps.sort().values
    cdf = _normal_cdf(s)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    d = torch.maximum(i / n - cdf, cdf - (i - 1) / n).max().item()
    assert d < 1.95 / math.sqrt(n), f"KS statistic {d:.5f} too large for N(0, 1)"
    # neighbouring elements and rows are not correlated (the Philox counter is the flat index)
    e = eps.reshape(B, L)
    assert abs((e[:, 1:] * e[:, :-1]).mean().item()) < 4 / math.sqrt(n)
    assert abs((e[1:] * e[:-1]).mean().item()) < 4 / math.sqrt(n)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_backward_regenerates_the_forward_noise(dtype, device):
    shape = (20, 50)
    mu = _leaf(randn(shape, dtype, device))
    logvar = _leaf(randn(shape, dtype, device))
    z, kl = fastvae.reparameterize_kl(mu, logvar)
    gz, gkl = randn(shape, dtype, device), torch.randn(20, device=device)
    torch.autograd.backward([z, kl], [gz, gkl])
    std = torch.exp(0.5 * logvar.detach().double())
    eps = (z.detach().double() - mu.detach().double()) / std
    _, _, gmu64, glv64 = _ref64(mu, logvar, eps, gz, gkl)
    # eps recovered from a rounded z carries z's rounding; widen atol for bfloat16 accordingly
    assert_close64(mu.grad, gmu64, msg="grad_mu")
    assert_close64(logvar.grad, glv64, scale=4 if dtype == torch.bfloat16 else 1, msg="grad_logvar")


def test_empty_batch(device):
    mu = torch.zeros(0, 8, device=device, requires_grad=True)
    logvar = torch.zeros(0, 8, device=device, requires_grad=True)
    z, kl = fastvae.reparameterize_kl(mu, logvar)
    assert z.shape == (0, 8) and kl.shape == (0,)
    (z.sum() + kl.sum()).backward()
    assert mu.grad.shape == (0, 8)
    empty_latent = torch.zeros(3, 0, device=device)
    assert torch.equal(fastvae.gaussian_kl(empty_latent, empty_latent), torch.zeros(3, device=device))


@pytest.mark.parametrize("fn", [fastvae.reparameterize_kl, reference.reparameterize_kl])
def test_bad_input(fn, device):
    mu = torch.zeros(4, 3, device=device)
    with pytest.raises(ValueError, match=r"\(4, 3\) and \(4, 2\)"):
        fn(mu, torch.zeros(4, 2, device=device))
    with pytest.raises(ValueError, match="same shape"):
        fn(mu, torch.zeros(3, device=device))  # broadcastable, still refused
    with pytest.raises(TypeError, match="mu must be a floating tensor.*int64"):
        fn(torch.zeros(4, 3, dtype=torch.long, device=device), mu)
    with pytest.raises(TypeError, match="same dtype"):
        fn(mu, mu.double())
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn([1.0, 2.0], mu)
    with pytest.raises(ValueError, match="batch dimension"):
        fn(torch.zeros((), device=device), torch.zeros((), device=device))
    with pytest.raises(ValueError, match="eps"):
        fn(mu, mu, eps=torch.zeros(4, 4, device=device))
    with pytest.raises(TypeError, match="generator"):
        fn(mu, mu, generator=3)
    if device.type == "cpu":
        with pytest.raises(ValueError, match="same device"):
            fn(mu, torch.zeros(4, 3, device="meta"))


@pytest.mark.gpu
def test_over_2_31_elements():
    # int64 offsets: a latent tensor of 2**31 + 3 * 64 elements (bf16, ~4 GiB per tensor)
    B, L = 2**31 // 64 + 3, 64
    mu = torch.zeros(B, L, device="cuda", dtype=torch.bfloat16)
    logvar = torch.zeros_like(mu)
    mu[-1].fill_(2.0)
    z, kl = fastvae.reparameterize_kl(mu, logvar, eps=torch.zeros_like(mu))
    assert z[-1].float().eq(2.0).all()
    assert kl[-1].item() == pytest.approx(0.5 * 4 * L)
    assert kl[0].item() == 0


def test_given_noise_gets_its_gradient(device):
    mu, logvar = torch.randn(4, 6, device=device), torch.randn(4, 6, device=device)
    eps = torch.randn(4, 6, device=device, requires_grad=True)
    gz = torch.randn(4, 6, device=device)
    fastvae.reparameterize(mu, logvar, eps=eps).backward(gz)
    torch.testing.assert_close(eps.grad, gz * torch.exp(0.5 * logvar))


def test_very_negative_logvar_gradient(device):
    # d kl / d logvar = (exp(logvar) - 1) / 2 -> -1/2; formed as (exp - 1 - v) + v it would be 0
    logvar = torch.tensor([[-1e8, -1e4, -100.0, -31.0, float("-inf")]], device=device, requires_grad=True)
    mu = torch.zeros_like(logvar)
    kl = fastvae.gaussian_kl(mu, logvar)
    kl.sum().backward()
    assert kl.item() == float("inf")
    torch.testing.assert_close(logvar.grad, torch.full_like(logvar, -0.5))


def test_reference_half_precision_and_small_logvar():
    # the torch backend computes like the kernels: float32 math for half inputs, no exp(lv)-1 cancellation
    mu = torch.zeros(1, 1, dtype=torch.float16)
    z = reference.reparameterize(mu, torch.full((1, 1), 23.0, dtype=torch.float16),
                                 eps=torch.full((1, 1), 0.1, dtype=torch.float16))
    assert torch.isfinite(z).all() and abs(z.item() - 0.1 * math.exp(11.5)) < 8
    lv = torch.full((2, 64), 1e-3)
    kl64 = 0.5 * 64 * (math.expm1(1e-3) - 1e-3)
    torch.testing.assert_close(reference.gaussian_kl(torch.zeros_like(lv), lv).double(),
                               torch.full((2,), kl64, dtype=torch.float64), rtol=1e-3, atol=0)
