"""What the kernels' host code shares with the layers above, importable without Triton: the
environment switch for Triton's interpreter, the dtype rule of per-row sums, and the channels
of a discretized logistic mixture's parameters.

``fastvae`` imports these from here (never the other way round): ``kernels/`` stands alone.
"""

import os

import torch

_TRUE = ("1", "true", "on", "yes")

# TRITON_INTERPRET as it was when this module was first imported: the kernels run through
# Triton's interpreter (on CPU tensors) instead of being compiled
INTERPRET = os.environ.get("TRITON_INTERPRET", "0").strip().lower() in _TRUE


def sum_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype sums and the per-row results are formed in: float64 for float64, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def mixture_channels(entries: int, num_mixtures: int):
    """C of a discretized logistic mixture whose parameters hold ``entries`` values along their
    channel dim for ``num_mixtures`` mixtures: 3 (10 M: logits, and per channel means, log-scales
    and coefficients), 1 (3 M: no coefficients), None for any other count."""
    # comparisons, not a dict lookup: a fake function's symbolic sizes cannot be hashed
    return 3 if entries == 10 * num_mixtures else 1 if entries == 3 * num_mixtures else None
