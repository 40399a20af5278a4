"""ELBOLoss / elbo_loss against fastvae.reference and the classic PyTorch VAE example loss."""

import pytest
import torch
import torch.nn.functional as F

import fastvae
from fastvae import reference

from helpers import assert_close64, randn, sum_dtype


def _inputs(B, D, L, dtype, device, target="uint8"):
    logits = randn((B, D), dtype, device, scale=3.0).requires_grad_(True)
    x = torch.rand(B, D, device=device) < 0.3
    x = x.to(torch.uint8) if target == "uint8" else x.to(dtype)
    mu = randn((B, L), dtype, device).requires_grad_(True)
    logvar = randn((B, L), dtype, device, scale=0.5).requires_grad_(True)
    return logits, x, mu, logvar


def _grads(loss, tensors, upstream=None):
    return torch.autograd.grad(loss, tensors, upstream)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("beta", [1.0, 0.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64], ids=str)
def test_matches_reference(dtype, beta, reduction, device):
    B, D, L = 19, 784, 20
    logits, x, mu, logvar = _inputs(B, D, L, dtype, device)
    loss = fastvae.ELBOLoss(beta=beta, reduction=reduction)(logits, x, mu, logvar)
    inputs64 = [t.detach().double().requires_grad_(True) for t in (logits, mu, logvar)]
    ref = reference.ELBOLoss(beta=beta, reduction=reduction)(inputs64[0], x, inputs64[1], inputs64[2])
    assert loss.dtype == sum_dtype(dtype) and loss.shape == ref.shape
    assert_close64(loss, ref, dtype=sum_dtype(dtype), scale=100, msg="loss")
    # an upstream gradient other than 1 (the "not last layer" case)
    up = torch.full_like(loss, 3.0) if reduction != "none" else torch.randn(B, device=device, dtype=loss.dtype)
    got = _grads(loss, (logits, mu, logvar), up)
    want = _grads(ref, inputs64, up.double())
    for name, a, b in zip(("grad_logits", "grad_mu", "grad_logvar"), got, want):
        assert a.dtype == dtype
        assert_close64(a, b, msg=name)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_plain_backward_and_terms(reduction, device):
    logits, x, mu, logvar = _inputs(12, 50, 8, torch.float32, device, target="float")
    terms = fastvae.elbo_loss(logits, x, mu, logvar, beta=2.0, reduction=reduction, return_terms=True)
    assert isinstance(terms, fastvae.ELBOTerms)
    ll_ref = reference.bernoulli_log_likelihood(logits.detach().double(), x.double())
    kl_ref = reference.gaussian_kl(mu.detach().double(), logvar.detach().double())
    assert_close64(terms.log_likelihood, ll_ref, scale=10, msg="log_likelihood")
    assert_close64(terms.kl, kl_ref, msg="kl")
    rows = 2.0 * kl_ref - ll_ref
    assert_close64(terms.loss, rows.mean() if reduction == "mean" else rows.sum(), scale=50, msg="loss")
    terms.loss.backward()  # the usual upstream gradient of 1: the early-exit path
    l64 = logits.detach().double().requires_grad_(True)
    ref = reference.elbo_loss(l64, x, mu.detach().double(), logvar.detach().double(), 2.0, reduction)
    ref.backward()
    assert_close64(logits.grad, l64.grad, msg="grad_logits")


def test_is_the_pytorch_vae_example_loss(device):
    # examples/vae/main.py: BCE(recon_x, x, reduction='sum') + KLD, recon_x = sigmoid(logits)
    logits, x, mu, logvar = _inputs(16, 784, 20, torch.float64, device, target="float")
    recon_x = torch.sigmoid(logits)
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    classic = bce + kld
    ours = fastvae.ELBOLoss(reduction="sum")(logits, x, mu, logvar)
    torch.testing.assert_close(ours, classic, rtol=1e-9, atol=1e-8)
    torch.testing.assert_close(_grads(ours, (logits, mu, logvar)), _grads(classic, (logits, mu, logvar)),
                               rtol=1e-9, atol=1e-9)


def test_mean_is_nats_per_example_not_per_element(device):
    logits, x, mu, logvar = _inputs(10, 30, 4, torch.float32, device, target="float")
    total = fastvae.elbo_loss(logits, x, mu, logvar, reduction="sum")
    mean = fastvae.elbo_loss(logits, x, mu, logvar, reduction="mean")
    torch.testing.assert_close(mean * 10, total)


def test_bad_arguments(device):
    logits, x, mu, logvar = _inputs(4, 6, 3, torch.float32, device)
    with pytest.raises(ValueError, match="reduction"):
        fastvae.ELBOLoss(reduction="batchmean")
    with pytest.raises(ValueError, match="reduction"):
        fastvae.elbo_loss(logits, x, mu, logvar, reduction="avg")
    with pytest.raises(TypeError, match="beta"):
        fastvae.ELBOLoss(beta="1")
    with pytest.raises(ValueError, match="batch size"):
        fastvae.elbo_loss(logits, x, mu[:3], logvar[:3])
    with pytest.raises(ValueError, match=r"\(4, 6\) and \(4, 5\)"):
        fastvae.elbo_loss(logits, x[:, :5], mu, logvar)
    assert "beta=1.0" in repr(fastvae.ELBOLoss())


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_usual_backward_leaves_nothing_to_do(reduction, dtype, device, monkeypatch):
    # The forward folds the upstream gradient that `loss.backward()` will send into the gradient
    # it stores; the backward kernel then finds g == grad_scale on every row and returns at
    # once. Check the values it is handed (a wrong fold would still be right, only slower).
    import fastvae.kernels as K

    seen = []
    real = K.bernoulli_ll_scale_grad_

    def spy(grad, g, grad_scale, **kw):
        seen.append(bool((g == torch.tensor(grad_scale, dtype=torch.float32)).all()))
        return real(grad, g, grad_scale, **kw)

    monkeypatch.setattr(K, "bernoulli_ll_scale_grad_", spy)
    logits, x, mu, logvar = _inputs(37, 40, 6, dtype, device)
    fastvae.ELBOLoss(reduction=reduction)(logits, x, mu, logvar).backward()
    assert seen == [True], "the backward should take the early exit on every row"
    (fastvae.ELBOLoss(reduction=reduction)(logits, x, mu, logvar) * 3).backward()
    assert seen == [True, False]
