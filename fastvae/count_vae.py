"""``CountVAE``: an scVI-style VAE for count data (cells x genes), on fastvae's fused ops.

As scVI (Lopez et al., 2018) and scvi-tools' ``SCVI`` module with their defaults: the encoder
reads ``log1p(x)`` (and a one-hot batch covariate), hidden layers are Linear -> BatchNorm
(momentum 0.01, eps 0.001) -> ReLU -> Dropout; the decoder maps z (and the covariate) to the
genes' logits, whose softmax times the cell's observed library size (``x.sum(-1)``) is the mean;
the inverse dispersion is a learned parameter per gene (``log_theta``); with the zero-inflated
negative binomial a second head gives the dropout logits. The likelihood is fused with the
softmax (``fastvae.softmax_negative_binomial_log_likelihood``): neither the softmax nor the mean
is ever in memory. ``fused=False`` runs the same model on ``fastvae.reference``.
"""

import math
from typing import NamedTuple, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn, Tensor

from . import likelihoods, reference
from . import ops as fastvae_ops
from ._checks import check_int
from ._layers import activation
from .loss import elbo_loss, ELBOTerms

__all__ = ["CountVAE", "CountVAEOutput"]


class CountVAEOutput(NamedTuple):
    """What ``CountVAE.forward`` returns."""

    logits: Tensor                # (B, G) the genes' logits: mean = library * softmax(logits)
    zero_inflation: Optional[Tensor]  # (B, G) dropout logits (zero-inflated likelihood), else None
    log_library: Tensor           # (B,) log of each cell's observed library size
    mu: Tensor                    # (B, latent_dim)
    logvar: Tensor                # (B, latent_dim)
    z: Tensor                     # (B, latent_dim)
    kl: Tensor                    # (B,) KL(q(z | x) || N(0, I))


def _block(n_in, n_out, dropout, act):
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out, momentum=0.01, eps=0.001), activation(act)(),
            nn.Dropout(dropout)]


