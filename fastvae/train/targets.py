"""What the model is trained and evaluated on, given the data and the likelihood: the loader's
uint8 batches as they are, as floats, or uniformly dequantized; the evaluation splits the same
way; the training pixel means for the output bias; and bits per dimension for 8-bit data.

* ``binary``: 0/1 data (the binary data sets, or MNIST binarized every batch) for a
  likelihood that reads uint8 targets as 0/1 (the Bernoulli): uint8 as it is, one byte per pixel.
* ``binary-float``: 0/1 data for a likelihood that reads uint8 as k/255 (a continuous one):
  converted to float (k/255 is not what 0/1 bytes mean).
* ``as-is``: your own data (``--data PATH``), already checked and converted for the likelihood
  when it was loaded (``fastvae.data.load_files``): uint8 or float32, served as it is.
* ``dequantized``: 8-bit grey levels k (``--data mnist --grey``) for a continuous likelihood:
  ``(k + u) / 256`` with u ~ U[0, 1), a fresh u every batch (drawn from ``(seed, step, rank)``,
  so a resumed run draws the same), and one fixed u for each evaluation split. The model's
  density on [0, 1]^D then bounds the discrete one: bits/dim = ``(NLL + D log 256) / (D log 2)``.
"""

import math

import torch

from .. import likelihoods
from ..data._random import seed_for, seeded_generator


class Targets:
    """The run's data as the likelihood (a name or registry record) gets it (see the module
    docstring); ``ds`` is the run's Dataset, ``grey`` is --grey."""

    def __init__(self, likelihood, ds, grey, seed):
        self.seed = seed
        self.grey = bool(grey)
        self.spec = likelihoods.get(likelihood)
        if not ds.binary:
            self.kind = "as-is"
        elif self.grey:
            self.kind = "dequantized"
        elif likelihoods.get(likelihood).uint8 != likelihoods.BINARY:
            self.kind = "binary-float"
        else:
            self.kind = "binary"
        self.binarize = ds.dynamic and not self.grey  # the loader binarizes MNIST's grey levels

    def batch(self, x, step, rank):
        """The training batch the loader served as the model gets it."""
        if self.kind in ("binary", "as-is"):
            return x
        if self.kind == "binary-float":
            return x.float()
        g = seeded_generator(x.device, seed_for(self.seed, step, rank, 0xDE))
        return dequantize(x, g)

    def split(self, ds, name, seed):
        """An evaluation split (``valid`` or ``test``), fixed: binarized once for dynamic
        binary data, dequantized once (from ``seed``) for grey levels."""
        if self.kind == "dequantized":
            x = ds.split(name)
            return dequantize(x, seeded_generator(x.device, seed_for(seed, ("valid", "test").index(name), 0xDF)))
        x = ds.binarized(name, seed)
        return x.float() if self.kind == "binary-float" else x

    def pixel_means(self, train):
        """Per-pixel means of the training data in the model's units (float64), summed on the fly."""
        s = train.sum(0, dtype=torch.float64) / train.shape[0]
        if self.kind == "as-is":
            scale = self.spec.uint8_scale if train.dtype == torch.uint8 else None
            return s * scale if scale is not None else s
        if self.kind == "dequantized":
            return (s + 0.5) / 256
        return s / 255 if self.binarize else s

    def bits_per_dim(self, nll, shape):
        """Bits per dimension of a test NLL (nats per example) for 8-bit data; None for others."""
        if self.kind != "dequantized" or nll is None:
            return None
        D = math.prod(shape)
        return (nll + D * math.log(256)) / (D * math.log(2))


def dequantize(x, generator):
    """``(k + u) / 256`` in float32, u ~ U[0, 1) from ``generator``: uint8 grey levels k as a
    density on [0, 1] (uniform dequantization)."""
    u = torch.rand(x.shape, device=x.device, generator=generator)
    return (x.float() + u).mul_(1 / 256)
