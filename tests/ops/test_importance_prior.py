"""reparameterize_iw with a learned Gaussian prior against float64 truth: the samples, the log
ratio ``log N(z; prior) - log q(z)`` and the four gradients; K = 1 on rows that already hold K
samples (a hierarchy's levels); the prior refused with DReG's path gradient."""

import math

import pytest
import torch

import fastvae
from fastvae import reference
from fastvae.kernels import reparameterize_iw_bwd, reparameterize_iw_fwd

from helpers import assert_close64, randn, SAME_FLOAT32, SAME_FLOAT32_GRAD, sum_dtype

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
NAMES = ("mu", "logvar", "prior_mu", "prior_logvar")


def _leaves(*ts):
    return [t.detach().clone().requires_grad_(True) for t in ts]


@pytest.mark.parametrize("expanded", [False, True], ids=["full", "expanded"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (6, 64), (3, 2, 5)], ids=str)
def test_samples_log_ratios_and_gradients_match_float64(shape, dtype, expanded, device):
    K = 3
    mu, logvar = _leaves(randn(shape, dtype, device), randn(shape, dtype, device, scale=0.5))
    pshape = (1, *shape[1:]) if expanded else shape
    pm, pv = _leaves(randn(pshape, dtype, device), randn(pshape, dtype, device, scale=0.5))
    eps = randn((K, *shape), dtype, device)
    z, lr = fastvae.reparameterize_iw(mu, logvar, K, prior_mu=pm.expand(shape), prior_logvar=pv.expand(shape), eps=eps)
    assert z.shape == (K, *shape) and z.dtype == dtype and lr.shape == (K, shape[0]) and lr.dtype == sum_dtype(dtype)
    assert "fastvae" in type(lr.grad_fn).__name__
    gz, glr = randn(z.shape, dtype, device), torch.randn(K, shape[0], device=device, dtype=lr.dtype)
    torch.autograd.backward([z, lr], [gz, glr])
    ins = _leaves(mu.double(), logvar.double(), pm.double(), pv.double())
    z64, lr64 = reference.reparameterize_iw(ins[0], ins[1], K, prior_mu=ins[2].expand(shape),
                                            prior_logvar=ins[3].expand(shape), eps=eps.double())
    torch.autograd.backward([z64, lr64], [gz.double(), glr.double()])
    assert_close64(z, z64, msg="z")
    assert_close64(lr, lr64, scale=max(1.0, math.prod(shape[1:]) / 16), msg="log_ratio")
    rows = shape[0] if expanded else 1
    for name, t, t64 in zip(NAMES, (mu, logvar, pm, pv), ins):
        assert t.grad.shape == t.shape, name
        assert_close64(t.grad, t64.grad, scale=K * rows, msg=f"grad_{name}")


def test_log_ratio_is_log_prior_minus_log_posterior(device):
    B, L, K = 4, 9, 5
    mu, logvar, pm, pv = (randn((B, L), torch.float64, device, s) for s in (1.0, 1.0, 1.0, 1.0))
    z, lr = fastvae.reparameterize_iw(mu, logvar, K, prior_mu=pm, prior_logvar=pv)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(pm, torch.exp(0.5 * pv))
    torch.testing.assert_close(lr, (p.log_prob(z) - q.log_prob(z)).sum(-1), rtol=1e-10, atol=1e-10)


def test_a_hierarchy_level_with_one_sample_per_row(device):
    # K samples drawn at the top; the level below holds K * B rows and takes num_samples=1:
    # its log ratio per row is the level's sampled log ratio, added to the top's
    B, L, K = 3, 6, 4
    mu_top, lv_top = torch.randn(B, L, device=device), torch.randn(B, L, device=device)
    z_top, lr_top = fastvae.reparameterize_iw(mu_top, lv_top, K)
    rows = z_top.reshape(K * B, L)
    pm, pv = torch.tanh(rows), 0.1 * rows  # the prior of the level below, a function of z_top
    mu, lv = rows + 0.3, -0.2 * rows
    z, lr = fastvae.reparameterize_iw(mu, lv, 1, prior_mu=pm, prior_logvar=pv)
    assert z.shape == (1, K * B, L) and lr.shape == (1, K * B)
    q = torch.distributions.Normal(mu.double(), torch.exp(0.5 * lv.double()))
    p = torch.distributions.Normal(pm.double(), torch.exp(0.5 * pv.double()))
    want = (p.log_prob(z[0].double()) - q.log_prob(z[0].double())).sum(-1)
    torch.testing.assert_close(lr[0].double(), want, rtol=1e-5, atol=1e-4)
    total = lr_top + lr.view(K, B)  # (K, B): what the hierarchy's bound takes
    assert total.shape == (K, B) and torch.isfinite(total).all()


