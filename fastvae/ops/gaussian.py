"""``reparameterize_kl``, ``reparameterize``, ``gaussian_kl``: the sample z and the KL of a
diagonal Gaussian, to N(0, I) or to a learned Gaussian prior, in one pass
(``fastvae.kernels.gaussian``), with the noise drawn in the kernel and drawn again in backward.

The forward and backward passes below are written once; the eager ``torch.autograd.Function``
and the ``torch.library`` custom ops that ``torch.compile`` sees both call them.
"""

from typing import Optional

import torch

from .. import reference
from .._backend import use_triton
from .._checks import check_gaussian, check_prior
from .._rows import as_rows, sum_dtype, to_sum
from . import _route
from ._route import draw_seed, guard, kernels, once_differentiable

Tensor = torch.Tensor


def _rows(t):
    return t if t is None or t.dim() == 2 else as_rows(t)


def _forward(mu, logvar, prior_mu, prior_logvar, eps, seed, write_z, write_kl):
    z, kl = kernels().reparameterize_kl_fwd(_rows(mu), _rows(logvar), _rows(eps), seed, write_z, write_kl,
                                            prior_mu=_rows(prior_mu), prior_logvar=_rows(prior_logvar))
    return (z.view(mu.shape) if write_z and mu.dim() != 2 else z), kl


def _backward(mu, logvar, prior_mu, prior_logvar, eps, seed, grad_z, grad_kl):
    """(grad_mu, grad_logvar, grad_prior_mu, grad_prior_logvar) in the inputs' shapes; the
    prior's are None without a prior or without grad_kl."""
    grads = kernels().reparameterize_kl_bwd(
        _rows(mu), _rows(logvar), _rows(eps), seed if eps is None else None, _rows(grad_z), grad_kl,
        prior_mu=_rows(prior_mu), prior_logvar=_rows(prior_logvar))
    grads = tuple(grads) + (None, None) * (len(grads) == 2)
    return tuple(g if g is None or mu.dim() == 2 else g.view(mu.shape) for g in grads)


def _grads(ctx, grad_z, grad_kl, backward_pass):
    """Gradients of (mu, logvar, prior_mu, prior_logvar, eps, seed, write_z, write_kl) from the saved inputs."""
    mu, logvar, prior_mu, prior_logvar, eps, seed = ctx.saved_tensors
    grad_z = grad_z if ctx.write_z else None
    grad_kl = grad_kl if ctx.write_kl else None
    gmu = glv = gpm = gpv = geps = None
    if (grad_z is not None or grad_kl is not None) and any(ctx.needs_input_grad[:4]):
        gmu, glv, gpm, gpv = backward_pass(mu, logvar, prior_mu, prior_logvar, eps, seed, grad_z, grad_kl)
    if eps is not None and ctx.needs_input_grad[4] and grad_z is not None:
        # d z / d eps = std (a caller's own noise that requires grad; rare, so plain torch)
        geps = (grad_z * torch.exp(0.5 * to_sum(logvar))).to(eps.dtype)
    return gmu, glv, gpm, gpv, geps, None, None, None


def _setup(ctx, inputs, output):
    mu, logvar, prior_mu, prior_logvar, eps, seed, write_z, write_kl = inputs
    ctx.write_z, ctx.write_kl = write_z, write_kl
    ctx.save_for_backward(mu, logvar, prior_mu, prior_logvar, eps, seed)
    ctx.set_materialize_grads(False)


class fastvae_reparameterize_kl(torch.autograd.Function):  # noqa: N801 - the name grad_fn shows
    """Eager route: (mu, logvar, prior_mu, prior_logvar, eps, seed, write_z, write_kl) -> (z, kl)."""

    @staticmethod
    def forward(ctx, mu, logvar, prior_mu, prior_logvar, eps, seed, write_z, write_kl):
        z, kl = _forward(mu, logvar, prior_mu, prior_logvar, eps, seed, write_z, write_kl)
        _setup(ctx, (mu, logvar, prior_mu, prior_logvar, eps, seed, write_z, write_kl), (z, kl))
        return z, kl

    @staticmethod
    def backward(ctx, grad_z, grad_kl):
        once_differentiable("reparameterize_kl")
        return _grads(ctx, grad_z, grad_kl, _backward)


# ------------------------------------------------------------- the same under torch.compile

@torch.library.custom_op("fastvae::reparameterize_kl", mutates_args=())
def _op(mu: Tensor, logvar: Tensor, prior_mu: Optional[Tensor], prior_logvar: Optional[Tensor], eps: Optional[Tensor],
        seed: Optional[Tensor], write_z: bool, write_kl: bool) -> tuple[Tensor, Tensor]:
    return _forward(mu, logvar, prior_mu, prior_logvar, eps, seed, write_z, write_kl)


@_op.register_fake
def _(mu, logvar, prior_mu, prior_logvar, eps, seed, write_z, write_kl):
    z = mu.new_empty(mu.shape if write_z else (0,))
    kl = mu.new_empty((mu.shape[0],) if write_kl else (0,), dtype=sum_dtype(mu.dtype))
    return z, kl


@torch.library.custom_op("fastvae::reparameterize_kl_backward", mutates_args=())
def _op_backward(mu: Tensor, logvar: Tensor, prior_mu: Optional[Tensor], prior_logvar: Optional[Tensor],
                 eps: Optional[Tensor], seed: Optional[Tensor], grad_z: Optional[Tensor],
                 grad_kl: Optional[Tensor]) -> list[Tensor]:
    # a custom op returns tensors: the prior's gradients are empty where there are none
    return [g if g is not None else mu.new_empty(0)
            for g in _backward(mu, logvar, prior_mu, prior_logvar, eps, seed, grad_z, grad_kl)]


