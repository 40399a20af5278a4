"""Importance-weighted training: ``reparameterize_iw`` (K samples and their log importance
ratios in one pass, ``fastvae.kernels.importance``) and ``iwae_loss`` (the K-sample bound over
the fused log-likelihoods, the targets read by indexing, never repeated K times).

The IWAE bound per row is ``logsumexp_k(log p(x | z_k) + log_ratio_k) - log K``; its gradient
gives sample k the weight ``w_k = softmax_k(...)``. With ``estimator="dreg"`` the encoder gets the
doubly reparameterized gradient instead (weights ``w_k^2``, through z only; ``fastvae._dreg``).
The (K, B) logsumexp and weights are plain torch; every pass over (K, B, ...) is a kernel.
"""

import math
from typing import Optional

import torch

from .. import _dreg, likelihoods, reference
from .._backend import use_triton
from .._checks import (
    check_eager_dreg,
    check_gaussian,
    check_iw_eps,
    check_iwae,
    check_num_samples,
    check_prior,
    check_prior_path,
)
from .._rows import as_rows, reduce_rows
from . import _route
from ._route import draw_seed, kernels, once_differentiable

Tensor = torch.Tensor


def _iw_forward(mu, logvar, prior_mu, prior_logvar, eps, seed, K):
    eps_rows = None if eps is None else eps.reshape(K, mu.shape[0], -1)
    prior = prior_mu is not None
    z, lr = kernels().reparameterize_iw_fwd(as_rows(mu), as_rows(logvar), K, eps_rows, seed,
                                            as_rows(prior_mu) if prior else None,
                                            as_rows(prior_logvar) if prior else None)
    return z.view(K, *mu.shape), lr


def _iw_backward(mu, logvar, prior_mu, prior_logvar, eps, seed, K, grad_z, grad_lr, w=None, path=False):
    """(grad_mu, grad_logvar, grad_prior_mu, grad_prior_logvar) in the inputs' shapes; the prior's
    None without a prior or without grad_lr."""
    B, prior = mu.shape[0], prior_mu is not None
    gz = None if grad_z is None else grad_z.reshape(K, B, -1).contiguous()
    glr = None if grad_lr is None else grad_lr.contiguous()
    eps_rows = None if eps is None else eps.reshape(K, B, -1)
    grads = kernels().reparameterize_iw_bwd(as_rows(mu), as_rows(logvar), K, eps_rows, seed if eps is None else None,
                                            gz, glr, w, path, as_rows(prior_mu) if prior else None,
                                            as_rows(prior_logvar) if prior else None)
    grads = tuple(grads) + (None, None) * (len(grads) == 2)
    return tuple(g if g is None else g.view(mu.shape) for g in grads)


def _given_eps_grad(mu, logvar, prior_mu, prior_logvar, eps, grad_z, grad_lr, w, K):
    """d/d eps of a caller's own noise that requires grad (rare: plain torch, float64)."""
    B = mu.shape[0]
    shape = (K, B, *[1] * (mu.dim() - 1))
    std = torch.exp(0.5 * logvar.double())
    z = mu.double() + std * eps.double()
    geps = torch.zeros_like(eps, dtype=torch.float64)
    if grad_z is not None:
        geps += grad_z.double() * std * (1 if w is None else w.double().view(shape))
    if grad_lr is not None:
        rw = z if prior_mu is None else (z - prior_mu.double()) * torch.exp(-prior_logvar.double())
        geps += grad_lr.double().view(shape) * (eps.double() - rw * std)
    return geps.to(eps.dtype)