def test_drawn_noise_unchanged_by_the_prior_and_regenerated(device):
    B, L, K = 8, 20, 3
    mu, logvar = _leaves(torch.randn(B, L, device=device), torch.randn(B, L, device=device))
    pm, pv = _leaves(torch.randn(B, L, device=device), torch.randn(B, L, device=device))
    torch.manual_seed(3)
    z, lr = fastvae.reparameterize_iw(mu, logvar, K, prior_mu=pm, prior_logvar=pv)
    torch.manual_seed(3)
    z_std, _ = fastvae.reparameterize_iw(mu.detach(), logvar.detach(), K)
    assert torch.equal(z.detach(), z_std)
    gz, glr = torch.randn(K, B, L, device=device), torch.randn(K, B, device=device)
    torch.autograd.backward([z, lr], [gz, glr])
    eps = (z.detach().double() - mu.detach().double()) / torch.exp(0.5 * logvar.detach().double())
    ins = _leaves(mu.double(), logvar.double(), pm.double(), pv.double())
    z64, lr64 = reference.reparameterize_iw(ins[0], ins[1], K, prior_mu=ins[2], prior_logvar=ins[3], eps=eps)
    torch.autograd.backward([z64, lr64], [gz.double(), glr.double()])
    for name, t, t64 in zip(NAMES, (mu, logvar, pm, pv), ins):
        assert_close64(t.grad, t64.grad, scale=K, msg=f"grad_{name}")


def test_launcher_prior_gradients_only_from_the_log_ratio(device):
    B, L, K = 5, 12, 2
    mu, lv, pm, pv = (torch.randn(B, L, device=device) for _ in range(4))
    seed = torch.tensor([11], dtype=torch.int64, device=device)
    z, lr = reparameterize_iw_fwd(mu, lv, K, seed=seed, prior_mu=pm, prior_logvar=pv)
    grads = reparameterize_iw_bwd(mu, lv, K, None, seed, torch.ones(K, B, L, device=device), None, prior_mu=pm,
                                  prior_logvar=pv)
    assert len(grads) == 4 and grads[2] is None and grads[3] is None
    torch.testing.assert_close(grads[0], torch.full((B, L), float(K), device=device))
    with pytest.raises(ValueError, match="path gradient"):
        reparameterize_iw_bwd(mu, lv, K, None, seed, None, lr, path=True, prior_mu=pm, prior_logvar=pv)


@pytest.mark.parametrize("fn", [fastvae.reparameterize_iw, reference.reparameterize_iw])
def test_prior_refused_with_the_path_gradient_and_checked(fn, device):
    mu = torch.zeros(4, 3, device=device)
    with pytest.raises(ValueError, match="DReG"):
        fn(mu, mu, 2, prior_mu=mu, prior_logvar=mu, path_gradient=True)
    with pytest.raises(ValueError, match="both prior_mu and prior_logvar"):
        fn(mu, mu, 2, prior_mu=mu)
    with pytest.raises(ValueError, match="prior_logvar must have mu's shape"):
        fn(mu, mu, 2, prior_mu=mu, prior_logvar=torch.zeros(4, device=device))


def test_given_eps_gets_its_gradient_under_the_prior(device):
    B, L, K = 3, 5, 2
    mu, lv, pm, pv = (torch.randn(B, L, device=device, dtype=torch.float64) for _ in range(4))
    eps = torch.randn(K, B, L, device=device, dtype=torch.float64, requires_grad=True)
    z, lr = fastvae.reparameterize_iw(mu, lv, K, prior_mu=pm, prior_logvar=pv, eps=eps)
    (z.sum() + 2 * lr.sum()).backward()
    e2 = eps.detach().clone().requires_grad_(True)
    z2, lr2 = reference.reparameterize_iw(mu, lv, K, prior_mu=pm, prior_logvar=pv, eps=e2)
    (z2.sum() + 2 * lr2.sum()).backward()
    torch.testing.assert_close(eps.grad, e2.grad, rtol=1e-10, atol=1e-10)


def test_torch_compile_fullgraph_with_the_prior(device):
    B, L, K = 4, 10, 3
    ins0 = [torch.randn(B, L, device=device) for _ in range(4)]
    eps = torch.randn(K, B, L, device=device)

    def f(mu, lv, pm, pv):
        z, lr = fastvae.reparameterize_iw(mu, lv, K, prior_mu=pm, prior_logvar=pv, eps=eps)
        return (z * z).sum() + torch.logsumexp(lr, 0).sum()

    def run(fn):
        ins = [t.clone().requires_grad_(True) for t in ins0]
        out = fn(*ins)
        out.backward()
        return out.detach(), [t.grad for t in ins]

    want, want_grads = run(f)
    torch._dynamo.reset()
    got, got_grads = run(torch.compile(f, fullgraph=True))
    torch.testing.assert_close(got, want, **SAME_FLOAT32.kw)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, **SAME_FLOAT32_GRAD.kw)
