"""fastvae.models and fastvae.evaluate: the fused model against its reference twin, the IWAE
estimator against marginal likelihoods known exactly."""

import math

import numpy as np
import pytest
import torch

from fastvae import evaluate, reference
from fastvae.models import ConvVAE, MLPVAE, VAEOutput

from helpers import SAME_FLOAT32, SAME_FLOAT32_GRAD

ARCHS = [(MLPVAE, (1, 28, 28), {"hidden": (32, 16), "latent_dim": 8}),
         (ConvVAE, (1, 28, 28), {"latent_dim": 8, "channels": (4, 8)}),
         (ConvVAE, (3, 64, 64), {"latent_dim": 6})]


def binary(B, shape):
    return (torch.rand(B, *shape) < 0.3).to(torch.uint8)


@pytest.mark.parametrize("cls,shape,kw", ARCHS, ids=["mlp", "conv28", "conv64rgb"])
def test_fused_matches_reference_with_the_same_noise(cls, shape, kw):
    model = cls(shape, **kw)
    x, eps = binary(7, shape), torch.randn(7, model.latent_dim)
    grads = []
    for fused in (True, False):
        model.fused = fused
        model.zero_grad()
        terms = model.loss(x, eps=eps, return_terms=True)
        terms.loss.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        if fused:
            first = terms
    assert torch.allclose(first.loss, terms.loss, rtol=1e-5)
    assert torch.allclose(first.kl, terms.kl, **SAME_FLOAT32.kw)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, **SAME_FLOAT32_GRAD.kw)


def test_forward_structure_and_inputs():
    model = MLPVAE((1, 28, 28), hidden=20, latent_dim=5)
    x = binary(4, (1, 28, 28))
    out = model(x)
    assert isinstance(out, VAEOutput)
    assert out.logits.shape == (4, 1, 28, 28) and out.mu.shape == out.logvar.shape == out.z.shape == (4, 5)
    assert out.kl.shape == (4,) and out.kl.dtype == torch.float32 and (out.kl >= 0).all()
    eps = torch.randn(4, 5)
    # flat, bool and float inputs give the same numbers as uint8 (N, C, H, W)
    want = model.loss(x, eps=eps)
    for other in (x.reshape(4, 784), x.bool(), x.float()):
        assert torch.allclose(model.loss(other, eps=eps), want)
    with pytest.raises(ValueError, match="shape"):
        model(torch.zeros(4, 783, dtype=torch.uint8))
    with pytest.raises(TypeError, match="uint8"):
        model(torch.zeros(4, 784, dtype=torch.int64))
    with pytest.raises(ValueError, match="activation"):
        MLPVAE(activation="swish")
    with pytest.raises(ValueError, match="divisible"):
        ConvVAE((1, 30, 30))
    with pytest.raises(ValueError, match="latent_dim"):
        MLPVAE(latent_dim=0)


def test_noise_is_drawn_and_reproducible():
    model = MLPVAE((10,), hidden=(8,), latent_dim=3)
    x = binary(5, (10,))
    torch.manual_seed(1)
    a = model(x).z
    b = model(x).z
    torch.manual_seed(1)
    c = model(x).z
    assert not torch.equal(a, b) and torch.equal(a, c)


def test_sample_reconstruct_and_output_bias():
    model = MLPVAE((1, 6, 6), hidden=(8,), latent_dim=2)
    means = torch.rand(1, 6, 6) * 0.9 + 0.05
    with torch.no_grad():
        model.decoder[-2].weight.zero_()  # the decoder's last Linear: output = bias only
    model.init_output_bias(means)
    p = model.sample(3)
    assert p.shape == (3, 1, 6, 6) and torch.allclose(p, means.expand(3, 1, 6, 6), atol=1e-6)
    s = model.sample(2000, binary=True)
    assert s.dtype == torch.uint8 and set(s.unique().tolist()) <= {0, 1}
    assert torch.allclose(s.float().mean(0), means, atol=0.05)
    r = model.reconstruct(binary(4, (1, 6, 6)))
    assert r.shape == (4, 1, 6, 6) and torch.allclose(r, means.expand_as(r), atol=1e-6)
    with pytest.raises(ValueError, match="pixel_means"):
        model.init_output_bias(torch.rand(35))


def test_bfloat16_autocast_keeps_bfloat16_logits():
    model = MLPVAE((1, 28, 28), hidden=(32,), latent_dim=4)
    x, eps = binary(6, (1, 28, 28)), torch.randn(6, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, eps=eps)
        loss = model.loss(x, eps=eps)
    assert out.logits.dtype == torch.bfloat16
    loss.backward()
    assert torch.isclose(loss, model.loss(x, eps=eps), rtol=2e-2)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


