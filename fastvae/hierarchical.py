"""Top-down hierarchical VAEs on the fused sample + KL with a learned prior (Ladder VAE, IAF-VAE,
NVAE and VDVAE share this form).

Levels are numbered top-down, in the order they are sampled: level 0 is the top. A bottom-up
deterministic path turns x into one feature ``d_l`` per level; the top-down path starts from a
learned state and, at each level l,

* predicts the prior ``p(z_l | z_<l) = N(prior_mu, exp(prior_logvar))`` from its state (the top
  level's prior is a learned constant, used as an expanded view of one row),
* combines its state with ``d_l`` into the posterior ``q(z_l | x, z_<l) = N(mu, exp(logvar))``,
* draws z_l from the posterior with ``fastvae.reparameterize_kl(mu, logvar, prior_mu=...,
  prior_logvar=...)`` (one fused pass: z and the level's KL), and
* merges z_l into its state for the next level; the last state is decoded into p(x | z).

The ELBO is ``log p(x | z) - sum_l KL_l`` (every KL analytic, given the levels above);
``free_bits`` floors each level's batch-mean KL in the optimised loss (Kingma et al., 2016). The
importance-weighted bound draws K samples at the top (``reparameterize_iw``) and one per
(sample, example) row below (``reparameterize_iw(..., 1, prior_mu=..., prior_logvar=...)``), so
each row's log ratio is the sum over the levels: what ``fastvae.evaluate.log_likelihood`` uses
for the test NLL. The networks (an MLP and a convolutional version) are in ``hierarchical_nets``.
"""

import math
from typing import List, NamedTuple, Optional

import torch
from torch import Tensor

from . import likelihoods, reference
from . import ops as fastvae_ops
from ._checks import check_int
from .loss import elbo_loss
from .models import VAE

__all__ = ["HierarchicalOutput", "HierarchicalTerms", "HierarchicalVAE", "free_bits_kl", "level_kl"]


class HierarchicalOutput(NamedTuple):
    """What ``HierarchicalVAE.forward`` returns."""

    logits: Tensor          # (B, *input_shape) the decoder's output
    z: List[Tensor]         # per level, top first: (B, *latent_shape_l)
    kl: Tensor              # (B,) the sum of the levels' KL, float32 (float64 for a float64 model)
    level_kl: List[Tensor]  # per level, top first: (B,) KL(q(z_l | x, z_<l) || p(z_l | z_<l))


class HierarchicalTerms(NamedTuple):
    """``ELBOTerms`` with the levels' KL: ``loss`` (reduced as asked), the per-row
    ``log_likelihood`` and ``kl`` (B,) (the true ones, whatever free bits did to the loss) and
    ``level_kl`` (levels,) float32, each level's KL averaged over the batch (detached)."""

    loss: Tensor
    log_likelihood: Tensor
    kl: Tensor
    level_kl: Tensor


def free_bits_kl(level_kl: List[Tensor], free_bits: float) -> Tensor:
    """The KL term of the optimised loss (B,): the sum over levels, each level's batch mean
    floored at ``free_bits`` nats. Where a level's mean is below the floor its rows count as the
    floor (shifted to average to it) and pass no gradient; no host sync."""
    total = 0
    for kl in level_kl:
        if free_bits > 0:
            mean = kl.mean()
            kl = torch.where(mean >= free_bits, kl, (kl - mean + free_bits).detach())
        total = total + kl
    return total


def _rows_of(t: Tensor, K: int) -> Tensor:
    """(B, ...) -> (K * B, ...): row k * B + b holds row b (sample-major, as ``reparameterize_iw``)."""
    return t.unsqueeze(0).expand(K, *t.shape).reshape(K * t.shape[0], *t.shape[1:])