class fastvae_reparameterize_iw(torch.autograd.Function):  # noqa: N801 - the name grad_fn shows
    """(mu, logvar, prior_mu, prior_logvar, eps, seed, K, path, slot) -> (z (K, B, ...), log_ratio (K, B))."""

    @staticmethod
    def forward(ctx, mu, logvar, prior_mu, prior_logvar, eps, seed, K, path, slot):
        z, lr = _iw_forward(mu, logvar, prior_mu, prior_logvar, eps, seed, K)
        ctx.save_for_backward(mu, logvar, prior_mu, prior_logvar, eps, seed)
        ctx.K, ctx.path, ctx.slot = K, path, slot
        ctx.set_materialize_grads(False)
        return z, lr

    @staticmethod
    def backward(ctx, grad_z, grad_lr):
        once_differentiable("reparameterize_iw")
        mu, logvar, prior_mu, prior_logvar, eps, seed = ctx.saved_tensors
        w = ctx.slot.weights if ctx.slot is not None else None
        gmu = glv = gpm = gpv = geps = None
        if grad_z is not None or grad_lr is not None:
            gmu, glv, gpm, gpv = _iw_backward(mu, logvar, prior_mu, prior_logvar, eps, seed, ctx.K, grad_z, grad_lr,
                                              w, ctx.path)
        if eps is not None and ctx.needs_input_grad[4]:
            geps = _given_eps_grad(mu, logvar, prior_mu, prior_logvar, eps, grad_z, grad_lr, w, ctx.K)
        return gmu, glv, gpm, gpv, geps, None, None, None, None


# ------------------------------------------------- under torch.compile (estimator "iwae" only)

@torch.library.custom_op("fastvae::reparameterize_iw", mutates_args=())
def _op(mu: Tensor, logvar: Tensor, prior_mu: Optional[Tensor], prior_logvar: Optional[Tensor], eps: Optional[Tensor],
        seed: Optional[Tensor], K: int) -> tuple[Tensor, Tensor]:
    return _iw_forward(mu, logvar, prior_mu, prior_logvar, eps, seed, K)


@_op.register_fake
def _(mu, logvar, prior_mu, prior_logvar, eps, seed, K):
    from .._rows import sum_dtype

    return mu.new_empty((K, *mu.shape)), mu.new_empty((K, mu.shape[0]), dtype=sum_dtype(mu.dtype))


@torch.library.custom_op("fastvae::reparameterize_iw_backward", mutates_args=())
def _op_backward(mu: Tensor, logvar: Tensor, prior_mu: Optional[Tensor], prior_logvar: Optional[Tensor],
                 eps: Optional[Tensor], seed: Optional[Tensor], K: int, grad_z: Optional[Tensor],
                 grad_lr: Optional[Tensor]) -> list[Tensor]:
    # a custom op returns tensors: the prior's gradients are empty where there are none
    return [g if g is not None else mu.new_empty(0)
            for g in _iw_backward(mu, logvar, prior_mu, prior_logvar, eps, seed, K, grad_z, grad_lr)]


@_op_backward.register_fake
def _(mu, logvar, prior_mu, prior_logvar, eps, seed, K, grad_z, grad_lr):
    prior = prior_mu is not None and grad_lr is not None
    return [torch.empty_like(t, memory_format=torch.contiguous_format) if prior or i < 2 else mu.new_empty(0)
            for i, t in enumerate((mu, logvar, mu, mu))]


def _op_setup(ctx, inputs, output):
    mu, logvar, prior_mu, prior_logvar, eps, seed, K = inputs
    ctx.K = K
    ctx.save_for_backward(mu, logvar, prior_mu, prior_logvar, eps, seed)
    ctx.set_materialize_grads(False)


def _op_grads(ctx, grad_z, grad_lr):
    mu, logvar, prior_mu, prior_logvar, eps, seed = ctx.saved_tensors
    if grad_z is None and grad_lr is None:
        return None, None, None, None, None, None, None
    if eps is not None and ctx.needs_input_grad[4]:
        raise NotImplementedError("a gradient for a given eps under torch.compile: run eagerly")
    grads = _op_backward(mu, logvar, prior_mu, prior_logvar, eps, seed, ctx.K, grad_z, grad_lr)
    prior = prior_mu is not None and grad_lr is not None  # known while tracing
    return grads[0], grads[1], grads[2] if prior else None, grads[3] if prior else None, None, None, None


