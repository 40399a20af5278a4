"""The networks of the top-down hierarchical VAEs (``fastvae.hierarchical``): an MLP version for
flat data and a convolutional one for images.

Each level has the three parts ``HierarchicalVAE`` calls, top first: ``prior(state, rows)``,
``posterior(state, d)`` and ``merge(state, z)``; a level's Gaussian parameters come out of one
layer as ``(B, 2 * latent)`` (channels for the conv version) and are split into (mu, logvar)
views, which the fused ops read through their strides. The top level's prior is a learned
constant row, expanded over the batch (a view, never copied).
"""

import math
from typing import Optional, Sequence, Union

import torch
from torch import nn

from . import likelihoods
from ._checks import check_int
from ._layers import activation as _activation
from .hierarchical import HierarchicalVAE

__all__ = ["HierarchicalMLPVAE", "HierarchicalConvVAE", "resolve_config", "build_from_config"]

NETS = ("mlp", "conv")
DEFAULT_LATENTS = {"mlp": (16, 32), "conv": (8, 8)}  # top first
DEFAULT_HIDDEN = (256, 512)
DEFAULT_CHANNELS = (32, 64)


def _per_level(name, values, levels):
    values = (values,) if isinstance(values, int) else tuple(values)
    if len(values) == 1:
        values = values * levels
    if len(values) != levels:
        raise ValueError(f"{name} must give one value, or one per level ({levels}), got {len(values)}")
    return tuple(check_int(name, v, 1) for v in values)


def _gaussian(params):
    """(B, 2 * n, ...) -> (mu, logvar), views of the two halves along dim 1."""
    return params.chunk(2, dim=1)


class _MLPLevel(nn.Module):
    """One level of the MLP hierarchy: state width ``above`` (None at the top), bottom-up feature
    width ``feat``, hidden width ``width``, ``latent`` values."""

    def __init__(self, above: Optional[int], feat: int, width: int, latent: int, act):
        super().__init__()
        if above is None:
            self.prior_params = nn.Parameter(torch.zeros(1, 2 * latent))
        else:
            self.p = nn.Sequential(nn.Linear(above, width), act(), nn.Linear(width, 2 * latent))
        self.q = nn.Sequential(nn.Linear(feat + (above or 0), width), act(), nn.Linear(width, 2 * latent))
        self.m = nn.Sequential(nn.Linear(latent + (above or 0), width), act())

    def prior(self, state, rows):
        if state is None:
            return _gaussian(self.prior_params.expand(rows, -1))
        return _gaussian(self.p(state))

    def posterior(self, state, d):
        return _gaussian(self.q(d if state is None else torch.cat([state, d], 1)))

    def merge(self, state, z):
        return self.m(z if state is None else torch.cat([state, z], 1))


class _MLPBottomUp(nn.Module):
    def __init__(self, D, widths, act):
        super().__init__()
        blocks, n_in = [], D
        for w in reversed(widths):  # from the data up: the bottom level's feature first
            blocks.append(nn.Sequential(nn.Linear(n_in, w), act(), nn.Linear(w, w), act()))
            n_in = w
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        h, feats = x.flatten(1), []
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        return feats[::-1]  # top first


