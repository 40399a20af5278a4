"""reparameterize_kl / gaussian_kl with a learned Gaussian prior against float64 truth, against
VDVAE's formulation (``gaussian_analytical_kl`` in log standard deviations), and at the extremes."""

import math

import pytest
import torch

import fastvae
from fastvae import reference
from fastvae.kernels import reparameterize_kl_bwd, reparameterize_kl_fwd

from helpers import assert_close64, randn, RELATIVE_FLOAT32, SAME_FLOAT32, SAME_FLOAT32_GRAD, sum_dtype

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
SHAPES = [(1, 1), (1, 7), (5, 1), (37, 64), (6, 781), (4, 3, 5)]


def _leaf(t):
    return t.detach().requires_grad_(True)


def _vdvae_kl(mu1, mu2, logsigma1, logsigma2):
    # VDVAE's gaussian_analytical_kl (vae_helpers.py), per element; summed per row by the caller
    return -0.5 + logsigma2 - logsigma1 + 0.5 * (logsigma1.exp() ** 2 + (mu1 - mu2) ** 2) / (logsigma2.exp() ** 2)


def _prior(shape, dtype, device, kind):
    """(prior_mu, prior_logvar) leaves and what the op gets: a full (B, ...) prior, a learned
    one-row prior expanded over the batch, or a non-contiguous view."""
    if kind == "expanded":
        leaves = [_leaf(randn((1, *shape[1:]), dtype, device)), _leaf(randn((1, *shape[1:]), dtype, device, 0.5))]
        return leaves, [t.expand(shape) for t in leaves]
    nc = kind == "strided"
    leaves = [_leaf(randn(shape, dtype, device, noncontig=nc)), _leaf(randn(shape, dtype, device, 0.5, noncontig=nc))]
    return leaves, leaves


def _ref64(mu, logvar, pm, pv, eps, grad_z, grad_kl):
    """Reference z, kl and the four gradients in float64 from the same (rounded) inputs; pm, pv
    are the leaves (their gradient comes back in their own shape)."""
    ins = [t.detach().double().requires_grad_(True) for t in (mu, logvar, pm, pv)]
    m, lv, p, q = ins
    z, kl = reference.reparameterize_kl(m, lv, prior_mu=p.expand(m.shape), prior_logvar=q.expand(m.shape),
                                        eps=eps.double())
    torch.autograd.backward([z, kl], [grad_z.double(), grad_kl.double()])
    return z.detach(), kl.detach(), [t.grad for t in ins]


