"""Standard VAEs on fastvae's fused ops: an MLP and a convolutional encoder/decoder pair.

Both are ``q(z|x) = N(mu, diag(exp(logvar)))`` from the encoder, ``p(x|z)`` from the decoder
(``likelihood``: any of ``fastvae.likelihoods``: Bernoulli logits (default), continuous
Bernoulli logits, or a Gaussian mean with a fixed or learned logscale; see
``fastvae.decoders``), and a N(0, I) prior. With ``fused=True`` (default) the sample and the KL come
from one ``fastvae.reparameterize_kl`` pass and the objective from ``fastvae.ELBOLoss`` given that
KL; ``fused=False`` runs the same model, same weights, on ``fastvae.reference`` (plain PyTorch),
so the two can be compared. Passing the same ``eps=`` makes them compute the same numbers.
"""

import math
from typing import NamedTuple, Optional, Sequence, Union

import torch
from torch import nn, Tensor

from . import decoders, likelihoods, reference
from . import ops as fastvae_ops
from ._checks import check_int
from ._layers import activation as _activation
from ._layers import ACTIVATIONS
from .count_vae import CountVAE
from .loss import elbo_loss, ELBOTerms
from .ops import reparameterize_kl

__all__ = ["VAEOutput", "VAE", "MLPVAE", "ConvVAE", "CountVAE", "HierarchicalMLPVAE", "HierarchicalConvVAE",
           "ACTIVATIONS", "load"]



class VAEOutput(NamedTuple):
    """What ``VAE.forward`` returns."""

    logits: Tensor  # (B, *input_shape) the decoder's output: logits (Bernoullis), or the Gaussian's mean
    mu: Tensor      # (B, latent_dim)
    logvar: Tensor  # (B, latent_dim)
    z: Tensor       # (B, latent_dim) the reparameterized sample
    kl: Tensor      # (B,) KL(q(z | x) || N(0, I)), float32 (float64 for a float64 model)


def _shape(input_shape):
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    shape = tuple(input_shape)
    if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ValueError(f"input_shape must be positive ints, e.g. (1, 28, 28) or 784; got {input_shape!r}")
    return shape


