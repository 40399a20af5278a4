"""The negative ELBO's reconstruction term and reduction as one eager autograd node.

``loss = reduce(beta * kl - ll)`` with ``ll`` from the fused log-likelihood kernel, which also
forms the rows ``beta * kl - ll`` in its pass and stores the gradients pre-multiplied by the
upstream gradient ``loss.backward()`` will send. The backward hands the stored gradients back
(the kernels return at once when the upstream gradient is exactly 1) and ``beta * dloss/drow``
to kl. Compared with a chain of small ops this saves their dispatch and autograd nodes on the
host, which decides the speed at small batches. Under ``torch.compile`` the loss is composed of
the log-likelihood's custom op and plain torch glue instead (the compiler fuses the glue), see
``fastvae.loss``.
"""

import torch

from .._rows import reduce_rows, sum_dtype
from ..kernels import modes
from . import likelihood as _ll
from ._route import once_differentiable


def _row_weight(reduction, B):
    # d loss / d row: 1/B for 'mean', 1 for 'sum' and 'none' (times the upstream gradient)
    return 1.0 / B if (reduction == "mean" and B > 0) else 1.0


class fastvae_elbo(torch.autograd.Function):  # noqa: N801 - the name grad_fn shows
    """(settings, p, x, s, q, kl) -> (loss, ll): ``loss = reduce(beta * kl - ll)``; ``settings``
    is ``(likelihood record, s_value, beta, reduction)`` (one argument: each costs host time in
    ``apply``); s, q: the likelihood's logscale or log theta, and zero-inflation logits, or None."""

    @staticmethod
    def forward(ctx, settings, p, x, s, q, kl):
        spec, s_value, beta, reduction = settings
        B = p.shape[0]
        w = _row_weight(reduction, B)
        store = p.dtype != torch.float16
        fused = kl.dtype == sum_dtype(p.dtype)  # the rows formed (and reduced) in the kernel's pass
        # the scale folded into stored gradients reaches the kernel as float32: float64 folds
        # none (its backward rescales, exactly) rather than carry -1/B's float32 rounding
        folded = 1.0 if p.dtype == torch.float64 else -w
        ll, rows = _ll.forward(ctx, spec, p, x, s, s_value, folded, store, kl if fused else None, beta,
                               modes.REDUCTIONS[reduction], q=q)
        if not fused:  # kl float64 with float32 sums: promoted as the reference does
            rows = beta * kl - ll
        ctx.beta, ctx.w, ctx.B, ctx.unfolded = beta, w, B, -w / folded
        return rows if rows.dim() == 0 else reduce_rows(rows, reduction), ll

    @staticmethod
    def backward(ctx, g_loss, g_ll):
        once_differentiable("elbo_loss")
        # the upstream of ll per row, in units of the -w folded into the stored gradients:
        # g_loss itself (a 0-d tensor reads as stride 0: every row the same)
        if g_ll is None:
            factor = g_loss
        else:
            factor = g_ll / -ctx.w if g_loss is None else g_loss - g_ll / ctx.w
        gp = gx = gs = gq = grad_kl = None
        want_kl = g_loss is not None and ctx.needs_input_grad[5]
        # kl's gradient g_loss * beta * w comes out of the launch that rescales the stored
        # gradient where it reads that same upstream gradient (one launch fewer)
        aux = ctx.beta * ctx.w if want_kl and g_ll is None and ctx.unfolded == 1.0 else None
        if factor is not None:
            gp, gx, gs, gq, grad_kl = _ll.backward(ctx, factor if ctx.unfolded == 1.0 else factor * ctx.unfolded,
                                                   aux_scale=aux)
        if want_kl and grad_kl is None:
            grad_kl = g_loss * (ctx.beta * ctx.w)
            grad_kl = grad_kl.expand(ctx.B) if grad_kl.dim() == 0 else grad_kl
        return None, gp, gx, gs, gq, grad_kl