# --------------------------------------------------------------------------- evaluate

def toy_model(w, b, enc_bias=(0.0, 0.0)):
    """latent 1, D pixels, decoder logits = w * z + b; encoder ignores x (q = N(m, exp(lv)))."""
    model = MLPVAE((len(b),), hidden=(), latent_dim=1)
    with torch.no_grad():
        model.encoder[1].weight.zero_()
        model.encoder[1].bias.copy_(torch.tensor(enc_bias))
        model.decoder[0].weight.copy_(torch.tensor(w, dtype=torch.float32)[:, None])
        model.output_bias.copy_(torch.tensor(b))
    return model


def exact_log_px(w, b, x):
    """log of the integral of N(z; 0, 1) prod_d Bernoulli(x_d; sigmoid(w_d z + b_d)) dz, by
    Gauss-Hermite quadrature (exact to ~1e-12 for this smooth integrand)."""
    z, wts = np.polynomial.hermite_e.hermegauss(200)
    logits = np.outer(z, w) + b                              # (Q, D)
    s = 2 * x.numpy().astype(np.float64) - 1                 # (N, D)
    logp = -np.logaddexp(0, -s[:, None, :] * logits[None])   # (N, Q, D) log sigmoid(s * l)
    return np.log((np.exp(logp.sum(-1)) * wts).sum(-1) / math.sqrt(2 * math.pi))


def test_iwae_is_exact_when_q_is_the_posterior():
    # decoder ignores z: the posterior is the prior, q is the prior, every weight is p(x) exactly
    b = [0.3, -1.2, 2.0, -0.5, 0.0]
    model = toy_model([0.0] * 5, b)
    x = torch.tensor([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 0]], dtype=torch.uint8)
    want = torch.from_numpy(exact_log_px(np.zeros(5), np.array(b), x))
    # chunked over examples (max_rows // K = 1) and over samples (K > max_rows): still exact
    for K, rows in ((1, 65536), (10, 10), (10, 3)):
        got = evaluate.log_likelihood(model, x, num_samples=K, max_rows=rows)
        assert got.dtype == torch.float64 and got.shape == (4,)
        assert torch.allclose(got, want, atol=1e-5), (K, rows)


def test_iwae_converges_to_the_marginal_likelihood():
    w, b = np.array([2.0, -1.5, 1.0]), np.array([0.5, 0.0, -1.0])
    model = toy_model(w.tolist(), b.tolist(), enc_bias=(0.3, -0.5))  # q != posterior
    x = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 0]], dtype=torch.uint8)
    exact = torch.from_numpy(exact_log_px(w, b, x))
    iwae = evaluate.log_likelihood(model, x, num_samples=20000, max_rows=40000)
    assert torch.allclose(iwae, exact, atol=0.03), (iwae, exact)
    # K = 1 is the ELBO, here strictly below log p(x): both single-sample estimators average to
    # the exact ELBO E_q[log p(x|z)] - KL(q || p), within 5 standard errors
    m, s = 0.3, math.exp(-0.25)
    t, wts = np.polynomial.hermite_e.hermegauss(200)
    logits = np.outer(m + s * t, w) + b
    sgn = 2 * x.numpy().astype(np.float64) - 1
    e_ll = (-np.logaddexp(0, -sgn[:, None, :] * logits[None])).sum(-1) @ wts / math.sqrt(2 * math.pi)
    exact_elbo = torch.from_numpy(e_ll - 0.5 * (m * m + s * s - 1 - 2 * math.log(s)))
    assert (exact_elbo < exact - 0.05).all()
    n = 4000
    for est in (evaluate.log_likelihood(model, x.repeat(n, 1), num_samples=1).view(n, 4),
                evaluate.elbo(model, x.repeat(n, 1)).view(n, 4).double()):
        tol = 5 * est.std(0) / math.sqrt(n)
        assert ((est.mean(0) - exact_elbo).abs() < tol).all(), (est.mean(0), exact_elbo, tol)


def test_evaluate_takes_flat_examples():
    model = MLPVAE((1, 4, 4), hidden=(8,), latent_dim=2)
    x = binary(6, (1, 4, 4))
    g = torch.Generator().manual_seed(3)
    want = evaluate.log_likelihood(model, x, num_samples=5, generator=g)
    g.manual_seed(3)
    assert torch.equal(evaluate.log_likelihood(model, x.reshape(6, 16), num_samples=5, generator=g), want)


def test_evaluate_rejects_bad_arguments():
    model = toy_model([0.0], [0.0])
    x = torch.zeros(2, 1, dtype=torch.uint8)
    with pytest.raises(ValueError, match="num_samples"):
        evaluate.log_likelihood(model, x, num_samples=0)
    with pytest.raises(ValueError, match="no examples"):
        evaluate.log_likelihood(model, x[:0])
    with pytest.raises(ValueError, match="batch_size"):
        evaluate.elbo(model, x, batch_size=-1)