class CountVAE(nn.Module):
    """scVI-style VAE for counts (module docstring).

    Args:
        genes: G, genes per cell.
        latent_dim: size of z (scVI: 10).
        hidden: widths of the hidden layers of encoder and decoder (scVI: one of 128).
        likelihood: a count likelihood of the registry: ``"negative_binomial"``,
            ``"zero_inflated_negative_binomial"`` (scVI's default) or ``"poisson"``.
        batches: the number of batches of a one-hot covariate fed to encoder and decoder (0: none).
        dropout: dropout rate of the hidden layers (scVI: 0.1).
        activation: the nonlinearity of the hidden layers, a name of ``fastvae.models.ACTIVATIONS``
            (scVI: ``"relu"``).
        fused, beta: as ``fastvae.models.VAE``.

    Inputs ``x``: (B, G) counts, any integer or float dtype; ``batch``: (B,) int64 batch indices
    when ``batches > 0``.
    """

    def __init__(self, genes: int, latent_dim: int = 10, hidden: Union[int, Sequence[int]] = (128,), *,
                 likelihood: str = likelihoods.COUNT_DEFAULT, batches: int = 0, dropout: float = 0.1,
                 activation: str = "relu", fused: bool = True, beta: float = 1.0):
        super().__init__()
        spec = likelihoods.get(likelihood)
        if not spec.counts:
            raise ValueError(f"CountVAE models counts: likelihood must be one of "
                             f"{', '.join(r.name for r in likelihoods.records() if r.counts)}, got {likelihood!r}")
        self.genes, self.latent_dim = check_int("genes", genes, 1), check_int("latent_dim", latent_dim, 1)
        self.batches = check_int("batches", batches, 0)
        self.hidden = (hidden,) if isinstance(hidden, int) else tuple(check_int("hidden width", h, 1) for h in hidden)
        self.likelihood, self.fused, self.beta = spec.name, bool(fused), float(beta)
        enc, n_in = [], genes + self.batches
        for h in self.hidden:
            enc, n_in = enc + _block(n_in, h, dropout, activation), h
        self.encoder = nn.Sequential(*enc, nn.Linear(n_in, 2 * self.latent_dim))
        dec, n_in = [], self.latent_dim + self.batches
        for h in self.hidden[::-1]:
            dec, n_in = dec + _block(n_in, h, dropout, activation), h
        self.decoder = nn.Sequential(*dec)
        self.logits_head = nn.Linear(n_in, genes)
        args = {n for n, _ in spec.arguments}
        self.zero_inflation_head = nn.Linear(n_in, genes) if self._zero_inflated else None
        self.log_theta = nn.Parameter(torch.randn(genes)) if "log_theta" in args else None

    @property
    def spec(self) -> likelihoods.Likelihood:
        return likelihoods.get(self.likelihood)

    @property
    def input_shape(self) -> tuple:
        """One example's shape: ``(genes,)``."""
        return (self.genes,)

    @property
    def output_bias(self) -> Tensor:
        """The genes' logits' bias (its dtype is the model's)."""
        return self.logits_head.bias

    @property
    def _zero_inflated(self) -> bool:
        return dict(self.spec.arguments).get("zero_inflation_logits") is likelihoods.REQUIRED

    def _covariate(self, batch, n, like):
        if self.batches == 0:
            return None
        if batch is None:
            raise ValueError(f"this model has a batch covariate ({self.batches} batches): pass batch=")
        if batch.shape != (n,):
            raise ValueError(f"batch must be (B,) = ({n},), got {tuple(batch.shape)}")
        return F.one_hot(batch.long(), self.batches).to(like.dtype)

    def _check_input(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a Tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.genes:
            raise ValueError(f"x must be (B, {self.genes}) counts, got {tuple(x.shape)}")
        return x

    def encode(self, x: Tensor, batch: Optional[Tensor] = None):
        """``(mu, logvar)`` of q(z | x), each (B, latent_dim): the encoder on ``log1p(x)``."""
        x = self._check_input(x)
        h = torch.log1p(x.to(self.logits_head.weight.dtype))
        c = self._covariate(batch, x.shape[0], h)
        mu, logvar = self.encoder(h if c is None else torch.cat([h, c], 1)).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: Tensor, batch: Optional[Tensor] = None):
        """``(logits, zero_inflation_logits or None)``, each (B, G)."""
        c = self._covariate(batch, z.shape[0], z)
        h = self.decoder(z if c is None else torch.cat([z, c], 1))
        return self.logits_head(h), (self.zero_inflation_head(h) if self.zero_inflation_head is not None else None)

    @staticmethod
    def log_library(x: Tensor) -> Tensor:
        """log of each cell's observed library size ``x.sum(-1)`` (at least 1), (B,) float32."""
        return torch.log(x.sum(-1, dtype=torch.float32).clamp_min(1.0))

    def forward(self, x: Tensor, batch: Optional[Tensor] = None, eps: Optional[Tensor] = None) -> CountVAEOutput:
        mu, logvar = self.encode(x, batch)
        z, kl = (fastvae_ops if self.fused else reference).reparameterize_kl(mu, logvar, eps=eps)
        logits, zi = self.decode(z, batch)
        return CountVAEOutput(logits, zi, self.log_library(x), mu, logvar, z, kl)

    def likelihood_args(self, out: CountVAEOutput) -> dict:
        """The likelihood's keyword arguments for a forward's output (``elbo_loss`` takes them)."""
        args = {"log_library": out.log_library}
        if self.log_theta is not None:
            args["log_theta"] = self.log_theta
        if out.zero_inflation is not None:
            args["zero_inflation_logits"] = out.zero_inflation
        return args

    def loss(self, x: Tensor, batch: Optional[Tensor] = None, *, beta: Optional[float] = None,
             reduction: str = "mean", return_terms: bool = False, eps: Optional[Tensor] = None,
             validate_args: bool = False):
        """Negative ELBO of x (nats per cell with the mean reduction); as ``VAE.loss``."""
        out = self(x, batch, eps=eps)
        loss_fn = elbo_loss if self.fused else reference.elbo_loss
        return loss_fn(out.logits, x, beta=self.beta if beta is None else beta, reduction=reduction,
                       return_terms=return_terms, kl=out.kl, likelihood=self.likelihood, validate_args=validate_args,
                       **self.likelihood_args(out))

    def iwae_loss(self, x: Tensor, num_samples: int, batch: Optional[Tensor] = None, *, estimator: str = "iwae",
                  reduction: str = "mean", return_terms: bool = False, generator: Optional[torch.Generator] = None):
        """The K-sample importance-weighted loss (``fastvae.iwae_loss``) of x, as ``VAE.iwae_loss``
        (``generator``: for the draws)."""
        lib = fastvae_ops if self.fused else reference
        mu, logvar = self.encode(x, batch)
        z, log_ratio = lib.reparameterize_iw(mu, logvar, num_samples, generator=generator,
                                             path_gradient=estimator == "dreg")
        K, B = log_ratio.shape
        logits, zi = self.decode(z.reshape(K * B, self.latent_dim), None if batch is None else batch.repeat(K))
        args = {"log_library": self.log_library(x)}
        if self.log_theta is not None:
            args["log_theta"] = self.log_theta
        if zi is not None:
            args["zero_inflation_logits"] = zi.view(K, B, self.genes)
        loss = lib.iwae_loss(logits.view(K, B, self.genes), x, log_ratio, likelihood=self.likelihood,
                             z=z if estimator == "dreg" else None, estimator=estimator, reduction=reduction, **args)
        if not return_terms:
            return loss
        with torch.no_grad():
            first = {n: (v.view(K, B, -1)[0] if n == "zero_inflation_logits" else v) for n, v in args.items()}
            ll = self.spec.call(logits.view(K, B, self.genes)[0], x, self.spec.bind(first), fused=self.fused)
            kl = lib.gaussian_kl(mu, logvar)
        return ELBOTerms(loss, ll, kl)

    @torch.no_grad()
    def log_weight_sum(self, x: Tensor, num_samples: int, batch: Optional[Tensor] = None, *,
                       generator: Optional[torch.Generator] = None) -> Tensor:
        """``logsumexp_k log w_k`` over ``num_samples`` fresh draws from q(z | x), (B,) float64:
        what ``fastvae.evaluate.log_likelihood`` averages into the importance-sampled log p(x)."""
        neg = self.iwae_loss(x, num_samples, batch, reduction="none", generator=generator)
        return math.log(num_samples) - neg.double()

    @torch.no_grad()
    def reconstruct(self, x: Tensor, batch: Optional[Tensor] = None) -> Tensor:
        """The mean counts (B, G) float32 decoded from the posterior mean of x."""
        mu, _ = self.encode(x, batch)
        logits, _ = self.decode(mu, batch)
        return torch.softmax(logits.float(), -1) * self.log_library(x).exp()[:, None]

    @torch.no_grad()
    def sample(self, n: int, batch: Optional[Tensor] = None, *, library: Union[float, Tensor] = 1e4,
               generator: Optional[torch.Generator] = None) -> Tensor:
        """n cells from the model: z ~ N(0, I), then the mean counts (n, G) float32 at library
        size ``library`` (a number, or (n,))."""
        check_int("n", n, 1)
        w = self.logits_head.weight
        z = torch.randn(n, self.latent_dim, device=w.device, dtype=w.dtype, generator=generator)
        logits, _ = self.decode(z, batch)
        lib = torch.as_tensor(library, dtype=torch.float32, device=w.device)
        return torch.softmax(logits.float(), -1) * (lib[:, None] if lib.dim() else lib)

    @torch.no_grad()
    def init_output_bias(self, gene_means: Tensor) -> None:
        """Start the genes' logits at ``log`` of the genes' share of the counts, so that the
        untrained model predicts the average expression profile (``gene_means``: (G,), the mean
        counts per gene of the training data)."""
        m = torch.as_tensor(gene_means, dtype=torch.float64).reshape(-1)
        if m.numel() != self.genes:
            raise ValueError(f"gene_means must have {self.genes} values, got {m.numel()}")
        share = (m / m.sum().clamp_min(1e-30)).clamp_min(1e-8)
        self.logits_head.bias.copy_(share.log())
