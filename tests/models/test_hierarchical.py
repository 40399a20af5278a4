"""fastvae.models' top-down hierarchical VAEs: fused against the reference with the same noise,
any number of levels, every likelihood, per-level KL, free bits, the importance-weighted bound
over the whole hierarchy against an exact marginal likelihood."""

import math

import pytest
import torch

from fastvae import evaluate, likelihoods
from fastvae.hierarchical import free_bits_kl, HierarchicalTerms, level_kl
from fastvae.models import HierarchicalConvVAE, HierarchicalMLPVAE

from helpers import SAME_FLOAT32, SAME_FLOAT32_GRAD

ARCHS = [(HierarchicalMLPVAE, (1, 28, 28), {"latent_dims": (3, 5), "hidden": (16, 24)}),
         (HierarchicalMLPVAE, (30,), {"latent_dims": (2, 3, 4, 5), "hidden": 12}),
         (HierarchicalConvVAE, (1, 28, 28), {"latent_channels": (2, 3, 2), "channels": (4, 6)})]
IDS = ["mlp2", "mlp4flat", "conv3"]


def binary(B, shape):
    return (torch.rand(B, *shape) < 0.3).to(torch.uint8)


@pytest.mark.parametrize("cls,shape,kw", ARCHS, ids=IDS)
def test_fused_matches_reference_with_the_same_noise(cls, shape, kw):
    model = cls(shape, **kw)
    x, eps = binary(5, shape), torch.randn(5, model.latent_dim)
    results = []
    for fused in (True, False):
        model.fused = fused
        model.zero_grad()
        terms = model.loss(x, eps=eps, return_terms=True)
        terms.loss.backward()
        results.append((terms, [p.grad.clone() for p in model.parameters()]))
    (a, ga), (b, gb) = results
    assert isinstance(a, HierarchicalTerms) and a.level_kl.shape == (model.num_levels,)
    torch.testing.assert_close(a.loss, b.loss, **SAME_FLOAT32.kw)
    torch.testing.assert_close(a.kl, b.kl, **SAME_FLOAT32.kw)
    torch.testing.assert_close(a.level_kl, b.level_kl, **SAME_FLOAT32.kw)
    for p, q in zip(ga, gb):
        torch.testing.assert_close(p, q, **SAME_FLOAT32_GRAD.kw)


@pytest.mark.parametrize("cls,shape,kw", ARCHS, ids=IDS)
def test_forward_levels_and_their_kl(cls, shape, kw):
    model = cls(shape, **kw)
    x = binary(4, shape)
    out = model(x)
    assert out.logits.shape == (4, *shape) and len(out.z) == len(out.level_kl) == model.num_levels
    for z, s in zip(out.z, model.latent_shapes):
        assert z.shape == (4, *s)
    torch.testing.assert_close(out.kl, sum(out.level_kl))
    assert all((k >= 0).all() for k in out.level_kl)
    # the top level's prior is one learned row, expanded over the batch (no copy)
    pm, _ = model.levels[0].prior(None, 4)
    assert pm.shape == (4, *model.latent_shapes[0]) and pm.stride(0) == 0
    assert model.sample(3).shape == (3, *shape) and model.reconstruct(x).shape == (4, *shape)
    kls = level_kl(model, x)
    assert len(kls) == model.num_levels and all(k >= 0 for k in kls)


def test_the_prior_is_learned_at_every_level():
    model = HierarchicalMLPVAE((1, 28, 28), latent_dims=(3, 5), hidden=(16, 24))
    model.loss(binary(6, (1, 28, 28))).backward()
    assert model.levels[0].prior_params.grad.abs().sum() > 0  # the top's learned constant
    assert model.levels[1].p[-1].weight.grad.abs().sum() > 0  # the level below: predicted from z_0


@pytest.mark.parametrize("name", likelihoods.names())
def test_every_likelihood_of_the_registry(name):
    spec = likelihoods.get(name)
    if spec.counts:  # count matrices are CountVAE's: the hierarchy refuses them when built
        with pytest.raises(ValueError, match="use fastvae.models.CountVAE"):
            HierarchicalMLPVAE((12,), latent_dims=(2, 3), hidden=8, likelihood=name)
        return
    model = HierarchicalMLPVAE((12,), latent_dims=(2, 3), hidden=8, likelihood=name)
    x = binary(4, (12,)) if spec.uint8 == likelihoods.BINARY else torch.rand(4, 12)
    loss = model.loss(x)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(model.iwae_loss(x, 3))


