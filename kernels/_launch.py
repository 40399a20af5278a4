"""Host-side launch helpers shared by the kernels: tile choice and the one call into Triton.

Every kernel walks rows in blocks of ``BLOCK_B`` rows (one program per block) and, inside a
row, the D columns in chunks of ``BLOCK_D``. D is a compile-time constant (Triton's
interpreter on triton 3.6 fails on run-time loop bounds), and ``BLOCK_D`` is the largest power
of two that divides D, up to 256: D = 784 gives 49 chunks of 16, so no lane is ever masked off,
each thread holds four consecutive elements of a row (16-byte loads and stores of fp32), and
every tensor of the kernel has the same layout (no shuffle through shared memory). D with no
power-of-two factor of at least 16 gets chunks of 16 and a masked last chunk.
"""

import functools
import inspect
import warnings

import torch
import triton
import triton.language as tl

from ._env import INTERPRET, sum_dtype

INTERPRETING = tl.constexpr(INTERPRET)  # for kernels: the interpreter hands scalars over as Python floats
MAX_BLOCK_D = 256
GPU_TILE = 1024        # elements of one chunk: 4 per thread at 8 warps
# The interpreter costs ~1 ms per program instance whatever the tile: larger tiles there.
_INTERPRET_TILE = 16384


_ITEMSIZE = {torch.float16: 2, torch.bfloat16: 2, torch.float32: 4, torch.float64: 8}


def chunk_elems(dtype):
    """Elements of one chunk for ``tile``'s ``max_elems``: 16 bytes per thread at 8 warps (fp32:
    1024, bf16/fp16: 2048)."""
    return max(1024, 4096 // _ITEMSIZE[dtype])


@functools.lru_cache(maxsize=None)
def _constexpr_names(kernel):
    return tuple(n for n, p in inspect.signature(kernel.fn).parameters.items()
                 if p.annotation is tl.constexpr or "constexpr" in str(p.annotation))


def bind(kernel, meta):
    """``meta`` (name -> value: every compile-time argument of ``kernel``, and ``num_warps``) as
    ``launch`` takes it: ``(values in the kernel's order, num_warps)``. The launchers call it
    inside their cached plans, once per shape and flags, so that a launch passes its
    compile-time arguments by position: a dozen keyword arguments, packed into a dict again at
    each call layer, cost microseconds of host time per launch."""
    names, meta = _constexpr_names(kernel), dict(meta)
    warps = meta.pop("num_warps", 4)
    if set(names) != set(meta):
        raise ValueError(f"{kernel.__name__}: compile-time arguments missing or unknown: "
                         f"{sorted(set(names) ^ set(meta))}")
    return tuple(meta[n] for n in names), warps


def constants(kernel, bound):
    """The compile-time arguments of a ``bind`` result by name (for tools that inspect launches)."""
    return dict(zip(_constexpr_names(kernel), bound[0]), num_warps=bound[1])


def launch(kernel, programs, args, bound):
    """Run ``kernel`` over the grid ``(programs,)`` (or a tuple) with its run-time ``args`` and
    ``bound = bind(kernel, meta)``: the one place where fastvae hands work to Triton
    (``JITFunction.run``, which ``kernel[grid](...)`` calls, without the lambda in between).
    Through Triton's interpreter, which evaluates both sides of a ``tl.where`` with NumPy, the
    side a kernel drops (1/l at l = 0, beside the series used there) may divide by 0 and warn;
    the result is exact, so those RuntimeWarnings are silenced for this launch only (never
    globally). Compiled kernels get nothing added."""
    consts, warps = bound
    grid = programs if isinstance(programs, tuple) else (programs,)
    if not INTERPRET:
        return kernel.run(*args, *consts, grid=grid, warmup=False, num_warps=warps)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"triton\.runtime\.interpreter")
        return kernel.run(*args, *consts, grid=grid, warmup=False, num_warps=warps)


def _pow2(name, v):
    if v < 1 or v & (v - 1):
        raise ValueError(f"{name} must be a power of two, got {v}")
    return v


def block_cols_for(n_cols: int) -> int:
    """The column chunk: the largest power of two dividing ``n_cols`` (at most 256), or 16
    (a masked last chunk) when that is below 16. The interpreter, whose cost is per operation,
    takes a row in one masked chunk of up to 1024 (the tests force the GPU's chunking with
    ``block_cols``)."""
    if INTERPRET:
        return min(triton.next_power_of_2(max(n_cols, 1)), 1024)
    even = min(n_cols & -n_cols, MAX_BLOCK_D) if n_cols else 1
    return even if even >= min(16, triton.next_power_of_2(max(n_cols, 1))) else 16


