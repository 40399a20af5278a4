"""Building blocks the models share: the activations by name."""

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU,
               "softplus": nn.Softplus, "leaky_relu": nn.LeakyReLU}


def activation(name):
    """The activation module class called ``name`` (``ACTIVATIONS``); ValueError otherwise."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]