def test_free_bits_floor_each_level_without_changing_the_elbo():
    kls = [torch.tensor([0.1, 0.3], requires_grad=True), torch.tensor([2.0, 4.0], requires_grad=True)]
    total = free_bits_kl(kls, 1.0)
    # level 0 (mean 0.2 < 1): counts as the floor, no gradient; level 1 (mean 3 >= 1): itself
    torch.testing.assert_close(total.mean(), torch.tensor(1.0 + 3.0))
    total.sum().backward()
    assert kls[0].grad is None or torch.equal(kls[0].grad, torch.zeros(2))
    torch.testing.assert_close(kls[1].grad, torch.ones(2))
    model = HierarchicalMLPVAE((1, 28, 28), latent_dims=(3, 5), hidden=(16, 24), free_bits=50.0)
    x, eps = binary(4, (1, 28, 28)), torch.randn(4, model.latent_dim)
    with_fb = model.loss(x, eps=eps, return_terms=True)
    without = model.loss(x, eps=eps, return_terms=True, free_bits=0.0)
    assert with_fb.loss > without.loss  # every level's KL is below 50 nats: the floor counts
    torch.testing.assert_close(with_fb.kl, without.kl)  # the terms are the true ELBO's
    torch.manual_seed(1)
    elbo = evaluate.elbo(model, x)  # the true ELBO, whatever the model's free bits
    torch.manual_seed(1)
    torch.testing.assert_close(elbo, -model.loss(x, reduction="none", free_bits=0.0))


def test_iwae_bound_and_evaluation_over_the_hierarchy():
    torch.manual_seed(0)
    model = HierarchicalMLPVAE((1, 28, 28), latent_dims=(3, 5), hidden=(16, 24))
    x = binary(6, (1, 28, 28))
    terms = model.iwae_loss(x, 4, return_terms=True)
    terms.loss.backward()
    assert terms.level_kl.shape == (2,)
    with pytest.raises(ValueError, match="iwae"):
        model.iwae_loss(x, 4, estimator="dreg")
    ll = evaluate.log_likelihood(model, x, num_samples=64, max_rows=100)  # samples split in chunks
    elbo = evaluate.elbo(model, x)
    assert ll.shape == (6,) and ll.dtype == torch.float64
    assert ll.mean() > elbo.double().mean()  # the bound with 64 samples is above the ELBO on average


class _LinearGaussianLevel(torch.nn.Module):
    """z_0 ~ N(0, 1), z_1 | z_0 ~ N(z_0, 1), decoded x ~ N(z_1, 1) (1-d): log p(x) = log N(x; 0, 3)."""

    def __init__(self, top):
        super().__init__()
        self.top = top

    def prior(self, state, rows):
        zero = torch.zeros(rows, 1, dtype=torch.float64)
        return (zero, zero) if self.top else (state, zero)

    def posterior(self, state, d):  # the exact posteriors, given x (d) and the level above
        if self.top:  # p(z_0 | x) = N(x / 3, 2 / 3)
            return d / 3, torch.full_like(d, math.log(2 / 3))
        return (state + d) / 2, torch.full_like(d, math.log(1 / 2))  # p(z_1 | z_0, x)

    def merge(self, state, z):
        return z


class _Twice(torch.nn.Module):
    def forward(self, x):  # the data itself is each level's bottom-up feature
        return [x, x]


def test_the_bound_is_exact_with_exact_posteriors():
    model = HierarchicalMLPVAE((1,), latent_dims=(1, 1), hidden=2, likelihood="gaussian", logscale=0.0)
    model = model.double()
    model.levels = torch.nn.ModuleList([_LinearGaussianLevel(True), _LinearGaussianLevel(False)])
    model.bottom_up = _Twice()
    model.output = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Unflatten(1, (1,))).double()
    with torch.no_grad():  # the identity, as the last Linear the output bias lives in
        model.output[0].weight.fill_(1.0)
        model.output[0].bias.zero_()
    x = torch.tensor([[0.3], [-1.2], [2.0]], dtype=torch.float64)
    ll = evaluate.log_likelihood(model, x, num_samples=5)
    want = -0.5 * x[:, 0] ** 2 / 3 - 0.5 * math.log(2 * math.pi * 3)  # log N(x; 0, 3)
    torch.testing.assert_close(ll, want, rtol=1e-10, atol=1e-10)  # exact posteriors: every weight is p(x)


def test_bad_settings():
    with pytest.raises(ValueError, match="one per level"):
        HierarchicalMLPVAE(latent_dims=(3, 5), hidden=(16, 24, 8))
    with pytest.raises(ValueError, match="at least one level"):
        HierarchicalMLPVAE(latent_dims=())
    with pytest.raises(ValueError, match="free_bits"):
        HierarchicalMLPVAE(free_bits=-1.0)
    with pytest.raises(ValueError, match="divisible"):
        HierarchicalConvVAE((1, 30, 30))
    model = HierarchicalMLPVAE((1, 28, 28), latent_dims=(3, 5), hidden=8)
    with pytest.raises(ValueError, match=r"eps must be \(B, latent_dim\)"):
        model(binary(2, (1, 28, 28)), eps=torch.zeros(2, 7))
    with pytest.raises(TypeError, match="top-down"):
        model.decode(torch.zeros(2, 8))