@functools.lru_cache(maxsize=1024)
def tile(n_rows: int, n_cols: int, block_rows=None, block_cols=None, max_elems=GPU_TILE):
    """``(BLOCK_B, BLOCK_D, num_warps)`` for a (n_rows, n_cols) row reduction, with chunks of
    about ``max_elems`` elements (pass ``4096 // itemsize`` for 16 bytes per thread at 8 warps);
    ``block_rows`` / ``block_cols`` (powers of two) override, which the tests use to force
    several chunks."""
    cols = _pow2("block_cols", block_cols) if block_cols else block_cols_for(n_cols)
    if block_rows:
        rows = _pow2("block_rows", block_rows)
    else:
        budget = _INTERPRET_TILE if INTERPRET else max_elems
        rows = max(1, min(triton.next_power_of_2(max(n_rows, 1)), budget // cols))
    warps = max(1, min(8, rows * cols * 8 // max_elems))  # max_elems / 256 elements per thread
    return rows, cols, warps


def loop_meta(n_rows: int, n_cols: int, rows: int, cols: int, max_unroll: int = 8) -> dict:
    """``EVEN``: no lane of any chunk is masked (rows and columns divide evenly), so loads and
    stores take no mask; ``UNROLL``: how many column chunks one trip of the loop handles (a
    divisor of their number, at most ``max_unroll``), so the loop's bookkeeping is paid once per
    UNROLL chunks."""
    trips = -(-n_cols // cols)
    return dict(EVEN=n_rows % rows == 0 and n_cols % cols == 0,
                UNROLL=max(u for u in range(1, max_unroll + 1) if trips % u == 0))


@triton.jit
def load(ptrs, mask, EVEN: tl.constexpr):
    """``tl.load`` with ``mask`` (0 where masked), or without one when ``EVEN``."""
    if EVEN:
        return tl.load(ptrs)
    else:
        return tl.load(ptrs, mask=mask, other=0)


@triton.jit
def store(ptrs, value, mask, EVEN: tl.constexpr):
    """``tl.store`` with ``mask``, or without one when ``EVEN``."""
    if EVEN:
        tl.store(ptrs, value)
    else:
        tl.store(ptrs, value, mask=mask)


@functools.lru_cache(maxsize=1024)
def column_order(shape: tuple, strides: tuple) -> tuple:  # noqa: D401
    """The order in which a kernel walks the non-batch dims of a (B, ...) tensor: its memory
    order (strides from large to small, ties in dim order), so a channels-last or otherwise
    permuted tensor is read as the dense rows it is in memory, never copied first."""
    return tuple(sorted(range(1, len(shape)), key=lambda d: -strides[d]))


@functools.lru_cache(maxsize=1024)
def column_levels(shape: tuple, strides: tuple, order: tuple):
    """Column j of a row, walked in ``order``, sits at ``(j // (N2*N3))*s1 + (j // N3 % N2)*s2 +
    (j % N3)*s3``: returns ``((s1, s2, s3), (N2, N3))``, merging dims that are contiguous with
    each other, or None when more than three levels remain (the caller then copies)."""
    levels = []
    for d in order:
        if shape[d] == 1:
            continue
        if levels and levels[-1][1] == strides[d] * shape[d]:
            levels[-1] = (levels[-1][0] * shape[d], strides[d])
        else:
            levels.append((shape[d], strides[d]))
    if len(levels) > 3:
        return None
    levels = [(1, 0)] * (3 - len(levels)) + levels
    return tuple(st for _, st in levels), (levels[1][0], levels[2][0])


def rows_in_order(t, order):
    """``t`` (B, ...) addressed in ``order``: ``(tensor, row stride, (s1, s2, s3), (N2, N3))``;
    ``tensor`` is ``t`` itself, or, for a stride pattern beyond three levels, a copy of it laid
    out densely in ``order`` (never for 2-, 3- or 4-D inputs)."""
    levels = column_levels(tuple(t.shape), tuple(t.stride()), order)
    if levels is None:
        t = t.permute(0, *order).contiguous().permute(0, *inverse(order))
        levels = column_levels(tuple(t.shape), tuple(t.stride()), order)
    return t, t.stride(0) if t.dim() else 0, levels[0], levels[1]


@functools.lru_cache(maxsize=1024)
def inverse(order: tuple) -> tuple:
    """The permutation of dims 1.. that undoes ``t.permute(0, *order)``."""
    inv = [0] * len(order)
    for i, d in enumerate(order):
        inv[d - 1] = i + 1
    return tuple(inv)


def empty_in_order(like, order, dtype=None):
    """A new tensor of ``like``'s shape, dense in ``order`` (the order the kernels write)."""
    shape = like.shape
    if order == tuple(range(1, len(shape))):
        return torch.empty(shape, dtype=dtype or like.dtype, device=like.device)
    t = torch.empty((shape[0], *(shape[d] for d in order)), dtype=dtype or like.dtype, device=like.device)
    return t.permute(0, *inverse(order))


def memory_order(t, symbolic=False) -> tuple:
    """``column_order`` of ``t``; ``symbolic``: without its cache, for the fake functions of the
    custom ops, whose symbolic sizes under dynamic shapes cannot be hashed (found by
    ``torch.library.opcheck``: ``torch.compile(dynamic=True)`` failed in backward)."""
    return (column_order.__wrapped__ if symbolic else column_order)(tuple(t.shape), tuple(t.stride()))


@triton.jit
def column_offsets(cols, s1, s2, s3, N2: tl.constexpr, N3: tl.constexpr):
    """Memory offsets of columns ``cols`` of a row (see ``column_levels``)."""
    if N2 == 1 and N3 == 1:
        return cols * s1
    else:
        return (cols // (N2 * N3)) * s1 + ((cols // N3) % N2) * s2 + (cols % N3) * s3


def acc_dtype(torch_dtype):
    """The Triton compute dtype of ``sum_dtype``: float64 for float64, else float32."""
    return tl.float64 if sum_dtype(torch_dtype) == torch.float64 else tl.float32