@pytest.mark.parametrize("likelihood,logscale", [("continuous_bernoulli", "learned"), ("gaussian", "learned"),
                                                 ("gaussian", "per-pixel"), ("gaussian", -1.0)])
def test_models_with_other_likelihoods(likelihood, logscale, device):
    from fastvae import decoders

    torch.manual_seed(0)
    extra = dict(logscale=logscale) if likelihood == "gaussian" else {}
    model = MLPVAE((1, 4, 4), hidden=(8,), latent_dim=3, likelihood=likelihood, **extra).to(device)
    x = torch.randint(0, 256, (5, 1, 4, 4), dtype=torch.uint8, device=device)  # 8-bit data: k / 255
    eps = torch.randn(5, 3, device=device)
    loss = model.loss(x, eps=eps)
    ref = MLPVAE((1, 4, 4), hidden=(8,), latent_dim=3, likelihood=likelihood, fused=False, **extra).to(device)
    ref.load_state_dict(model.state_dict())
    torch.testing.assert_close(loss, ref.loss(x, eps=eps), **SAME_FLOAT32.kw)
    loss.backward()
    if likelihood == "gaussian" and isinstance(logscale, str):  # a learned parameter, checkpointed
        assert "logscale" in model.state_dict() and model.logscale.grad is not None
        assert model.logscale.shape == (() if logscale == "learned" else (1, 4, 4))
    # means, not sigmoid(logits): 0.5 at logit 0 for the continuous Bernoulli too
    means = model.sample(7)
    assert means.shape == (7, 1, 4, 4) and means.dtype == torch.float32
    if likelihood == "continuous_bernoulli":
        torch.testing.assert_close(decoders.continuous_bernoulli_mean(torch.tensor([0.0, 1e-6, 2.0, -30.0])),
                                   torch.tensor([0.5, 0.5, 0.65654, 1 / 30]), rtol=1e-4, atol=1e-6)
        with pytest.raises(ValueError, match="binary samples"):
            model.sample(2, binary=True)
    # the output bias makes the untrained model predict the average image
    model.init_output_bias(torch.full((16,), 0.3))
    with torch.no_grad():
        for layer in model.decoder:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
    torch.testing.assert_close(model.reconstruct(x), torch.full((5, 1, 4, 4), 0.3, device=device), rtol=1e-4, atol=1e-4)
    assert torch.isfinite(evaluate.log_likelihood(model, x, num_samples=4)).all()


def test_learned_logscale_has_a_floor(device):
    from fastvae import decoders

    model = MLPVAE((4,), hidden=(3,), latent_dim=2, likelihood="gaussian", logscale="per-pixel").to(device)
    with torch.no_grad():
        model.logscale.fill_(-40.0)
    assert (model.output_logscale() == decoders.LOGSCALE_FLOOR).all()
    with pytest.raises(ValueError, match="logscale must be"):
        MLPVAE((4,), likelihood="gaussian", logscale="per-channel")
    with pytest.raises(ValueError, match="likelihood must be one of"):
        MLPVAE((4,), likelihood="laplace")


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli", "gaussian"])
def test_the_encoder_sees_what_the_likelihood_reads(likelihood, device):
    # uint8 is k/255 for the continuous likelihoods (0/1 for the Bernoulli): so for the encoder too
    model = MLPVAE((1, 2, 2), hidden=(4,), latent_dim=2, likelihood=likelihood).to(device)
    top = 2 if likelihood == "bernoulli" else 256
    x = torch.randint(0, top, (3, 1, 2, 2), dtype=torch.uint8, device=device)
    as_float = x.float() / (1 if likelihood == "bernoulli" else 255)
    for a, b in zip(model.encode(x), model.encode(as_float)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("estimator", ["iwae", "dreg"])
def test_iwae_loss_of_a_model(estimator, device):
    torch.manual_seed(0)
    model = MLPVAE((1, 3, 3), hidden=(5,), latent_dim=2, likelihood="gaussian").to(device)
    x = torch.rand(4, 1, 3, 3, device=device)
    terms = model.iwae_loss(x, 3, estimator=estimator, return_terms=True)
    terms.loss.backward()
    mu, logvar = model.encode(x)
    torch.testing.assert_close(terms.kl, reference.gaussian_kl(mu, logvar), **SAME_FLOAT32.kw)
    assert terms.log_likelihood.shape == (4,) and not terms.log_likelihood.requires_grad
    for name, p in model.named_parameters():  # encoder, decoder and the learned logscale all learn
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
