"""The fused ops, registered with PyTorch through ``torch.library``.

Each op is a custom op with a fake (meta) implementation and registered autograd, so that
``torch.compile(fullgraph=True)`` sees it as one opaque node on CPU and CUDA. The public
functions at the bottom validate their inputs, then run the Triton kernels or
``fastvae.reference`` according to the backend (see ``fastvae._backend``).
"""

from typing import Optional

import torch

from . import reference
from ._backend import use_triton
from ._checks import check_bernoulli, check_gaussian
from ._rows import as_rows, per_row, sum_dtype

Tensor = torch.Tensor


def _kernels():
    # imported on first use so that `import fastvae` works (torch backend) without triton
    from . import kernels

    return kernels


def _no_double_backward(op):
    # Backward runs with grad mode on only under create_graph=True. The fused backward kernels
    # are not themselves differentiable: refuse rather than return second-order gradients
    # that silently miss terms.
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():
        raise RuntimeError(
            f"fastvae.{op} is not twice differentiable (backward with create_graph=True); "
            "use the 'torch' backend (fastvae.set_backend('torch')) for higher-order gradients")


# --------------------------------------------------------------------------- seed

@torch.library.custom_op("fastvae::draw_seed", mutates_args=(), tags=(torch.Tag.nondeterministic_seeded,))
def _draw_seed(device: torch.device) -> Tensor:
    """One int64 on ``device`` from PyTorch's default generator for that device: no host sync,
    reproducible under ``torch.manual_seed``, and the same in eager and compiled code."""
    return torch.randint(0, 2**63 - 1, (1,), device=device, dtype=torch.int64)


@_draw_seed.register_fake
def _(device):
    return torch.empty(1, device=device, dtype=torch.int64)


def _seed(device, generator):
    if generator is None:
        return _draw_seed(device)
    return torch.randint(0, 2**63 - 1, (1,), device=device, dtype=torch.int64, generator=generator)


# --------------------------------------------------------------------------- Gaussian: z and KL

@torch.library.custom_op("fastvae::reparameterize_kl", mutates_args=())
def _reparameterize_kl(mu: Tensor, logvar: Tensor, eps: Optional[Tensor], seed: Optional[Tensor],
                       write_z: bool, write_kl: bool) -> tuple[Tensor, Tensor]:
    z, kl = _kernels().reparameterize_kl_fwd(
        as_rows(mu), as_rows(logvar), None if eps is None else as_rows(eps), seed, write_z, write_kl)
    return (z.view(mu.shape) if write_z else z), kl


@_reparameterize_kl.register_fake
def _(mu, logvar, eps, seed, write_z, write_kl):
    z = mu.new_empty(mu.shape if write_z else (0,))
    kl = mu.new_empty((mu.shape[0],) if write_kl else (0,), dtype=sum_dtype(mu.dtype))
    return z, kl