@_op_backward.register_fake
def _(mu, logvar, prior_mu, prior_logvar, eps, seed, grad_z, grad_kl):
    prior = prior_mu is not None and grad_kl is not None
    return [torch.empty_like(t, memory_format=torch.contiguous_format) if prior or i < 2 else mu.new_empty(0)
            for i, t in enumerate((mu, logvar, mu, mu))]


def _op_backward_grads(mu, logvar, prior_mu, prior_logvar, eps, seed, grad_z, grad_kl):
    grads = _op_backward(mu, logvar, prior_mu, prior_logvar, eps, seed, grad_z, grad_kl)
    prior = prior_mu is not None and grad_kl is not None  # known while tracing: no data-dependent branch
    return grads[0], grads[1], grads[2] if prior else None, grads[3] if prior else None


_op.register_autograd(lambda ctx, gz, gkl: _grads(ctx, gz, gkl, _op_backward_grads), setup_context=_setup)


def _fused(mu, logvar, prior_mu, prior_logvar, eps, seed, *, write_z, write_kl):
    # the outputs each public op asks of the one kernel, by name
    if _route.compiling():
        return _op(mu, logvar, prior_mu, prior_logvar, eps, seed, write_z, write_kl)
    return fastvae_reparameterize_kl.apply(mu, logvar, prior_mu, prior_logvar, eps, seed, write_z, write_kl)


# --------------------------------------------------------------------- public functions

def reparameterize_kl(mu: Tensor, logvar: Tensor, *, prior_mu: Optional[Tensor] = None,
                      prior_logvar: Optional[Tensor] = None, eps: Optional[Tensor] = None,
                      generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor]:
    """Reparameterized sample and KL of a diagonal Gaussian, to N(0, I) or to a learned
    Gaussian prior, in one fused pass.

    ``z = mu + exp(0.5 * logvar) * eps`` with eps ~ N(0, I), and per row, over all non-batch
    dimensions, ``kl = -0.5 * sum(1 + logvar - mu^2 - exp(logvar))``; with a prior,
    ``kl = 0.5 * sum(prior_logvar - logvar + (exp(logvar) + (mu - prior_mu)^2) * exp(-prior_logvar) - 1)``,
    KL(N(mu, exp(logvar)) || N(prior_mu, exp(prior_logvar))) (VDVAE's ``gaussian_analytical_kl``
    with logsigma = logvar / 2, summed per row).

    Args:
        mu, logvar: (B, ...) tensors of one dtype (float16, bfloat16, float32, float64),
            same shape and device; any strides.
        prior_mu, prior_logvar: the prior (a hierarchy's p(z_l | z_<l)): both or neither, of
            mu's shape and dtype, any strides (a learned (1, L) prior ``.expand(B, L)`` is read
            in place). One backward pass gives the gradients of all four.
        eps: optional noise of mu's shape; when given it is used instead of drawing
            (exact comparison with ``fastvae.reference``).
        generator: the ``torch.Generator`` the kernel's seed is drawn from (default:
            PyTorch's default generator of mu's device, so ``torch.manual_seed`` reproduces z).

    Returns:
        ``(z, kl)``: z of mu's shape and dtype; kl (B,) float32 (float64 for float64 input).

    The Triton kernel draws eps in registers from an int64 seed tensor (Philox); the backward
    regenerates it from that seed, so eps is never written to memory. The draws of the Triton
    path and of the torch path differ (both are N(0, I)); the seed never needs a host sync.
    Math in float32 for half precision; finite and accurate for log-variances in [-30, 20] on
    either side. Differentiable once (``create_graph=True`` raises).
    """
    check_gaussian(mu, logvar, eps, generator)
    check_prior(mu, prior_mu, prior_logvar)
    if not use_triton(mu):
        return guard("reparameterize_kl", reference.reparameterize_kl(
            mu, logvar, prior_mu=prior_mu, prior_logvar=prior_logvar, eps=eps, generator=generator))
    seed = draw_seed(mu.device, generator) if eps is None else None
    return _fused(mu, logvar, prior_mu, prior_logvar, eps, seed, write_z=True, write_kl=True)


def reparameterize(mu: Tensor, logvar: Tensor, *, eps: Optional[Tensor] = None,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """``z = mu + exp(0.5 * logvar) * eps`` alone, fused; arguments as ``reparameterize_kl``.

    Returns z of mu's shape and dtype.
    """
    check_gaussian(mu, logvar, eps, generator)
    if not use_triton(mu):
        return guard("reparameterize", reference.reparameterize(mu, logvar, eps=eps, generator=generator))
    seed = draw_seed(mu.device, generator) if eps is None else None
    return _fused(mu, logvar, None, None, eps, seed, write_z=True, write_kl=False)[0]


def gaussian_kl(mu: Tensor, logvar: Tensor, prior_mu: Optional[Tensor] = None,
                prior_logvar: Optional[Tensor] = None) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, or with a prior KL(N(mu, exp(logvar)) ||
    N(prior_mu, exp(prior_logvar))) (see ``reparameterize_kl``), fused: one read of each input.

    mu, logvar: (B, ...) of one float dtype; prior_mu, prior_logvar: both or neither, of mu's
    shape and dtype, any strides. Returns (B,) float32 (float64 for float64 input).
    """
    check_gaussian(mu, logvar)
    check_prior(mu, prior_mu, prior_logvar)
    if not use_triton(mu):
        return guard("gaussian_kl", reference.gaussian_kl(mu, logvar, prior_mu, prior_logvar))
    return _fused(mu, logvar, prior_mu, prior_logvar, None, None, write_z=False, write_kl=True)[1]
