"""The negative ELBO's reconstruction term and reduction as one eager autograd node.

``loss = reduce(beta * kl - ll)`` with ``ll`` from the fused log-likelihood kernel: one
``torch.autograd.Function`` computes ll (storing its gradient pre-scaled by the upstream
gradient ``loss.backward()`` will send) and the reduction, and its backward hands the stored
gradient back (the kernel returns at once when the upstream gradient is exactly 1) and
``beta * dloss/drow`` to kl. Compared with a chain of small ops this saves their dispatch and
autograd nodes on the host, which decides the speed at small batches. Under ``torch.compile``
the loss is composed of the log-likelihood's custom op and plain torch glue instead (the
compiler fuses the glue), see ``fastvae.loss``.
"""

import torch

from .._rows import reduce_rows, sum_dtype
from ._route import graph_kept, kernels, once_differentiable


def _row_weight(reduction, B):
    # d loss / d row: 1/B for 'mean', 1 for 'sum' and 'none' (times the upstream gradient)
    return 1.0 / B if (reduction == "mean" and B > 0) else 1.0


class fastvae_elbo(torch.autograd.Function):  # noqa: N801 - the name grad_fn shows
    """(logits, x, kl, beta, reduction) -> (loss, ll): ``loss = reduce(beta * kl - ll)``."""

    @staticmethod
    def forward(ctx, logits, x, kl, beta, reduction):
        B = logits.shape[0]
        w = _row_weight(reduction, B)
        store = logits.requires_grad and logits.dtype != torch.float16
        if kl.dtype == sum_dtype(logits.dtype):  # the rows beta * kl - ll formed in the kernel's pass
            ll, grad, rows = kernels().bernoulli_ll_fwd(logits, x, -w, store, kl, beta)
        else:  # kl float64 with float32 sums: promoted as the reference does
            ll, grad = kernels().bernoulli_ll_fwd(logits, x, -w, store)
            rows = beta * kl - ll
        loss = reduce_rows(rows, reduction)
        recompute = logits.requires_grad and not store
        ctx.save_for_backward(grad if store else None, logits if recompute or x.requires_grad else None,
                              x if recompute else None)
        ctx.beta, ctx.w, ctx.store, ctx.x_dtype, ctx.reduction, ctx.B = beta, w, store, x.dtype, reduction, B
        ctx.mark_non_differentiable(grad)
        ctx.set_materialize_grads(False)
        return loss, ll

    @staticmethod
    def backward(ctx, g_loss, g_ll):
        once_differentiable("elbo_loss")
        grad, logits, x = ctx.saved_tensors
        # the upstream of ll per row, in units of the -w the forward folded into the stored
        # gradient: g_loss itself (a 0-d tensor reads as stride 0: every row the same)
        if g_ll is None:
            factor = g_loss
        else:
            factor = g_ll / -ctx.w if g_loss is None else g_loss - g_ll / ctx.w
        grad_logits = grad_x = grad_kl = None
        if factor is not None and ctx.needs_input_grad[0]:
            if ctx.store:
                grad_logits = kernels().bernoulli_ll_scale_grad(grad, factor, 1.0, in_place=not graph_kept())
            else:
                grad_logits = kernels().bernoulli_ll_bwd(logits, x, factor * -ctx.w)
        if factor is not None and ctx.needs_input_grad[1]:
            u = (factor * -ctx.w).expand(ctx.B) if factor.dim() == 0 else factor * -ctx.w
            grad_x = (u.view((-1,) + (1,) * (logits.dim() - 1)) * logits).to(ctx.x_dtype)
        if g_loss is not None and ctx.needs_input_grad[2]:
            grad_kl = g_loss * (ctx.beta * ctx.w)
            grad_kl = grad_kl.expand(ctx.B) if grad_kl.dim() == 0 else grad_kl
        return grad_logits, grad_x, grad_kl, None, None