class HierarchicalMLPVAE(HierarchicalVAE):
    """Top-down hierarchical MLP VAE for flat data (or images, flattened).

    ``latent_dims``: the latent size of each level, top first (``len(latent_dims)`` levels);
    ``hidden``: the width of each level's blocks, top first (one int for all levels). The
    bottom-up path has two layers per level (the data up to the bottom level's width, then each
    level's to the next); each level's prior and posterior are one hidden layer each, its merge
    one layer; the output is one hidden layer of the bottom width, then the data's size (its
    bias is the output bias).

    ``HierarchicalMLPVAE((1, 28, 28), latent_dims=(16, 32), hidden=(256, 512))``: two levels.
    """

    def __init__(self, input_shape=(1, 28, 28), latent_dims: Sequence[int] = DEFAULT_LATENTS["mlp"],
                 hidden: Union[int, Sequence[int]] = DEFAULT_HIDDEN, activation: str = "relu", fused: bool = True,
                 beta: float = 1.0, *, likelihood: str = likelihoods.DEFAULT, logscale="learned",
                 free_bits: float = 0.0):
        dims = tuple(check_int("latent dim", v, 1) for v in latent_dims)
        super().__init__(input_shape, [(d,) for d in dims], fused, beta, separate_bias=False,
                         likelihood=likelihood, logscale=logscale, free_bits=free_bits)
        widths = _per_level("hidden", hidden, len(dims))
        act = _activation(activation)
        D = math.prod(self.input_shape)
        self.hidden = widths
        self.bottom_up = _MLPBottomUp(D, widths, act)
        self.levels = nn.ModuleList(_MLPLevel(widths[i - 1] if i else None, widths[i], widths[i], dims[i], act)
                                    for i in range(len(dims)))
        self.output = nn.Sequential(nn.Linear(widths[-1], widths[-1]), act(), nn.Linear(widths[-1], D),
                                    nn.Unflatten(1, self.input_shape))

    @property
    def output_bias(self):
        """The output layer's bias, viewed as input_shape."""
        return self.output[-2].bias.view(self.input_shape)


# --------------------------------------------------------------------------- the conv version

class _Residual(nn.Module):
    """``h + conv3x3(act(conv3x3(act(h))))`` at constant width."""

    def __init__(self, width, act):
        super().__init__()
        self.f = nn.Sequential(act(), nn.Conv2d(width, width, 3, padding=1), act(),
                               nn.Conv2d(width, width, 3, padding=1))

    def forward(self, h):
        return h + self.f(h)


class _ConvLevel(nn.Module):
    """One level of the conv hierarchy: state and features ``width`` channels at (h, w),
    ``latent`` channels of z."""

    def __init__(self, top: bool, width: int, latent: int, hw, act):
        super().__init__()
        if top:
            self.prior_params = nn.Parameter(torch.zeros(1, 2 * latent, *hw))
            self.start = nn.Parameter(torch.zeros(1, width, *hw))
        else:
            self.p = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), act(), nn.Conv2d(width, 2 * latent, 1))
        self.q = nn.Sequential(nn.Conv2d(width * (1 if top else 2), width, 3, padding=1), act(),
                               nn.Conv2d(width, 2 * latent, 1))
        self.z_in = nn.Conv2d(latent, width, 1)
        self.block = _Residual(width, act)

    def prior(self, state, rows):
        if state is None:
            return _gaussian(self.prior_params.expand(rows, *self.prior_params.shape[1:]))
        return _gaussian(self.p(state))

    def posterior(self, state, d):
        return _gaussian(self.q(d if state is None else torch.cat([state, d], 1)))

    def merge(self, state, z):
        base = self.start if state is None else state
        return self.block(base + self.z_in(z))


