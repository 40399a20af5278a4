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
    real = K.scale_rows

    def spy(grad, g, grad_scale, **kw):
        seen.append(bool((g == torch.tensor(grad_scale, dtype=torch.float32)).all()))
        return real(grad, g, grad_scale, **kw)

    monkeypatch.setattr(K, "scale_rows", spy)
    logits, x, mu, logvar = _inputs(37, 40, 6, dtype, device)
    fastvae.ELBOLoss(reduction=reduction)(logits, x, mu, logvar).backward()
    assert seen == [True], "the backward should take the early exit on every row"
    (fastvae.ELBOLoss(reduction=reduction)(logits, x, mu, logvar) * 3).backward()
    assert seen == [True, False]


@pytest.mark.parametrize("logits_grad", [True, False], ids=["logits-grad", "no-logits-grad"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("B", [3, 37])
def test_kl_gradient_with_and_without_the_rescale_launch(B, reduction, logits_grad, device):
    # kl's gradient (upstream * beta * w) is formed by the launch that rescales the stored logits
    # gradient when there is one (and the kernel reduces the rows itself when one program holds
    # them all, B = 3): check it against float64 both ways, with an upstream gradient other than 1
    logits, x, mu, logvar = _inputs(B, 30, 5, torch.float32, device)
    logits.requires_grad_(logits_grad)
    z, kl = fastvae.reparameterize_kl(mu, logvar, eps=torch.zeros_like(mu))
    loss = fastvae.elbo_loss(logits, x, kl=kl, beta=0.3, reduction=reduction)
    g = torch.randn(loss.shape, device=device)
    got = _grads(loss, [mu, logvar] + ([logits] if logits_grad else []), g)
    t64 = [t.detach().double().requires_grad_(t.requires_grad) for t in (logits, mu, logvar)]
    ref = reference.elbo_loss(t64[0], x, t64[1], t64[2], beta=0.3, reduction=reduction)
    assert_close64(loss, ref.detach(), msg="loss")
    want = _grads(ref, [t64[1], t64[2]] + ([t64[0]] if logits_grad else []), g.double())
    for name, a, b in zip(("mu", "logvar", "logits"), got, want):
        assert_close64(a, b, msg=name)


def test_float16_mean_loss_with_loss_scaling_keeps_small_gradients(device):
    # AMP-style: float16 logits, mean over a large batch, loss multiplied by 65536 (GradScaler).
    # A gradient stored pre-scaled by -1/B in float16 would underflow to 0 before the 65536
    # arrives; float16 logits therefore recompute their gradient in backward.
    B, D = 4096, 16
    logits = (10 + torch.rand(B, D, device=device)).to(torch.float16).requires_grad_(True)
    x = torch.ones(B, D, device=device, dtype=torch.uint8)
    mu = logvar = torch.zeros(B, 2, device=device, dtype=torch.float16)
    (fastvae.elbo_loss(logits, x, mu, logvar) * 65536.0).backward()
    l64 = logits.detach().double().requires_grad_(True)
    (reference.elbo_loss(l64, x, mu.double(), logvar.double()) * 65536.0).backward()
    assert (logits.grad != 0).all()
    assert_close64(logits.grad, l64.grad, msg="grad_logits")


def test_kl_from_the_model_is_not_recomputed(device):
    logits, x, mu, logvar = _inputs(11, 40, 5, torch.float32, device)
    z, kl = fastvae.reparameterize_kl(mu, logvar)
    loss = fastvae.ELBOLoss(beta=0.7)(logits, x, kl=kl)
    want = fastvae.ELBOLoss(beta=0.7)(logits, x, mu, logvar)
    torch.testing.assert_close(loss, want)
    g_kl = torch.autograd.grad(loss, (mu, logvar), retain_graph=True)
    g_ref = torch.autograd.grad(want, (mu, logvar))
    torch.testing.assert_close(g_kl, g_ref)
    ref = reference.elbo_loss(logits, x, beta=0.7, kl=reference.gaussian_kl(mu, logvar))
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="not both"):
        fastvae.elbo_loss(logits, x, mu, logvar, kl=kl)
    with pytest.raises(ValueError, match="mu and logvar, or"):
        fastvae.elbo_loss(logits, x)
    with pytest.raises(ValueError, match=r"kl must be per row"):
        fastvae.elbo_loss(logits, x, kl=kl[:, None])


def test_beta_accepts_numpy_scalars(device):
    np = pytest.importorskip("numpy")
    logits, x, mu, logvar = _inputs(3, 8, 2, torch.float32, device)
    a = fastvae.elbo_loss(logits, x, mu, logvar, beta=np.float32(0.5))
    torch.testing.assert_close(a, fastvae.elbo_loss(logits, x, mu, logvar, beta=0.5))
    with pytest.raises(TypeError, match="beta"):
        fastvae.elbo_loss(logits, x, mu, logvar, beta=torch.tensor(0.5))


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_one_dimensional_inputs_are_batches_of_one_element(backend, device):
    # dimension 0 is always the batch: (B,) inputs give (B,) per-row results on every backend
    v = torch.randn(6, device=device)
    x = (torch.rand(6, device=device) < 0.5).to(torch.uint8)
    with fastvae.backend(backend):
        assert fastvae.gaussian_kl(v, v).shape == (6,)
        assert fastvae.bernoulli_log_likelihood(v, x).shape == (6,)
        assert fastvae.elbo_loss(v, x, v, v, reduction="none").shape == (6,)
        z, kl = fastvae.reparameterize_kl(v, v)
        assert z.shape == (6,) and kl.shape == (6,)


@pytest.mark.parametrize("op", ["bernoulli", "gaussian"])
def test_double_backward_is_refused_not_silently_wrong(op, device):
    logits, x, mu, logvar = _inputs(5, 12, 3, torch.float32, device)
    W = torch.randn(12, 12, device=device, requires_grad=True)
    if op == "bernoulli":
        out = fastvae.bernoulli_log_likelihood(logits.detach() @ W, x).sum()
    else:
        out = fastvae.gaussian_kl(mu.detach() @ W[:3, :3], logvar).sum()
    with pytest.raises(RuntimeError, match="not twice differentiable"):
        torch.autograd.grad(out, W, create_graph=True)


def test_likelihood_is_checked_at_construction_and_positional_use_is_unchanged(device):
    with pytest.raises(ValueError, match="likelihood must be one of"):
        fastvae.ELBOLoss(likelihood="laplace")
    with pytest.raises(ValueError, match="likelihood must be one of"):
        fastvae.elbo_loss(torch.zeros(2, 3), torch.zeros(2, 3), kl=torch.zeros(2), likelihood="laplace")
    with pytest.raises(TypeError):
        fastvae.ELBOLoss(1.0, "mean", False, "gaussian")  # likelihood is keyword-only
    logits, x, mu, logvar = _inputs(4, 10, 3, torch.float32, device)
    a = fastvae.ELBOLoss(0.5, "sum", True)(logits, x, mu, logvar)
    assert isinstance(a, fastvae.ELBOTerms) and a.loss.dim() == 0
    with pytest.raises(TypeError, match="logscale must be a real number"):
        fastvae.ELBOLoss(likelihood="gaussian")(logits, x, mu, logvar, logscale=None)
