"""The one builder of fastvae's models: what the training command trains and what
``fastvae.models.load`` rebuilds from a checkpoint, by the configuration's ``arch``.

A configuration is a dict of JSON values: the run configuration of ``python -m fastvae.train``
(its flags, with underscores), as ``checkpoint.pt`` and ``summary.json`` keep it. Each
architecture is one ``Architecture`` record in the table below:

* ``resolve(config, input_shape) -> dict``: its own settings with their values filled in
  (``--hidden`` left out becomes ``[400]``), and a ValueError for a setting of another
  architecture; the keys it does not know, left as they are.
* ``build(config) -> fastvae.models.VAE``: the model of a resolved configuration, with fresh
  weights (the caller seeds and loads a state dict).

``resolve`` (the module function) also fills in what every architecture shares:
``input_shape`` (a list of ints: one example's shape) and the likelihood's ``logscale``. A
resolved configuration holds a value for every setting; ``None`` only where a setting does not
apply (``hidden`` for ``conv``, ``logscale`` for a likelihood without a scale). Resolving is
idempotent, so a resolved configuration (a checkpoint's) resolves to itself.

Adding an architecture (CONTRIBUTING.md, "add an architecture"): its model class, then one
``Architecture`` in ``_TABLE``; the training command's ``--arch`` and ``fastvae.models.load``
take it from here.
"""

from dataclasses import dataclass
from typing import Callable

from . import hierarchical_nets, likelihoods
from .models import conv_channels_for, ConvVAE, CountVAE, MLPVAE

MLP_HIDDEN = [400]  # --hidden's default
LATENT = 40  # --latent-dim's default
COUNT_HIDDEN, COUNT_LATENT = [128], 10  # scVI's defaults


@dataclass(frozen=True)
class Architecture:
    """One architecture: its name (``--arch``), a line for ``--help``, its two functions (see
    the module docstring), and whether it models count matrices (the count likelihoods) rather
    than the others' data."""

    name: str
    summary: str
    resolve: Callable
    build: Callable
    counts: bool = False


def _widths(config, key):
    v = config.get(key)
    return None if v is None else [int(w) for w in v]


def _only_for(config, key, arch, flag_of):
    # a setting of another architecture: the message names the flags
    if config.get(key) is not None:
        raise ValueError(f"--{key.replace('_', '-')} is for --arch {arch}; the {flag_of}")


def _latent(config, default):
    return config["latent_dim"] if config.get("latent_dim") is not None else default


def _resolve_mlp(config, input_shape):
    _only_for(config, "conv_channels", "conv", "MLP takes --hidden")
    return dict(config, hidden=_widths(config, "hidden") or list(MLP_HIDDEN), latent_dim=_latent(config, LATENT))


def _resolve_conv(config, input_shape):
    _only_for(config, "hidden", "mlp", "conv VAE takes --conv-channels")
    channels = _widths(config, "conv_channels") or list(conv_channels_for(input_shape))
    return dict(config, conv_channels=channels, latent_dim=_latent(config, LATENT))


def _resolve_count(config, input_shape):
    _only_for(config, "conv_channels", "conv", "count VAE takes --hidden")
    if len(input_shape) != 1:
        raise ValueError(f"the count VAE models (cells, genes) count matrices; the examples have shape "
                         f"{tuple(input_shape)}")
    return dict(config, hidden=_widths(config, "hidden") or list(COUNT_HIDDEN),
                latent_dim=_latent(config, COUNT_LATENT))


def _likelihood_settings(config):
    spec = likelihoods.get(config["likelihood"])
    return dict(likelihood=spec.name, logscale=config["logscale"] if spec.has_scale else "learned")


def _build_mlp(config):
    return MLPVAE(tuple(config["input_shape"]), hidden=tuple(config["hidden"]), latent_dim=config["latent_dim"],
                  activation=config["activation"], fused=config["fused"], **_likelihood_settings(config))


def _build_conv(config):
    return ConvVAE(tuple(config["input_shape"]), latent_dim=config["latent_dim"],
                   channels=tuple(config["conv_channels"]), activation=config["activation"], fused=config["fused"],
                   **_likelihood_settings(config))


def _build_count(config):
    return CountVAE(config["input_shape"][0], config["latent_dim"], tuple(config["hidden"]),
                    likelihood=likelihoods.get(config["likelihood"]).name, activation=config["activation"],
                    fused=config["fused"])


_TABLE = (
    Architecture("mlp", "fastvae.models.MLPVAE (fully connected; --hidden)", _resolve_mlp, _build_mlp),
    Architecture("conv", "fastvae.models.ConvVAE (stride-2 convolutions; --conv-channels)", _resolve_conv,
                 _build_conv),
    Architecture("count", "fastvae.models.CountVAE (scVI's model of count matrices, for the count likelihoods; "
                 "--hidden 128 and --latent-dim 10 unless given)", _resolve_count, _build_count, counts=True),
    Architecture("hierarchical", "a top-down hierarchical VAE, fastvae.models.HierarchicalMLPVAE or "
                 "HierarchicalConvVAE (--hierarchical-net, --latent-dims, --free-bits; --hidden or --conv-channels)",
                 hierarchical_nets.resolve_config, hierarchical_nets.build_from_config),
)
_BY_NAME = {a.name: a for a in _TABLE}


def names() -> tuple:
    """The architectures' names, in the table's order (``--arch``'s choices)."""
    return tuple(a.name for a in _TABLE)


def records() -> tuple:
    """Every architecture's record, in the table's order."""
    return _TABLE


def get(name) -> Architecture:
    """The record of ``name``; a ValueError naming the known ones otherwise."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown architecture {name!r}; fastvae builds {', '.join(names())}")
    return _BY_NAME[name]


def resolve(config: dict, input_shape=None) -> dict:
    """``config`` resolved (a new dict; see the module docstring). ``input_shape`` (one
    example's shape, e.g. ``(1, 28, 28)``) is required unless the configuration has one."""
    shape = input_shape if input_shape is not None else config.get("input_shape")
    if shape is None:
        raise ValueError("the configuration has no input_shape and none was given")
    shape = [int(s) for s in shape]
    spec = likelihoods.get(config["likelihood"])
    logscale = config.get("logscale")
    if spec.has_scale and logscale is None:
        logscale = "learned"
    elif not spec.has_scale:
        logscale = None
    arch = get(config.get("arch") or default_arch(spec))
    if arch.counts != spec.counts:
        fits = " or ".join(a.name for a in _TABLE if a.counts == spec.counts)
        raise ValueError(f"--arch {arch.name} does not model the {spec.title} likelihood's data; use --arch {fits}")
    return arch.resolve(dict(config, arch=arch.name, input_shape=shape, logscale=logscale), shape)


def default_arch(spec) -> str:
    """The architecture when none is named: the count VAE for a count likelihood, else the MLP."""
    return next(a.name for a in _TABLE if a.counts == spec.counts)


def build(config: dict):
    """The model (fresh weights, on the CPU) of a resolved ``config``."""
    return get(config["arch"]).build(config)
