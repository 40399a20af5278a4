"""How fastvae sees a (B, ...) tensor: B rows, per-row sums in the sum dtype, reductions.

One home for these rules, used by the references, the ops and the kernel launchers:

* the sum dtype: float64 stays float64, every other float dtype sums in float32 (the rule's
  home is the kernels' ``_env``, which the layers above import);
* a (B, ...) tensor is B rows of prod(...) elements; per-row results are (B,);
* ``reduction`` is ``'mean'`` over rows, ``'sum'`` or ``'none'``.

Pure torch (no triton), so ``import fastvae`` works without Triton.
"""

import math

import torch

from .kernels._env import sum_dtype

__all__ = ["as_rows", "per_row", "reduce_rows", "row_sum", "sum_dtype", "to_sum"]


def to_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` in its sum dtype (no copy when it already is)."""
    return t.to(sum_dtype(t.dtype))


def as_rows(t: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> a (B, N) view (a copy only when the strides allow no view)."""
    return t.reshape(t.shape[0], math.prod(t.shape[1:]))


def row_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over every non-batch dimension; (B,) stays (B,) (``sum(dim=())`` would sum all)."""
    return as_rows(t).sum(1)


def per_row(g: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) to broadcast against ``like``."""
    return g.view((-1,) + (1,) * (like.dim() - 1))


def reduce_rows(rows: torch.Tensor, reduction: str) -> torch.Tensor:
    """``'mean'`` over the batch, ``'sum'``, or ``'none'`` (the (B,) rows themselves)."""
    if reduction == "mean":
        return rows.mean()
    if reduction == "sum":
        return rows.sum()
    return rows