@pytest.mark.parametrize("kind", ["full", "expanded", "strided"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_float64_truth(shape, dtype, kind, device):
    mu, logvar = _leaf(randn(shape, dtype, device)), _leaf(randn(shape, dtype, device, 0.5))
    (pm, pv), (pm_in, pv_in) = _prior(shape, dtype, device, kind)
    eps = randn(shape, dtype, device)
    z, kl = fastvae.reparameterize_kl(mu, logvar, prior_mu=pm_in, prior_logvar=pv_in, eps=eps)
    assert z.dtype == dtype and z.shape == mu.shape and kl.dtype == sum_dtype(dtype) and kl.shape == (shape[0],)
    assert "fastvae" in type(z.grad_fn).__name__
    gz, gkl = randn(shape, dtype, device), torch.randn(shape[0], device=device, dtype=kl.dtype)
    torch.autograd.backward([z, kl], [gz, gkl])
    z64, kl64, grads64 = _ref64(mu, logvar, pm, pv, eps, gz, gkl)
    n = math.prod(shape[1:])
    assert_close64(z, z64, msg="z")
    assert_close64(kl, kl64, scale=max(1.0, n / 64), msg="kl")
    rows = shape[0] if kind == "expanded" else 1  # an expanded prior's gradient sums the rows
    for name, t, g64 in zip(("mu", "logvar", "prior_mu", "prior_logvar"), (mu, logvar, pm, pv), grads64):
        assert t.grad.shape == t.shape and t.grad.dtype == t.dtype, name
        assert_close64(t.grad, g64, scale=rows, msg=f"grad_{name}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_equals_vdvae_formulation(dtype, device):
    # VDVAE parameterises both Gaussians by log standard deviations: logsigma = logvar / 2
    B, L = 9, 40
    mu, logvar, pm, pv = (randn((B, L), dtype, device, s) for s in (1.0, 1.5, 1.0, 1.5))
    eps = randn((B, L), dtype, device)
    z, kl = fastvae.reparameterize_kl(mu, logvar, prior_mu=pm, prior_logvar=pv, eps=eps)
    m, lv, p, q = (t.double() for t in (mu, logvar, pm, pv))
    want_kl = _vdvae_kl(m, p, lv / 2, q / 2).sum(1)
    want_z = torch.exp(lv / 2) * eps.double() + m  # draw_gaussian_diag_samples(mu, logsigma) with this eps
    assert_close64(kl, want_kl, scale=L / 8, msg="kl vs VDVAE")
    assert_close64(z, want_z, msg="z vs VDVAE")
    assert_close64(fastvae.gaussian_kl(mu, logvar, pm, pv), want_kl, scale=L / 8, msg="gaussian_kl vs VDVAE")
    # and in float64 the reference twin is VDVAE's value (NVAE's Normal.kl is the same formula)
    torch.testing.assert_close(reference.gaussian_kl(m, lv, p, q), want_kl, rtol=1e-12, atol=1e-12)


def test_gradients_match_vdvae_autograd(device):
    B, L = 6, 33
    ins = [randn((B, L), torch.float64, device, s).requires_grad_(True) for s in (1.0, 1.5, 1.0, 1.5)]
    kl = fastvae.gaussian_kl(*ins)
    g = torch.randn(B, device=device, dtype=torch.float64)
    got = torch.autograd.grad(kl, ins, g)
    want = torch.autograd.grad(_vdvae_kl(ins[0], ins[2], ins[1] / 2, ins[3] / 2).sum(1), ins, g)
    for name, a, b in zip(("mu", "logvar", "prior_mu", "prior_logvar"), got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_log_variances_anywhere_in_minus30_20_on_either_side(dtype, device):
    # every pair (logvar, prior_logvar) of a grid over [-30, 20]; half precision computed in float32
    grid = torch.linspace(-30, 20, 26, device=device)
    lv, pv = torch.meshgrid(grid, grid, indexing="ij")
    B = lv.shape[0]
    mu = (torch.randn(B, 26, device=device) * 3).to(dtype)
    pm = (torch.randn(B, 26, device=device) * 3).to(dtype)
    lv, pv, eps = lv.to(dtype), pv.to(dtype), torch.randn(B, 26, device=device).to(dtype)
    leaves = [_leaf(t) for t in (mu, lv, pm, pv)]
    z, kl = fastvae.reparameterize_kl(leaves[0], leaves[1], prior_mu=leaves[2], prior_logvar=leaves[3], eps=eps)
    (z.float().sum() + kl.sum()).backward()
    z64, kl64, grads64 = _ref64(mu, lv, pm, pv, eps, torch.ones(B, 26, device=device), torch.ones(B, device=device))
    assert torch.isfinite(kl).all() and torch.isfinite(z).all()
    torch.testing.assert_close(kl.double(), kl64, rtol=1e-5 if dtype == torch.float32 else 2e-5, atol=0)
    for name, t, g64 in zip(("mu", "logvar", "prior_mu", "prior_logvar"), leaves, grads64):
        # finite wherever the true gradient fits the dtype (float16 tops out at 65504: a prior
        # log-variance of -30 makes d kl / d mu ~ 1e13, which is +-inf there, as in eager float16)
        fits = g64.abs() <= torch.finfo(dtype).max
        assert torch.isfinite(t.grad[fits]).all(), name
        assert torch.equal(t.grad[~fits].double(), g64[~fits].sign() * math.inf), name
        t.grad[~fits], g64[~fits] = 0, 0
        if dtype == torch.float32:
            torch.testing.assert_close(t.grad.double(), g64, rtol=1e-5, atol=1e-6, msg=name)
        else:  # exact in float32, then rounded once to the input's dtype (truncated by the interpreter)
            assert_close64(t.grad, g64, msg=name)


def test_posterior_at_its_prior_keeps_relative_precision(device):
    # logvar - prior_logvar ~ 1e-4 and mu = prior_mu: the KL is ~d^2 / 4 per dim, which the
    # issue's form loses to cancellation in float32; the kernel's series keeps it
    pv = torch.randn(8, 32, device=device) * 5
    lv = pv + (torch.rand(8, 32, device=device) - 0.5) * 2e-4
    pm = torch.randn(8, 32, device=device)
    kl = fastvae.gaussian_kl(pm.clone(), lv, pm, pv)
    d = lv.double() - pv.double()
    torch.testing.assert_close(kl.double(), 0.5 * (d.exp() - 1 - d).sum(1), **RELATIVE_FLOAT32.kw)


def test_drawn_noise_is_the_standard_one_and_regenerated_in_backward(device):
    shape = (20, 50)
    mu, logvar = _leaf(randn(shape, torch.float32, device)), _leaf(randn(shape, torch.float32, device))
    (pm, pv), (pm_in, pv_in) = _prior(shape, torch.float32, device, "expanded")
    torch.manual_seed(7)
    z, kl = fastvae.reparameterize_kl(mu, logvar, prior_mu=pm_in, prior_logvar=pv_in)
    torch.manual_seed(7)
    z_std, _ = fastvae.reparameterize_kl(mu.detach(), logvar.detach())
    assert torch.equal(z.detach(), z_std)  # the prior changes the KL, not the draw
    gz, gkl = randn(shape, torch.float32, device), torch.randn(20, device=device)
    torch.autograd.backward([z, kl], [gz, gkl])
    eps = (z.detach().double() - mu.detach().double()) / torch.exp(0.5 * logvar.detach().double())
    _, _, grads64 = _ref64(mu, logvar, pm, pv, eps, gz, gkl)
    for name, t, g64 in zip(("mu", "logvar", "prior_mu", "prior_logvar"), (mu, logvar, pm, pv), grads64):
        assert_close64(t.grad, g64, scale=20 if t is pm or t is pv else 1, msg=f"grad_{name}")


def test_kl_alone_and_z_alone(device):
    shape = (10, 33)
    mu, logvar = _leaf(randn(shape, torch.float32, device)), _leaf(randn(shape, torch.float32, device))
    (pm, pv), (pm_in, pv_in) = _prior(shape, torch.float32, device, "full")
    kl = fastvae.gaussian_kl(mu, logvar, pm_in, pv_in)
    gkl = torch.randn(10, device=device)
    kl.backward(gkl)
    _, kl64, grads64 = _ref64(mu, logvar, pm, pv, torch.zeros(shape), torch.zeros(shape, device=device), gkl)
    assert_close64(kl, kl64, msg="kl")
    for name, t, g64 in zip(("mu", "logvar", "prior_mu", "prior_logvar"), (mu, logvar, pm, pv), grads64):
        assert_close64(t.grad, g64, msg=f"grad_{name} from kl alone")
    # only z used: the prior gets no gradient (None), mu and logvar theirs
    mu.grad = logvar.grad = pm.grad = pv.grad = None
    z, _ = fastvae.reparameterize_kl(mu, logvar, prior_mu=pm_in, prior_logvar=pv_in)
    z.sum().backward()
    assert pm.grad is None and pv.grad is None and mu.grad is not None
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_launcher_column_loop_and_many_programs(dtype, device):
    B, L = 13, 45
    mu, logvar, pm, pv, eps = (randn((B, L), dtype, device) for _ in range(5))
    pm = pm[:1].expand(B, L)  # stride 0 over the rows
    gz, gkl = randn((B, L), dtype, device), torch.randn(B, device=device, dtype=sum_dtype(dtype))
    z, kl = reparameterize_kl_fwd(mu, logvar, eps=eps, block_rows=4, block_cols=16, prior_mu=pm, prior_logvar=pv)
    grads = reparameterize_kl_bwd(mu, logvar, eps, None, gz, gkl, block_rows=4, block_cols=16, prior_mu=pm,
                                  prior_logvar=pv)
    assert len(grads) == 4 and all(g.shape == (B, L) and g.is_contiguous() for g in grads)
    ins = [t.double().requires_grad_(True) for t in (mu, logvar, pm.contiguous(), pv)]
    z64, kl64 = reference.reparameterize_kl(ins[0], ins[1], prior_mu=ins[2], prior_logvar=ins[3], eps=eps.double())
    torch.autograd.backward([z64, kl64], [gz.double(), gkl.double()])
    assert_close64(z, z64, msg="z")
    assert_close64(kl, kl64, msg="kl")
    for name, g, t in zip(("mu", "logvar", "prior_mu", "prior_logvar"), grads, ins):
        assert_close64(g, t.grad, msg=f"grad_{name}")


@pytest.mark.parametrize("fn", [fastvae.reparameterize_kl, reference.reparameterize_kl,
                                lambda mu, lv, **kw: fastvae.gaussian_kl(mu, lv, kw.get("prior_mu"),
                                                                         kw.get("prior_logvar"))])
def test_bad_prior(fn, device):
    mu = torch.zeros(4, 3, device=device)
    with pytest.raises(ValueError, match="both prior_mu and prior_logvar"):
        fn(mu, mu, prior_mu=mu)
    with pytest.raises(ValueError, match="both prior_mu and prior_logvar"):
        fn(mu, mu, prior_logvar=mu)
    with pytest.raises(ValueError, match=r"prior_mu must have mu's shape \(4, 3\).*expand"):
        fn(mu, mu, prior_mu=torch.zeros(1, 3, device=device), prior_logvar=mu)
    with pytest.raises(TypeError, match="prior_logvar must have mu's dtype"):
        fn(mu, mu, prior_mu=mu, prior_logvar=mu.double())
    with pytest.raises(TypeError, match="prior_mu must be a floating tensor"):
        fn(mu, mu, prior_mu=mu.int(), prior_logvar=mu)


def test_empty_batch_and_latent(device):
    e = torch.zeros(0, 8, device=device, requires_grad=True)
    p = torch.zeros(1, 8, device=device, requires_grad=True)
    z, kl = fastvae.reparameterize_kl(e, e, prior_mu=p.expand(0, 8), prior_logvar=p.expand(0, 8))
    assert z.shape == (0, 8) and kl.shape == (0,)
    (z.sum() + kl.sum()).backward()
    empty = torch.zeros(3, 0, device=device)
    assert torch.equal(fastvae.gaussian_kl(empty, empty, empty, empty), torch.zeros(3, device=device))


def test_torch_compile_fullgraph_with_the_prior(device):
    torch.manual_seed(0)
    B, L = 6, 20
    mu0, lv0 = torch.randn(B, L, device=device), torch.randn(B, L, device=device)
    pm0, pv0 = torch.randn(1, L, device=device), torch.randn(1, L, device=device)
    eps = torch.randn(B, L, device=device)

    def f(mu, lv, pm, pv):
        z, kl = fastvae.reparameterize_kl(mu, lv, prior_mu=pm.expand(mu.shape), prior_logvar=pv.expand(mu.shape),
                                          eps=eps)
        return (z * z).sum() + 0.5 * kl.sum() + fastvae.gaussian_kl(mu, lv, pm.expand(mu.shape),
                                                                    pv.expand(mu.shape)).sum()

    def run(fn):
        ins = [t.clone().requires_grad_(True) for t in (mu0, lv0, pm0, pv0)]
        out = fn(*ins)
        out.backward()
        return out.detach(), [t.grad for t in ins]

    want, want_grads = run(f)
    torch._dynamo.reset()
    got, got_grads = run(torch.compile(f, fullgraph=True))
    torch.testing.assert_close(got, want, **SAME_FLOAT32.kw)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, **SAME_FLOAT32_GRAD.kw)


def test_reference_backend_and_once_differentiable(device):
    mu, lv = torch.randn(3, 4, device=device, requires_grad=True), torch.randn(3, 4, device=device)
    pm, pv = torch.randn(3, 4, device=device, requires_grad=True), torch.randn(3, 4, device=device)
    with fastvae.backend("torch"):
        kl_t = fastvae.gaussian_kl(mu, lv, pm, pv)
    kl = fastvae.gaussian_kl(mu, lv, pm, pv)
    torch.testing.assert_close(kl, kl_t, **SAME_FLOAT32.kw)
    with pytest.raises(RuntimeError, match="not twice differentiable"):
        torch.autograd.grad(kl.sum(), [mu, pm], create_graph=True)