@torch.library.custom_op("fastvae::reparameterize_kl_backward", mutates_args=())
def _reparameterize_kl_backward(mu: Tensor, logvar: Tensor, eps: Optional[Tensor], seed: Optional[Tensor],
                                grad_z: Optional[Tensor], grad_kl: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    gmu, glv = _kernels().reparameterize_kl_bwd(
        as_rows(mu), as_rows(logvar), None if eps is None else as_rows(eps), seed,
        None if grad_z is None else as_rows(grad_z), grad_kl)
    return gmu.view(mu.shape), glv.view(logvar.shape)


@_reparameterize_kl_backward.register_fake
def _(mu, logvar, eps, seed, grad_z, grad_kl):
    return torch.empty_like(mu, memory_format=torch.contiguous_format), \
        torch.empty_like(logvar, memory_format=torch.contiguous_format)


def _rkl_setup(ctx, inputs, output):
    mu, logvar, eps, seed, write_z, write_kl = inputs
    ctx.write_z, ctx.write_kl = write_z, write_kl
    ctx.save_for_backward(mu, logvar, eps, seed)
    ctx.set_materialize_grads(False)


def _rkl_backward(ctx, grad_z, grad_kl):
    _no_double_backward("reparameterize_kl")
    mu, logvar, eps, seed = ctx.saved_tensors
    grad_z = grad_z if ctx.write_z else None
    grad_kl = grad_kl if ctx.write_kl else None
    gmu = glv = geps = None
    if (grad_z is not None or grad_kl is not None) and (ctx.needs_input_grad[0] or ctx.needs_input_grad[1]):
        gmu, glv = _reparameterize_kl_backward(mu, logvar, eps, seed if eps is None else None, grad_z, grad_kl)
    if eps is not None and ctx.needs_input_grad[2] and grad_z is not None:
        # d z / d eps = std (a caller's own noise that requires grad; rare, so plain torch)
        geps = (grad_z * torch.exp(0.5 * logvar.to(sum_dtype(logvar.dtype)))).to(eps.dtype)
    return gmu, glv, geps, None, None, None


_reparameterize_kl.register_autograd(_rkl_backward, setup_context=_rkl_setup)


# --------------------------------------------------------------------------- Bernoulli log-likelihood

@torch.library.custom_op("fastvae::bernoulli_ll", mutates_args=())
def _bernoulli_ll(logits: Tensor, x: Tensor, grad_scale: float, store_grad: bool) -> tuple[Tensor, Tensor]:
    ll, grad = _kernels().bernoulli_ll_fwd(as_rows(logits), as_rows(x), grad_scale, store_grad)
    return ll, (grad.view(logits.shape) if store_grad else grad)


@_bernoulli_ll.register_fake
def _(logits, x, grad_scale, store_grad):
    ll = logits.new_empty((logits.shape[0],), dtype=sum_dtype(logits.dtype))
    grad = logits.new_empty(logits.shape if store_grad else (0,))
    return ll, grad


@torch.library.custom_op("fastvae::bernoulli_ll_scale_grad_", mutates_args=("grad",))
def _bernoulli_ll_scale_grad_(grad: Tensor, grad_ll: Tensor, grad_scale: float) -> None:
    """In place on the forward's own gradient buffer: rows times grad_ll / grad_scale; the
    kernel's programs return at once where grad_ll == grad_scale (no host sync)."""
    _kernels().bernoulli_ll_scale_grad_(as_rows(grad), grad_ll, grad_scale)


@_bernoulli_ll_scale_grad_.register_fake
def _(grad, grad_ll, grad_scale):
    return None


@torch.library.custom_op("fastvae::bernoulli_ll_backward", mutates_args=())
def _bernoulli_ll_backward(logits: Tensor, x: Tensor, grad_ll: Tensor) -> Tensor:
    """The recomputed gradient ``grad_ll * (x - sigmoid(logits))``, one pass over logits and x."""
    return _kernels().bernoulli_ll_bwd(as_rows(logits), as_rows(x), grad_ll).view(logits.shape)


@_bernoulli_ll_backward.register_fake
def _(logits, x, grad_ll):
    return torch.empty_like(logits, memory_format=torch.contiguous_format)


def _bll_setup(ctx, inputs, output):
    logits, x, grad_scale, store_grad = inputs
    ctx.grad_scale, ctx.store_grad, ctx.consumed, ctx.x_dtype = grad_scale, store_grad, False, x.dtype
    # logits (and x) are kept only where backward reads them: to recompute the gradient when
    # it was not stored, and for d ll / d x = logits when x needs a gradient.
    recompute = logits.requires_grad and not store_grad
    ctx.save_for_backward(output[1] if store_grad else None,
                          logits if recompute or x.requires_grad else None, x if recompute else None)
    ctx.mark_non_differentiable(output[1])
    ctx.set_materialize_grads(False)


def _bll_backward(ctx, grad_ll, _grad_buffer):
    grad_logits = grad_x = None
    if grad_ll is None:
        return None, None, None, None
    _no_double_backward("bernoulli_log_likelihood")
    if ctx.consumed:
        raise RuntimeError(
            "fastvae.bernoulli_log_likelihood: backward ran twice through the same graph "
            "(retain_graph=True). The fused op keeps one gradient buffer and scales it in place; "
            "recompute the forward, or use the 'torch' backend for repeated backward passes.")
    grad, logits, x = ctx.saved_tensors
    if ctx.needs_input_grad[0]:
        if not ctx.store_grad:
            grad_logits = _bernoulli_ll_backward(logits, x, grad_ll)
        elif torch.compiler.is_compiling():
            # traced graphs stay functional: one scaled copy, fused by the compiler
            factor = per_row(grad_ll / ctx.grad_scale, grad)
            grad_logits = (grad.to(factor.dtype) * factor).to(grad.dtype)
        else:
            ctx.consumed = True
            _bernoulli_ll_scale_grad_(grad, grad_ll, ctx.grad_scale)
            grad_logits = grad
    if ctx.needs_input_grad[1]:
        grad_x = (per_row(grad_ll, logits) * logits).to(ctx.x_dtype)
    return grad_logits, grad_x, None, None


_bernoulli_ll.register_autograd(_bll_backward, setup_context=_bll_setup)


# --------------------------------------------------------------------------- public functional API

def reparameterize_kl(mu: Tensor, logvar: Tensor, *, eps: Optional[Tensor] = None,
                      generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor]:
    """Reparameterized sample and KL to N(0, I) of a diagonal Gaussian, in one fused pass.

    ``z = mu + exp(0.5 * logvar) * eps`` with eps ~ N(0, I), and per row
    ``kl = -0.5 * sum(1 + logvar - mu^2 - exp(logvar))`` over all non-batch dimensions.

    Args:
        mu, logvar: (B, ...) tensors of one dtype (float16, bfloat16, float32, float64),
            same shape and device; any strides.
        eps: optional noise of mu's shape; when given it is used instead of drawing
            (exact comparison with ``fastvae.reference``).
        generator: the ``torch.Generator`` the kernel's seed is drawn from (default:
            PyTorch's default generator of mu's device, so ``torch.manual_seed`` reproduces z).

    Returns:
        ``(z, kl)``: z of mu's shape and dtype; kl (B,) float32 (float64 for float64 input).

    The Triton kernel draws eps in registers from an int64 seed tensor (Philox); the backward
    regenerates it from that seed, so eps is never written to memory. The draws of the Triton
    path and of the torch path differ (both are N(0, I)); the seed never needs a host sync.
    """
    check_gaussian(mu, logvar, eps, generator)
    if not use_triton(mu):
        return reference.reparameterize_kl(mu, logvar, eps=eps, generator=generator)
    seed = _seed(mu.device, generator) if eps is None else None
    return _reparameterize_kl(mu, logvar, eps, seed, True, True)


def reparameterize(mu: Tensor, logvar: Tensor, *, eps: Optional[Tensor] = None,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """``z = mu + exp(0.5 * logvar) * eps`` alone, fused; arguments as ``reparameterize_kl``.

    Returns z of mu's shape and dtype.
    """
    check_gaussian(mu, logvar, eps, generator)
    if not use_triton(mu):
        return reference.reparameterize(mu, logvar, eps=eps, generator=generator)
    seed = _seed(mu.device, generator) if eps is None else None
    return _reparameterize_kl(mu, logvar, eps, seed, True, False)[0]


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, fused: one read of mu and logvar.

    mu, logvar: (B, ...) of one float dtype. Returns (B,) float32 (float64 for float64 input).
    """
    check_gaussian(mu, logvar)
    if not use_triton(mu):
        return reference.gaussian_kl(mu, logvar)
    return _reparameterize_kl(mu, logvar, None, None, False, True)[1]


def bernoulli_ll_scaled(logits: Tensor, x: Tensor, grad_scale: float) -> Tensor:
    """The fused op with ``grad_scale``: the upstream gradient the caller expects for ll.

    float32/bfloat16/float64 logits: the forward stores ``grad_scale * d ll / d logits``; when
    the upstream gradient equals ``grad_scale`` (checked on the device) the backward does no pass
    over the buffer. float16 logits: the backward recomputes the gradient from logits and x, so
    no pre-scaled value is ever rounded to float16. Inputs must already be validated.
    """
    store_grad = torch.is_grad_enabled() and logits.requires_grad and logits.dtype != torch.float16
    return _bernoulli_ll(logits, x, float(grad_scale), store_grad)[0]


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x | logits) of independent Bernoullis, per row: ``sum(x * logits - softplus(logits))``.

    Computed stably (softplus as ``max(l, 0) + log1p(exp(-|l|))``, never a log of a sigmoid).

    Args:
        logits: (B, ...) float16, bfloat16, float32 or float64; any strides.
        x: targets of logits' shape: floats in [0, 1] (soft targets), bool, or uint8 holding
            0/1 (read as one byte per element). Values are not range-checked (that would cost a
            pass and a host sync): other values give the formula's value.

    Returns:
        (B,) float32 (float64 for float64 logits): the sum over all non-batch dimensions.

    With the Triton backend the forward computes the gradient in the same pass into its own
    buffer (the caller's logits are never overwritten); the backward only applies the upstream
    gradient, and skips even that when it is exactly 1 (as after ``ll.sum().backward()``).
    float16 logits instead get their gradient recomputed in one backward pass (float16's range
    is too small to store it ahead of the loss scale). The gradient for x (``logits``) is
    computed too when x requires grad. Not twice differentiable (``create_graph=True`` raises).
    """
    check_bernoulli(logits, x)
    if not use_triton(logits):
        return reference.bernoulli_log_likelihood(logits, x)
    return bernoulli_ll_scaled(logits, x, 1.0)
