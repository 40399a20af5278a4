"""How a fused op runs, shared by the ops: eager calls go through a ``torch.autograd.Function``
that launches the kernels directly (cheap on the host); under ``torch.compile`` the same forward
and backward run inside ``torch.library`` custom ops, which the compiler sees as opaque nodes.
Also: the seed of the in-kernel noise, and the rules every fused backward follows."""

import torch

Tensor = torch.Tensor


def compiling() -> bool:
    """True while ``torch.compile`` traces (the custom-op route), False in eager code."""
    return torch.compiler.is_compiling()


_kernels = None


def kernels():
    """``fastvae.kernels``, imported on first use so that ``import fastvae`` works (torch
    backend) without triton."""
    global _kernels
    if _kernels is None:
        from .. import kernels as k

        _kernels = k
    return _kernels


try:
    _keep_graph = torch._C._autograd._get_current_graph_task_keep_graph
except AttributeError:  # pragma: no cover - older torch: assume the graph is kept (always safe)
    def _keep_graph():
        return True


def graph_kept() -> bool:
    """Inside a backward: True when it runs with ``retain_graph=True``, so that another backward
    through the same graph may follow and saved buffers must stay as the forward left them."""
    return bool(_keep_graph())


def once_differentiable(op: str) -> None:
    """Refuse a backward with ``create_graph=True``: the fused backward passes are not
    themselves differentiable, and second-order gradients must not silently miss terms. Every
    backend behaves the same (the torch backend's results carry the same guard)."""
    if torch.is_grad_enabled() and not compiling():
        raise RuntimeError(
            f"fastvae.{op} is not twice differentiable: backward with create_graph=True (higher-order "
            f"gradients, gradient penalties) is refused on every backend; use fastvae.reference.{op}, "
            "the plain PyTorch twin, for those")


class _Guard(torch.autograd.Function):
    """Identity whose backward applies ``once_differentiable``: the torch backend's results
    behave like the kernels' under ``create_graph=True``."""

    @staticmethod
    def forward(ctx, op, *tensors):
        ctx.op = op
        ctx.set_materialize_grads(False)
        out = tuple(t.view_as(t) for t in tensors)
        return out if len(out) > 1 else out[0]

    @staticmethod
    def backward(ctx, *grads):
        once_differentiable(ctx.op)
        return (None, *grads)


def guard(op: str, out):
    """``out`` (a tensor or a tuple of tensors) from the reference, under the fused ops' rules."""
    if compiling() or not torch.is_grad_enabled():
        return out
    tensors = out if isinstance(out, tuple) else (out,)
    if not any(t.requires_grad for t in tensors):
        return out
    res = _Guard.apply(op, *tensors)
    return res if isinstance(out, tuple) else res


# ---------------------------------------------------------------------------------- the seed

@torch.library.custom_op("fastvae::draw_seed", mutates_args=(), tags=(torch.Tag.nondeterministic_seeded,))
def _draw_seed(device: torch.device) -> Tensor:
    """One int64 on ``device`` from PyTorch's default generator for that device: no host sync,
    reproducible under ``torch.manual_seed``, and the same in eager and compiled code."""
    return torch.randint(0, 2**63 - 1, (1,), device=device, dtype=torch.int64)


@_draw_seed.register_fake
def _(device):
    return torch.empty(1, device=device, dtype=torch.int64)


def draw_seed(device, generator=None) -> Tensor:
    """The Philox key of one call's noise: an int64 device tensor drawn from ``generator`` (or
    the device's default generator), so ``torch.manual_seed`` reproduces the noise."""
    if generator is None and compiling():
        return _draw_seed(device)
    return torch.randint(0, 2**63 - 1, (1,), device=device, dtype=torch.int64, generator=generator)