class HierarchicalVAE(VAE):
    """Base class of the top-down hierarchical VAEs (see the module docstring).

    A subclass builds ``self.bottom_up`` (x -> list of per-level features, top first),
    ``self.levels`` (an ``nn.ModuleList`` of levels, top first, each with ``prior(state, rows)
    -> (prior_mu, prior_logvar)``, ``posterior(state, d) -> (mu, logvar)`` and ``merge(state, z)
    -> state``; the top level's state is None), ``self.output`` (last state -> the decoder's
    output) and sets ``self.latent_shapes`` (one shape per level). ``latent_dim`` is the total
    number of latent values, the width of a flat ``eps`` (B, latent_dim) that ``forward`` and
    ``loss`` take in place of drawn noise (split over the levels, top first).

    ``free_bits``: nats per level; the optimised loss floors each level's batch-mean KL there.
    """

    def __init__(self, input_shape, latent_shapes, fused=True, beta=1.0, separate_bias=True, *,
                 likelihood=likelihoods.DEFAULT, logscale="learned", free_bits=0.0):
        shapes = [tuple(s) for s in latent_shapes]
        if not shapes:
            raise ValueError("a hierarchical VAE needs at least one level")
        sizes = [int(torch.Size(s).numel()) for s in shapes]
        super().__init__(input_shape, sum(sizes), fused, beta, separate_bias, likelihood=likelihood,
                         logscale=logscale)
        self.latent_shapes, self._sizes = shapes, sizes
        self.free_bits = float(free_bits)
        if not self.free_bits >= 0:
            raise ValueError(f"free_bits must be a number >= 0, got {free_bits!r}")

    @property
    def num_levels(self) -> int:
        return len(self.latent_shapes)

    def _lib(self):
        return fastvae_ops if self.fused else reference

    def _features(self, x: Tensor) -> List[Tensor]:
        return self.bottom_up(self.spec.targets(x, self._input_dtype()))

    def _split_eps(self, eps: Optional[Tensor], B: int):
        if eps is None:
            return [None] * self.num_levels
        if tuple(eps.shape) != (B, self.latent_dim):
            raise ValueError(f"eps must be (B, latent_dim) = {(B, self.latent_dim)}, the levels' noise side by "
                             f"side (top first), got {tuple(eps.shape)}")
        return [e.reshape(B, *s) for e, s in zip(eps.split(self._sizes, 1), self.latent_shapes)]

    def forward(self, x: Tensor, eps: Optional[Tensor] = None) -> HierarchicalOutput:
        """Bottom-up, then top-down: at each level the prior, the posterior, and z with its KL
        from one fused ``reparameterize_kl``; then the decoder. ``eps`` (B, latent_dim): the
        levels' noise instead of drawing it (comparisons of the fused and reference paths)."""
        x = self._check_input(x)
        feats, lib = self._features(x), self._lib()
        B = x.shape[0]
        state, zs, kls = None, [], []
        for level, d, e in zip(self.levels, feats, self._split_eps(eps, B)):
            pm, plv = level.prior(state, B)
            mu, logvar = level.posterior(state, d)
            z, kl = lib.reparameterize_kl(mu, logvar, prior_mu=pm.to(mu.dtype), prior_logvar=plv.to(mu.dtype), eps=e)
            state = level.merge(state, z)
            zs.append(z)
            kls.append(kl)
        return HierarchicalOutput(self._out(state), zs, sum(kls), kls)

    def _out(self, state):
        # the decoder's output from the last state, with the separate output bias where there is one
        out = self.output(state)
        return out + self.output_bias.to(out.dtype) if self._separate_bias else out

    def decode(self, z):
        raise TypeError("a hierarchical VAE decodes through its top-down path: use forward, sample or reconstruct")

    def encode(self, x):
        raise TypeError("a hierarchical VAE has a posterior per level given the levels above: use forward")

    def loss(self, x: Tensor, *, beta: Optional[float] = None, reduction: str = "mean", return_terms: bool = False,
             eps: Optional[Tensor] = None, validate_args: bool = False, free_bits: Optional[float] = None):
        """Negative ELBO of x, ``-(log p(x | z) - beta * sum_l KL_l)`` with each KL_l floored by
        free bits (``free_bits``, default the model's) in the loss; nats per example for the
        mean. ``return_terms``: ``HierarchicalTerms`` (the true per-row log-likelihood and KL)."""
        x = self._check_input(x)
        out = self(x, eps=eps)
        fb = self.free_bits if free_bits is None else float(free_bits)
        kl_loss = free_bits_kl(out.level_kl, fb) if fb > 0 else out.kl
        loss_fn = elbo_loss if self.fused else reference.elbo_loss
        terms = loss_fn(out.logits, x, beta=self.beta if beta is None else beta, reduction=reduction,
                        return_terms=True, kl=kl_loss, likelihood=self.likelihood, logscale=self.output_logscale(),
                        validate_args=validate_args)
        if not return_terms:
            return terms.loss
        return HierarchicalTerms(terms.loss, terms.log_likelihood, out.kl, _means(out.level_kl))

    def _top_down_iw(self, feats: List[Tensor], K: int, generator=None):
        """The top-down pass with K samples per example: returns the decoder's output (K * B, ...),
        the log ratios summed over the levels (K, B), and the per-level KL of sample 0 (B,)."""
        lib, B = self._lib(), feats[0].shape[0]
        state, log_ratio, kls = None, 0, []
        for i, (level, d) in enumerate(zip(self.levels, feats)):
            rows = B if i == 0 else K * B
            pm, plv = level.prior(state, rows)
            mu, logvar = level.posterior(state, d if i == 0 else _rows_of(d, K))
            pm, plv = pm.to(mu.dtype), plv.to(mu.dtype)
            z, lr = lib.reparameterize_iw(mu, logvar, K if i == 0 else 1, prior_mu=pm, prior_logvar=plv,
                                          generator=generator)
            with torch.no_grad():  # the first sample's analytic KL, for logging
                kls.append(lib.gaussian_kl(mu[:B], logvar[:B], pm[:B], plv[:B]))
            state = level.merge(state, z.reshape(K * B, *z.shape[2:]))
            log_ratio = log_ratio + lr.reshape(K, B)
        return self._out(state), log_ratio, kls

    def iwae_loss(self, x: Tensor, num_samples: int, *, estimator: str = "iwae", reduction: str = "mean",
                  return_terms: bool = False):
        """The K-sample importance-weighted loss over the whole hierarchy (``fastvae.iwae_loss``
        on the log ratios summed over the levels). ``return_terms``: ``HierarchicalTerms`` of the
        first sample (its log p(x | z) and analytic KL, detached): a single-sample ELBO."""
        if estimator != "iwae":
            raise ValueError(f"a hierarchical VAE trains with estimator='iwae' (or the ELBO), not {estimator!r}: "
                             "DReG's weights would also reach the learned priors, which need the IWAE ones")
        x = self._check_input(x)
        K = check_int("num_samples", num_samples, 1)
        recon, log_ratio, kls = self._top_down_iw(self._features(x), K)
        recon = recon.view(K, x.shape[0], *self.input_shape)
        loss = self._lib().iwae_loss(recon, x, log_ratio, likelihood=self.likelihood,
                                     logscale=self.output_logscale(), reduction=reduction)
        if not return_terms:
            return loss
        with torch.no_grad():
            ll = self.log_likelihood(recon[0], x)
        return HierarchicalTerms(loss, ll, sum(kls), _means(kls))

    @torch.no_grad()
    def log_weight_sum(self, x: Tensor, num_samples: int, *, generator=None) -> Tensor:
        """(B,) float64 ``logsumexp_k log w_k`` of K fresh samples per example, ``log w_k = log
        p(x, z_k) - log q(z_k | x)`` over the whole hierarchy (every level's sampled log ratio),
        through ``iwae_loss`` (the targets read once for all K): what
        ``fastvae.evaluate.log_likelihood`` combines into the importance-sampled log p(x)."""
        x = self._check_input(x)
        K = check_int("num_samples", num_samples, 1)
        recon, log_ratio, _ = self._top_down_iw(self._features(x), K, generator)
        recon = recon.view(K, x.shape[0], *self.input_shape)
        neg = self._lib().iwae_loss(recon, x, log_ratio, likelihood=self.likelihood, logscale=self.output_logscale(),
                                    reduction="none")
        return math.log(K) - neg.double()

    @torch.no_grad()
    def sample(self, n: int, *, generator: Optional[torch.Generator] = None, binary: bool = False) -> Tensor:
        """n draws from the model: each level's z from its prior, top first, then the mean of
        p(x | z) (n, *input_shape) float32, or for a binary likelihood with ``binary`` draws of
        it (uint8 0/1)."""
        check_int("n", n, 1)
        if binary and self.spec.uint8 != likelihoods.BINARY:
            raise ValueError(f"binary samples are for a likelihood of 0/1 data, not {self.likelihood!r}")
        state = None
        for level in self.levels:
            pm, plv = level.prior(state, n)
            eps = torch.randn(pm.shape, device=pm.device, dtype=pm.dtype, generator=generator)
            state = level.merge(state, pm + torch.exp(0.5 * plv) * eps)
        mean = self.spec.mean(self._out(state))
        if binary:
            return (torch.rand(mean.shape, device=mean.device, generator=generator) < mean).to(torch.uint8)
        return mean

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """The mean of p(x | z) (B, *input_shape), float32, with every level's z at its posterior mean."""
        x = self._check_input(x)
        state = None
        for level, d in zip(self.levels, self._features(x)):
            mu, _ = level.posterior(state, d)
            state = level.merge(state, mu)
        return self.spec.mean(self._out(state))


def _means(kls: List[Tensor]) -> Tensor:
    return torch.stack([k.detach().float().mean() for k in kls])


@torch.no_grad()
def level_kl(model: HierarchicalVAE, data: Tensor, batch_size: int = 4096) -> List[float]:
    """Each level's KL averaged over the examples of ``data`` (N, ...), top first (one sample of
    the levels above per example)."""
    was = model.training
    model.eval()
    try:
        sums = sum(torch.stack([k.double().sum() for k in model(x).level_kl]) for x in data.split(batch_size))
    finally:
        model.train(was)
    return (sums / data.shape[0]).tolist()
