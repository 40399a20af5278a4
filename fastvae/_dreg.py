"""The link between ``reparameterize_iw(..., path_gradient=True)`` and ``iwae_loss(...,
estimator="dreg")``, shared by the fused ops and their reference twins.

The doubly reparameterized gradient (Tucker et al., 2019) gives the encoder
``sum_k w_k^2 d(log w_k)/dz_k dz_k/dphi`` while the decoder keeps the IWAE gradient
``sum_k w_k d(log w_k)``. The decoder output's gradient carries ``w_k`` (IWAE) and reaches z through
the decoder; ``iwae_loss`` leaves the normalised weights ``w`` (K, B) in z's ``Slot``, and z's
backward multiplies every gradient that reaches z by them (``w_k * w_k``), while the loss gives
the log-ratio's own path ``w_k^2`` directly.
"""

import torch


class Slot:
    """Attached to a z made with ``path_gradient=True`` (``z._fastvae_dreg``): the weights of the
    last ``iwae_loss(..., estimator="dreg", z=z)`` (None before one)."""

    __slots__ = ("weights",)

    def __init__(self):
        self.weights = None


def slot_of(z):
    """z's slot, or None where z was not made by ``reparameterize_iw(..., path_gradient=True)``."""
    return getattr(z, "_fastvae_dreg", None)


def attach(z, slot):
    z._fastvae_dreg = slot
    return z


class ScaleByWeights(torch.autograd.Function):
    """Identity on z (K, B, ...); its backward multiplies the gradient by the slot's weights
    (K, B) when a DReG loss set them (the reference twins' form of the fused kernel's ``HAS_W``)."""

    @staticmethod
    def forward(ctx, z, slot):
        ctx.slot = slot
        return z.view_as(z)

    @staticmethod
    def backward(ctx, grad):
        w = ctx.slot.weights
        if w is None or grad is None:
            return grad, None
        return grad * w.view(w.shape + (1,) * (grad.dim() - 2)).to(grad.dtype), None