_op.register_autograd(_op_grads, setup_context=_op_setup)


def reparameterize_iw(mu: Tensor, logvar: Tensor, num_samples: int, *, prior_mu: Optional[Tensor] = None,
                      prior_logvar: Optional[Tensor] = None, eps: Optional[Tensor] = None,
                      generator: Optional[torch.Generator] = None, path_gradient: bool = False):
    """K reparameterized samples and their log importance ratios, in one fused pass.

    Args:
        mu, logvar: (B, ...) of one float dtype, same shape and device; any strides.
        num_samples: K >= 1.
        prior_mu, prior_logvar: a learned Gaussian prior N(prior_mu, exp(prior_logvar)) instead
            of N(0, I): both or neither, of mu's shape and dtype, any strides; their gradients
            come from the same backward pass. A hierarchy calls this once per level: K samples
            at the top, then ``num_samples=1`` on the K * B rows below, each level's log ratio
            added to the row's (``fastvae.hierarchical``). Not with ``path_gradient``.
        eps: optional noise (K, B, ...) to use instead of drawing it.
        generator: the ``torch.Generator`` the kernel's seed is drawn from (default: the device's).
        path_gradient: evaluate log q with mu and logvar held constant, so that gradients reach
            them only through z ("sticking the landing"; what ``estimator="dreg"`` needs).

    Returns:
        ``(z, log_ratio)``: z (K, B, ...) in mu's dtype, ``mu + exp(logvar / 2) * eps_k``;
        log_ratio (K, B) float32 (float64 for float64), ``log N(z_k; 0, I) - log q(z_k | x)``
        (with a prior ``log N(z_k; prior_mu, exp(prior_logvar)) - log q(z_k | x)``) summed over
        the non-batch dimensions. Without ``eps`` the draws are independent N(0, I)
        for every sample and row, drawn in the kernel (never stored) and reproducible under
        ``torch.manual_seed``; sample 0 is the noise ``reparameterize_kl`` draws from the same
        seed. Differentiable once.
    """
    check_gaussian(mu, logvar, None, generator)
    K = check_num_samples(num_samples)
    if path_gradient:
        check_eager_dreg("reparameterize_iw(path_gradient=True)")
    check_iw_eps(eps, mu, K)
    prior = check_prior(mu, prior_mu, prior_logvar)
    if path_gradient:
        check_prior_path(prior)
    if not use_triton(mu):
        z, lr = reference.reparameterize_iw(mu, logvar, K, prior_mu=prior_mu, prior_logvar=prior_logvar, eps=eps,
                                            generator=generator, path_gradient=path_gradient)
        slot = _dreg.slot_of(z)
        z, lr = _route.guard("reparameterize_iw", (z, lr))
        return (_dreg.attach(z, slot) if slot is not None else z), lr
    seed = draw_seed(mu.device, generator) if eps is None else None
    if _route.compiling():
        return _op(mu, logvar, prior_mu, prior_logvar, eps, seed, K)
    slot = _dreg.Slot() if path_gradient else None
    z, lr = fastvae_reparameterize_iw.apply(mu, logvar, prior_mu, prior_logvar, eps, seed, K, bool(path_gradient),
                                            slot)
    return (_dreg.attach(z, slot) if slot is not None else z), lr


def _rows_of_samples(t, recon):
    """A likelihood argument for the K * B rows of recon: a (K, B, ...) tensor reshaped to them;
    any other as given (one with x's B rows is read by index for every sample, one shared by the
    rows broadcasts, a library is read per row of x), so that its gradient comes back in its own
    shape."""
    if isinstance(t, torch.Tensor) and tuple(t.shape) == tuple(recon.shape):
        return t.reshape(recon.shape[0] * recon.shape[1], *recon.shape[2:])
    return t