class HierarchicalConvVAE(HierarchicalVAE):
    """Top-down hierarchical convolutional VAE for images (C, H, W).

    A stem of 4x4 stride-2 convolutions (``channels``, default (32, 64)) takes the image to
    (width, H / 2**n, W / 2**n), width = ``channels[-1]``; every level works at that resolution
    with ``latent_channels[l]`` channels of z (top first; the number of entries is the number of
    levels): a residual block per level on the bottom-up path, a 3x3 prior and posterior, and a
    residual block after merging z. Transposed convolutions mirror the stem to the output.
    """

    def __init__(self, input_shape=(1, 28, 28), latent_channels: Sequence[int] = DEFAULT_LATENTS["conv"],
                 channels: Optional[Sequence[int]] = None, activation: str = "relu", fused: bool = True,
                 beta: float = 1.0, *, likelihood: str = likelihoods.DEFAULT, logscale="learned",
                 free_bits: float = 0.0):
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(f"HierarchicalConvVAE needs input_shape (C, H, W), got {shape}")
        channels = tuple(check_int("channels", c, 1) for c in (channels or DEFAULT_CHANNELS))
        C, H, W = shape
        k = 2 ** len(channels)
        if not channels or H % k or W % k:
            raise ValueError(f"HierarchicalConvVAE with {len(channels)} stride-2 layers needs H and W divisible by "
                             f"{k}, got {H}x{W}")
        hw = (H // k, W // k)
        zc = tuple(check_int("latent channels", c, 1) for c in latent_channels)
        super().__init__(shape, [(c, *hw) for c in zc], fused, beta, likelihood=likelihood, logscale=logscale,
                         free_bits=free_bits)
        act, width = _activation(activation), channels[-1]
        self.channels = channels
        stem, c_in = [], C
        for c in channels:
            stem += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), act()]
            c_in = c
        self.stem = nn.Sequential(*stem)
        self.up_blocks = nn.ModuleList(_Residual(width, act) for _ in zc)
        self.levels = nn.ModuleList(_ConvLevel(i == 0, width, c, hw, act) for i, c in enumerate(zc))
        out = [act()]
        for c in channels[-2::-1]:
            out += [nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1), act()]
            c_in = c
        out.append(nn.ConvTranspose2d(c_in, C, 4, stride=2, padding=1, bias=False))
        self.output = nn.Sequential(*out)

    def bottom_up(self, x):
        h, feats = self.stem(x), []
        for block in self.up_blocks:
            h = block(h)
            feats.append(h)
        return feats[::-1]


# --------------------------------------------------------------------------- as fastvae.architectures builds it

def resolve_config(config: dict, input_shape) -> dict:
    """``--arch hierarchical``'s settings filled in (``fastvae.architectures``): the net, each
    level's latent size or channels (``latent_dims``, top first), the MLP's widths or the conv
    stem's channels, free bits; a ValueError for a setting of the other net. ``latent_dim`` (the
    one-level models') does not apply: None."""
    net = config.get("hierarchical_net") or "mlp"
    if net not in NETS:
        raise ValueError(f"hierarchical_net must be one of {NETS}, got {net!r}")
    other = {"mlp": ("conv_channels", "--hierarchical-net conv", "--hidden"),
             "conv": ("hidden", "--hierarchical-net mlp", "--conv-channels")}[net]
    if config.get(other[0]) is not None:
        raise ValueError(f"--{other[0].replace('_', '-')} is for {other[1]}; this hierarchy takes {other[2]}")
    if config.get("latent_dim") is not None:
        raise ValueError("--latent-dim is for the one-level models; --arch hierarchical takes --latent-dims "
                         "(each level's size, top first)")
    latents = [int(v) for v in (config.get("latent_dims") or DEFAULT_LATENTS[net])]
    widths = {"hidden": None, "conv_channels": None}
    key, default = ("hidden", DEFAULT_HIDDEN) if net == "mlp" else ("conv_channels", DEFAULT_CHANNELS)
    widths[key] = [int(w) for w in (config.get(key) or default)]
    return dict(config, hierarchical_net=net, latent_dims=latents, latent_dim=None,
                free_bits=float(config.get("free_bits") or 0.0), **widths)


def build_from_config(config: dict):
    """The hierarchical model of a resolved configuration (fresh weights)."""
    like = dict(likelihood=likelihoods.get(config["likelihood"]).name,
                logscale=config["logscale"] if config.get("logscale") is not None else "learned")
    common = dict(activation=config["activation"], fused=config["fused"], free_bits=config["free_bits"], **like)
    shape = tuple(config["input_shape"])
    if config["hierarchical_net"] == "conv":
        return HierarchicalConvVAE(shape, latent_channels=tuple(config["latent_dims"]),
                                   channels=tuple(config["conv_channels"]), **common)
    return HierarchicalMLPVAE(shape, latent_dims=tuple(config["latent_dims"]), hidden=tuple(config["hidden"]), **common)
