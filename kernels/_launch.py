"""Block-size choice shared by the launchers (host side only)."""

import triton
import triton.language as tl

from .._backend import INTERPRET
from .._rows import sum_dtype

# Kernels decorated while TRITON_INTERPRET=1 run on CPU tensors through NumPy. The
# interpreter costs ~1 ms per program instance whatever the block size, so it gets
# larger tiles (fewer programs); a GPU gets tiles that keep registers in budget.

MAX_BLOCK_COLS = 1024
# Elements per program on a GPU. Streaming kernels get 4096 (16 per thread at 8 warps, 122
# registers for the Bernoulli forward on sm_90); kernels that run Philox per element get 1024
# (4 per thread): at 4096 the Gaussian kernels needed 255 registers and spilled 168 bytes of
# stack (cuobjdump --dump-resource-usage of the sm_90 cubin, triton 3.9, 2026-11-23).
STREAM_TILE = 4096
RNG_TILE = 1024
_INTERPRET_TILE = 16384


def tile(n_rows: int, n_cols: int, block_rows=None, block_cols=None, max_elems=STREAM_TILE):
    """Return (BLOCK_ROWS, BLOCK_COLS, num_warps) for a (n_rows, n_cols) row-reduction.

    Rows are tiled several per program when the row is short; columns loop in blocks of at
    most MAX_BLOCK_COLS. ``max_elems`` bounds a tile on a GPU (the interpreter, whose cost is
    per program, gets larger tiles). ``block_rows``/``block_cols`` override (powers of two),
    which the tests use to force the column loop on small shapes.
    """
    max_elems = _INTERPRET_TILE if INTERPRET else max_elems
    if block_cols is None:
        block_cols = min(triton.next_power_of_2(max(n_cols, 1)), MAX_BLOCK_COLS, max_elems)
    if block_rows is None:
        block_rows = max(1, min(triton.next_power_of_2(max(n_rows, 1)), max_elems // block_cols))
    for name, v in (("block_rows", block_rows), ("block_cols", block_cols)):
        if v < 1 or v & (v - 1):
            raise ValueError(f"{name} must be a power of two, got {v}")
    num_warps = 8 if block_rows * block_cols >= 1024 else 4
    return block_rows, block_cols, num_warps


def acc_dtype(torch_dtype):
    """The Triton compute dtype of ``fastvae._rows.sum_dtype``: float64 for float64, else float32."""
    import torch

    return tl.float64 if sum_dtype(torch_dtype) == torch.float64 else tl.float32