class VAE(nn.Module):
    """Base class: subclasses build ``self.encoder`` (x -> (B, 2 * latent_dim)) and
    ``self.decoder`` (z -> (B, *input_shape) logits). ``output_bias`` (input_shape) is the
    per-pixel bias of the logits (see ``init_output_bias``): a separate parameter added after
    the decoder (``separate_bias=True``, for decoders whose last layer has no per-pixel bias), or
    a subclass property viewing the decoder's own last bias.

    Inputs ``x``: (B, *input_shape), uint8 (one byte per pixel, the cheapest form: 0/1 for the
    Bernoulli, k/255 for the others), bool, or float; also accepted flat as (B, prod(input_shape)).

    ``likelihood``: a likelihood of the registry (``fastvae.likelihoods``) whose parameters are
    the decoder's output alone: ``"bernoulli"``, ``"continuous_bernoulli"`` or ``"gaussian"``
    (a count likelihood is ``CountVAE``'s; a ValueError here); for the Gaussian, ``logscale``:
    ``"learned"`` (one shared parameter, default), ``"per-pixel"`` (a parameter of input_shape)
    or a number (fixed). A learned logscale is the parameter
    ``self.logscale`` (optimised, checkpointed), used clamped at ``decoders.LOGSCALE_FLOOR``.
    """

    def __init__(self, input_shape, latent_dim: int, fused: bool = True, beta: float = 1.0,
                 separate_bias: bool = True, *, likelihood: str = likelihoods.DEFAULT, logscale="learned"):
        super().__init__()
        self.input_shape = _shape(input_shape)
        self.latent_dim = check_int("latent_dim", latent_dim, 1)
        self.fused = bool(fused)
        self.beta = float(beta)
        self.likelihood = likelihoods.get(likelihood).name
        if self.spec.counts:
            raise ValueError(f"the {self.spec.title} likelihood models count matrices with a per-gene dispersion "
                             "and a cell's library, which this VAE's decoder does not give: use "
                             "fastvae.models.CountVAE")
        self._separate_bias = separate_bias
        if separate_bias:
            self.output_bias = nn.Parameter(torch.zeros(self.input_shape))
        self._fixed_logscale = 0.0
        if self.spec.has_scale:
            setting = decoders.check_logscale_setting(logscale)
            if isinstance(setting, float):
                self._fixed_logscale = setting
            else:
                self.logscale = nn.Parameter(torch.zeros(() if setting == "learned" else self.input_shape))

    @property
    def spec(self) -> likelihoods.Likelihood:
        """The likelihood's registry record (``fastvae.likelihoods``)."""
        return likelihoods.get(self.likelihood)

    def output_logscale(self):
        """The Gaussian's logscale as the likelihood gets it: the number, or the learned
        parameter clamped at ``decoders.LOGSCALE_FLOOR``."""
        ls = getattr(self, "logscale", None)
        return self._fixed_logscale if ls is None else ls.clamp(min=decoders.LOGSCALE_FLOOR)

    # -- pieces
    def _check_input(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a Tensor, got {type(x).__name__}")
        if x.dtype not in (torch.uint8, torch.bool) and not x.is_floating_point():
            raise TypeError(f"x must be uint8, bool or float, got {x.dtype}")
        if tuple(x.shape[1:]) == self.input_shape:
            return x
        if x.dim() == 2 and x.shape[1] == math.prod(self.input_shape):
            return x.reshape(x.shape[0], *self.input_shape)
        raise ValueError(f"x must have shape (B, {', '.join(map(str, self.input_shape))}) or "
                         f"(B, {math.prod(self.input_shape)}), got {tuple(x.shape)}")

    def _input_dtype(self):
        return self.output_bias.dtype

    def encode(self, x: Tensor):
        """``(mu, logvar)``, each (B, latent_dim), of q(z | x). The encoder sees the values the
        likelihood reads: uint8 as 0/1 for the Bernoulli, as k/255 for the others."""
        x = self._check_input(x)
        h = self.encoder(self.spec.targets(x, self._input_dtype()))
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        """The decoder's output (B, *input_shape): logits, or the Gaussian's mean, of p(x | z)."""
        logits = self.decoder(z)
        if not self._separate_bias:
            return logits
        # in logits' dtype: under autocast the decoder gives bfloat16 logits, which stay bfloat16
        return logits + self.output_bias.to(logits.dtype)

    def forward(self, x: Tensor, eps: Optional[Tensor] = None) -> VAEOutput:
        """Encode, draw z (and the KL, in the same pass when fused), decode.

        ``eps`` (B, latent_dim): use this noise instead of drawing it (for comparing the fused
        and reference paths exactly).
        """
        mu, logvar = self.encode(x)
        sample_kl = reparameterize_kl if self.fused else reference.reparameterize_kl
        z, kl = sample_kl(mu, logvar, eps=eps)
        return VAEOutput(self.decode(z), mu, logvar, z, kl)

    def loss(self, x: Tensor, *, beta: Optional[float] = None, reduction: str = "mean",
             return_terms: bool = False, eps: Optional[Tensor] = None, validate_args: bool = False):
        """Negative ELBO of x: ``elbo_loss(..., beta, reduction, return_terms, validate_args)`` on
        ``forward(x)``.

        ``beta`` defaults to the model's ``beta`` (KL warm-up changes it per step).
        Mean reduction: nats per example.
        """
        x = self._check_input(x)
        out = self(x, eps=eps)
        loss_fn = elbo_loss if self.fused else reference.elbo_loss
        beta = self.beta if beta is None else beta
        return loss_fn(out.logits, x, beta=beta, reduction=reduction, return_terms=return_terms, kl=out.kl,
                       likelihood=self.likelihood, logscale=self.output_logscale(), validate_args=validate_args)

    def iwae_loss(self, x: Tensor, num_samples: int, *, estimator: str = "iwae", reduction: str = "mean",
                  return_terms: bool = False):
        """The K-sample importance-weighted loss of x (``fastvae.iwae_loss``, estimator
        ``"iwae"`` or ``"dreg"``): K samples of z per example from one ``reparameterize_iw`` pass,
        decoded as one (K * B) batch. With ``return_terms``, ``ELBOTerms(loss, log_likelihood,
        kl)`` whose two per-row terms (detached, for logging) are the first sample's
        log p(x | z_1) and the closed-form KL: a single-sample ELBO, comparable across objectives.
        """
        x = self._check_input(x)
        lib = fastvae_ops if self.fused else reference
        mu, logvar = self.encode(x)
        z, log_ratio = lib.reparameterize_iw(mu, logvar, num_samples, path_gradient=estimator == "dreg")
        K, B = log_ratio.shape
        recon = self.decode(z.reshape(K * B, self.latent_dim)).view(K, B, *self.input_shape)
        loss = lib.iwae_loss(recon, x, log_ratio, likelihood=self.likelihood, logscale=self.output_logscale(),
                             z=z if estimator == "dreg" else None, estimator=estimator, reduction=reduction)
        if not return_terms:
            return loss
        with torch.no_grad():
            ll = self.log_likelihood(recon[0], x)
            kl = lib.gaussian_kl(mu, logvar)
        return ELBOTerms(loss, ll, kl)

    def log_likelihood(self, out: Tensor, x: Tensor) -> Tensor:
        """log p(x | z) per row for decoder outputs ``out`` (B, *input_shape), fused or not."""
        spec = self.spec
        fn = spec.fused if self.fused else spec.reference
        return fn(out, x, self.output_logscale()) if spec.has_scale else fn(out, x)

    @torch.no_grad()
    def sample(self, n: int, *, generator: Optional[torch.Generator] = None, binary: bool = False) -> Tensor:
        """n draws from the model: z ~ N(0, I), then the mean of p(x | z) (B, *input_shape)
        float32 (the Bernoulli's probabilities; the continuous Bernoulli's and the Gaussian's
        means), or, for the Bernoulli with ``binary``, draws of it (uint8 0/1)."""
        check_int("n", n, 1)
        if binary and self.spec.uint8 != likelihoods.BINARY:
            raise ValueError(f"binary samples are for a likelihood of 0/1 data, not {self.likelihood!r}")
        p = self.output_bias
        z = torch.randn(n, self.latent_dim, device=p.device, dtype=p.dtype, generator=generator)
        mean = self.spec.mean(self.decode(z))
        if binary:
            return (torch.rand(mean.shape, device=p.device, generator=generator) < mean).to(torch.uint8)
        return mean

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """The mean of p(x | z) (B, *input_shape), float32, decoded from the posterior mean of x."""
        mu, _ = self.encode(x)
        return self.spec.mean(self.decode(mu))

    @torch.no_grad()
    def init_output_bias(self, pixel_means: Union[Tensor, float], eps: float = 1e-3) -> None:
        """Set the decoder's output bias so that the untrained model predicts the average image:
        ``logit(mean)`` for the Bernoulli (means clamped to [eps, 1 - eps]), the logit with that
        mean for the continuous Bernoulli, the mean for the Gaussian; worth about a nat at the end
        of training on MNIST. ``pixel_means`` (of the training data, in [0, 1]): input_shape or flat."""
        m = torch.as_tensor(pixel_means, dtype=torch.float64)
        if m.dim() != 0 and m.numel() != self.output_bias.numel():
            raise ValueError(f"pixel_means must have {self.output_bias.numel()} values "
                             f"(input_shape {self.input_shape}), got shape {tuple(m.shape)}")
        bias = self.spec.output_bias(m, eps)
        self.output_bias.copy_(bias.reshape(self.output_bias.shape if m.dim() else ()))


class MLPVAE(VAE):
    """Fully connected VAE: ``D -> hidden... -> 2 * latent`` and ``latent -> reversed(hidden) -> D``.

    ``MLPVAE(784, hidden=(400,), latent_dim=40)`` is the literature's one-hidden-layer model.
    ``hidden``: a sequence of widths (or one int); ``activation``: one of ``ACTIVATIONS``.
    """

    def __init__(self, input_shape=(1, 28, 28), hidden: Union[int, Sequence[int]] = (400,),
                 latent_dim: int = 40, activation: str = "relu", fused: bool = True, beta: float = 1.0, *,
                 likelihood: str = likelihoods.DEFAULT, logscale="learned"):
        # the last Linear's bias is the per-pixel output bias: added inside its matmul, so no
        # extra pass over the (B, D) logits forward or backward
        super().__init__(input_shape, latent_dim, fused, beta, separate_bias=False, likelihood=likelihood,
                         logscale=logscale)
        hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
        for h in hidden:
            check_int("hidden width", h, 1)
        act = _activation(activation)
        D = math.prod(self.input_shape)

        def mlp(sizes):
            layers = []
            for a, b in zip(sizes[:-1], sizes[1:]):
                layers += [nn.Linear(a, b), act()]
            return layers[:-1]

        self.hidden = hidden
        self.encoder = nn.Sequential(nn.Flatten(), *mlp((D, *hidden, 2 * self.latent_dim)))
        self.decoder = nn.Sequential(*mlp((self.latent_dim, *hidden[::-1], D)),
                                     nn.Unflatten(1, self.input_shape))

    @property
    def output_bias(self) -> Tensor:
        """The decoder's last Linear bias, viewed as input_shape."""
        return self.decoder[-2].bias.view(self.input_shape)


def conv_channels_for(input_shape) -> tuple:
    """ConvVAE's default channels for images of ``input_shape`` (C, H, W): (32, 64) up to 32
    pixels, else (32, 32, 64, 64)."""
    return (32, 64) if max(input_shape[-2:]) <= 32 else (32, 32, 64, 64)


class ConvVAE(VAE):
    """Convolutional VAE for images (C, H, W), e.g. 1x28x28 or 3x64x64.

    Encoder: ``len(channels)`` 4x4 stride-2 convolutions (each halves H and W), then a linear
    layer to 2 * latent; the decoder mirrors it with transposed convolutions. H and W must be
    divisible by ``2 ** len(channels)``. Default channels: (32, 64) up to 32 pixels, else
    (32, 32, 64, 64).
    """

    def __init__(self, input_shape=(1, 28, 28), latent_dim: int = 32,
                 channels: Optional[Sequence[int]] = None, activation: str = "relu",
                 fused: bool = True, beta: float = 1.0, *, likelihood: str = likelihoods.DEFAULT,
                 logscale="learned"):
        super().__init__(input_shape, latent_dim, fused, beta, likelihood=likelihood, logscale=logscale)
        if len(self.input_shape) != 3:
            raise ValueError(f"ConvVAE needs input_shape (C, H, W), got {self.input_shape}")
        C, H, W = self.input_shape
        if channels is None:
            channels = conv_channels_for(self.input_shape)
        channels = tuple(check_int("channels", c, 1) for c in channels)
        if not channels:
            raise ValueError("channels must not be empty")
        k = 2 ** len(channels)
        if H % k or W % k:
            raise ValueError(f"ConvVAE with {len(channels)} stride-2 layers needs H and W divisible "
                             f"by {k}, got {H}x{W}")
        act = _activation(activation)
        h, w = H // k, W // k
        enc, c_in = [], C
        for c in channels:
            enc += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), act()]
            c_in = c
        self.channels = channels
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(c_in * h * w, 2 * self.latent_dim))
        dec = [nn.Linear(self.latent_dim, c_in * h * w), act(), nn.Unflatten(1, (c_in, h, w))]
        for c in channels[-2::-1]:
            dec += [nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1), act()]
            c_in = c
        dec.append(nn.ConvTranspose2d(c_in, C, 4, stride=2, padding=1, bias=False))
        self.decoder = nn.Sequential(*dec)


def load(path, map_location=None) -> VAE:
    """The trained model in the ``checkpoint.pt`` at ``path`` (written by ``python -m
    fastvae.train``), in eval mode: any architecture and likelihood the command trains, learned
    logscales included. ``map_location`` as ``torch.load`` takes it (e.g. ``"cpu"``); None: where
    it was saved, or the CPU where that device is missing. A damaged file or one of an unknown
    format version is a ValueError (``fastvae.saved``)::

        model = fastvae.models.load("runs/quick/checkpoint.pt")
        images = model.sample(16)            # (16, *model.input_shape) float32 means
    """
    from .saved import load_model  # the builder imports this module

    return load_model(path, map_location)


# the top-down hierarchical VAEs build on VAE above (their own modules: fastvae/hierarchical*.py)
from .hierarchical_nets import HierarchicalConvVAE, HierarchicalMLPVAE  # noqa: E402