def iwae_loss(recon: Tensor, x: Tensor, log_ratio: Tensor, *, likelihood: str = likelihoods.DEFAULT, logscale=0.0,
              z: Optional[Tensor] = None, estimator: str = "iwae", reduction: str = "mean",
              **likelihood_args) -> Tensor:
    """The importance-weighted bound (Burda et al., 2016) as a loss, fused: per row
    ``-(logsumexp_k(log p(x | z_k) + log_ratio_k) - log K)``, reduced like ``ELBOLoss``.

    Args:
        recon: (K, B, ...) the decoder's output for each sample (logits, or the Gaussian's mean).
        x: (B, ...) the targets, once (read for every sample by indexing, never repeated K
            times); the dtypes ``likelihood`` accepts, uint8 included.
        log_ratio: (K, B), e.g. from ``reparameterize_iw``.
        likelihood: a name of ``fastvae.likelihoods.names()`` (see ``elbo_loss``).
        logscale: the Gaussian's: a number, a tensor broadcast against one sample's shape
            (B, ...) (shared, per feature, per row), or (K, B, ...).
        **likelihood_args: the count likelihoods' tensors (see ``elbo_loss``): ``log_theta``
            and ``zero_inflation_logits`` broadcast against one sample's shape or (K, B, ...),
            ``log_library`` (B,) (one per row of x).
        z: with ``estimator='dreg'``, the z of ``reparameterize_iw(..., path_gradient=True)``.
        estimator: ``'iwae'``: the plain gradient of the bound (sample weights ``w_k`` =
            softmax over k). ``'dreg'`` (Tucker et al., 2019): the decoder gets the IWAE gradient,
            the encoder the doubly reparameterized one (weights ``w_k**2``, through z only): the
            loss gives the log ratio's path ``w_k**2`` and leaves ``w`` with z, whose backward
            multiplies every gradient reaching z by it. So any other use of that z (a
            regulariser on z, say) has its gradient multiplied by the weights too; use a
            ``z.detach()`` copy for those. One ``iwae_loss`` per z per backward; eager only
            (``torch.compile`` supports ``'iwae'``).
        reduction: ``'mean'`` over the batch (nats per example), ``'sum'`` or ``'none'`` (B,).

    With K = 1 and ``'iwae'`` the value is the single-sample Monte Carlo ELBO
    ``-(log p(x|z_1) + log_ratio_1)`` (not ``ELBOLoss``'s closed-form KL).
    """
    spec = likelihoods.get(likelihood)
    args = spec.bind(spec.given(logscale, likelihood_args))
    slot = _dreg.slot_of(z) if z is not None else None
    check_iwae(spec, recon, x, log_ratio, args, z, estimator, reduction, slot is not None)
    if not use_triton(recon):
        return _route.guard("iwae_loss", reference.iwae_loss(recon, x, log_ratio, likelihood=spec, logscale=logscale,
                                                             z=z, estimator=estimator, reduction=reduction,
                                                             **likelihood_args))
    from .likelihood import log_likelihood, operands
    from .softmax_counts import softmax_log_likelihood

    K, B = log_ratio.shape
    s, s_value, q, library = operands(spec, {n: _rows_of_samples(t, recon) for n, t in args.items()})
    rows = recon.reshape(K * B, *recon.shape[2:])
    if library is not None:
        ll = softmax_log_likelihood(rows, x, s, library.reshape(-1), q, store=False).view(K, B)
    else:
        ll = log_likelihood(spec, rows, x, s, s_value, store=False, q=q).view(K, B)
    a = ll + log_ratio.to(ll.dtype) if log_ratio.dtype != torch.float64 else ll.double() + log_ratio
    per_row = -(torch.logsumexp(a, 0) - math.log(K))
    if estimator == "dreg":
        w = torch.softmax(a.detach(), 0)
        slot.weights = w.contiguous()
        surrogate = -(w * ll).sum(0) - (w * w * log_ratio.to(w.dtype)).sum(0)
        per_row = per_row.detach() + surrogate - surrogate.detach()
    return reduce_rows(per_row, reduction)
