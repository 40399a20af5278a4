"""The VAEs on the discretized logistic mixture: a conv decoder head of 10 M (RGB) or 3 M (grey)
channels per pixel, the fused model against its reference twin, the output bias, the mixture's
mean for samples and reconstructions, the importance-weighted bound, bad settings."""

import pytest
import torch

from fastvae import _mixture, evaluate, likelihoods
from fastvae.models import ConvVAE, MLPVAE

NAME = likelihoods.get("discretized_logistic_mixture").name


def _levels(B, shape, bits=8):
    return torch.randint(0, 2**bits, (B, *shape), dtype=torch.uint8)


@pytest.mark.parametrize("cls,shape,kw", [(ConvVAE, (3, 28, 28), {"channels": (4, 8)}),
                                          (MLPVAE, (1, 28, 28), {"hidden": (16,)})], ids=["conv-rgb", "mlp-grey"])
def test_the_head_outputs_the_mixture_and_fused_matches_reference(cls, shape, kw):
    model = cls(shape, latent_dim=6, likelihood=NAME, num_mixtures=3, **kw)
    K = 30 if shape[0] == 3 else 9
    assert model.output_shape == (K, *shape[1:]) and model.likelihood_settings["num_mixtures"] == 3
    x, eps = _levels(5, shape), torch.randn(5, 6)
    model.init_output_bias(x.double().mean(0) / 255)
    assert model.decode(torch.zeros(2, 6)).shape == (2, K, *shape[1:])
    grads = []
    for fused in (True, False):
        model.fused = fused
        model.zero_grad()
        loss = model.loss(x, eps=eps)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (a, ga), (b, gb) = grads
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-3)
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-5 * max(1.0, v.abs().max().item()))


def test_output_bias_predicts_the_pixel_means_and_samples_are_images():
    model = ConvVAE((3, 28, 28), latent_dim=4, channels=(4, 8), likelihood=NAME, num_mixtures=2, bits=5)
    means = torch.rand(3, 28, 28, dtype=torch.float64) * 0.8 + 0.1
    model.init_output_bias(means)
    logits, mu, raw, coefficients = _mixture.parts(model.output_bias[None].detach(), 2, 1)
    assert (logits == 0).all() and (coefficients == 0).all()
    torch.testing.assert_close(raw, torch.full_like(raw, torch.log(torch.tensor(2.0 / 31)).item()))
    torch.testing.assert_close(_mixture.mean(model.output_bias[None].detach(), 2)[0].double(), means, rtol=0,
                               atol=1e-6)
    with torch.no_grad():  # the decoder's own contribution off: the model predicts the means
        model.decoder[-1].weight.zero_()
    torch.testing.assert_close(model.sample(2)[0].double(), means, rtol=0, atol=1e-6)
    x = _levels(3, (3, 28, 28), bits=5)
    r = model.reconstruct(x)
    assert r.shape == x.shape and r.dtype == torch.float32 and 0 <= r.min() and r.max() <= 1
    model.init_output_bias(0.5)  # one mean for every pixel
    assert model.output_bias[2].abs().max() < 1e-6  # the means of 0.5: 0 in [-1, 1]


def test_importance_weighted_bound_and_evaluation():
    model = ConvVAE((1, 28, 28), latent_dim=4, channels=(4, 8), likelihood=NAME, num_mixtures=2, bits=1)
    x = _levels(6, (1, 28, 28), bits=1)
    model.init_output_bias(x.double().mean(0))
    elbo = evaluate.elbo(model, x)
    ll = evaluate.log_likelihood(model, x, num_samples=8)
    assert torch.isfinite(ll).all() and ll.shape == (6,)
    assert ll.mean() > elbo.double().mean() - 5  # a K-sample bound, near or above the ELBO
    loss = model.iwae_loss(x, 3, estimator="dreg")
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_bad_settings():
    with pytest.raises(TypeError, match="needs num_mixtures"):
        ConvVAE((3, 28, 28), likelihood=NAME)
    with pytest.raises(TypeError, match="takes no settings, got num_mixtures"):
        ConvVAE((3, 28, 28), num_mixtures=3)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        ConvVAE((2, 28, 28), likelihood=NAME, num_mixtures=3)
    with pytest.raises(ValueError, match="1 or 3 channels along dim -1"):  # conv images have their channels at 1
        ConvVAE((3, 28, 28), likelihood=NAME, num_mixtures=3, dim=-1)
    with pytest.raises(ValueError, match="bits must be in 1..8"):
        MLPVAE((1, 28, 28), likelihood=NAME, num_mixtures=3, bits=12)
