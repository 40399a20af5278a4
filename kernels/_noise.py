"""The noise of the Gaussian kernels, drawn in registers and drawn again in backward.

Element (b, j) of a (B, L) latent, sample k, takes output ``j // Q`` of the Philox-4x32-10 block
at counter ``(j % Q, b mod 2**32, b >> 32, k)`` under the 64-bit key ``seed``, with
``Q = 4 * ceil(L / 16)``: one Philox call feeds four elements (one in each quarter of the row,
so the four quarters are four contiguous column ranges, read with 16-byte loads), and each pair
of its 32-bit outputs becomes two normals by Box-Muller (``sqrt(-2 ln u1) * (cos, sin)(2 pi u2 -
pi)``), the logarithm, sine and cosine short polynomials (1e-6 relative, 5e-8 absolute), the
square root the GPU's special-function unit. The normals are float32 whatever the input dtype;
sample 0 is ``reparameterize_kl``'s noise.

The kernels that draw this noise (``gaussian.py``, ``importance.py``) share its tiling: a
program takes ``BLOCK_B`` rows and walks ``q`` over the Q counters of a row in chunks of
``BLOCK_Q``; for each chunk one Philox call gives the four quarters' normals, column ``i * Q + q``
of quarter i (``quarter_plan``).
"""

import functools

import triton
import triton.language as tl

from . import _launch
from ._env import INTERPRET
from ._launch import acc_dtype
from ._math import LOG2E, log_pos


@triton.jit
def _radius(a):
    # sqrt(-2 ln u), u = (a + 0.5) / 2**32 in (0, 1] for a uint32 a
    u = a.to(tl.float32) * 2.3283064365386963e-10 + 1.1641532182693481e-10
    return tl.sqrt(-2.0 * log_pos(u))


@triton.jit
def _turn(b):
    # (cos, sin)(2 pi t) for t = b / 2**32 - 1/2: half-angle polynomials in t (5e-8), doubled
    t = b.to(tl.float32) * 2.3283064365386963e-10 - 0.5
    t2 = t * t
    s = 0.07756040 * t2 - 0.59824216
    s = s * t2 + 2.5500698
    s = s * t2 - 5.1677098
    s = (s * t2 + 3.1415927) * t  # sin(pi t)
    c = 0.21969683 * t2 - 1.3318802
    c = c * t2 + 4.058412
    c = c * t2 - 4.934793
    c = c * t2 + 0.99999994  # cos(pi t)
    return 1.0 - 2.0 * (s * s), 2.0 * (s * c)


@triton.jit
def normals(seed, rows, q, sample):
    # four [rows, q] blocks of N(0, 1), for the quarters 0..3 of sample `sample` (module docstring)
    zero = tl.zeros([rows.shape[0], q.shape[0]], dtype=tl.uint32)
    c0 = q.to(tl.uint32)[None, :] + zero
    c1 = rows.to(tl.uint32)[:, None] + zero
    c2 = (rows >> 32).to(tl.uint32)[:, None] + zero
    r0, r1, r2, r3 = tl.philox(seed, c0, c1, c2, zero + sample)
    ra, rb = _radius(r0), _radius(r2)
    ca, sa = _turn(r1)
    cb, sb = _turn(r3)
    return ra * ca, ra * sa, rb * cb, rb * sb


@triton.jit
def normals_or_zeros(seed, rows, q, sample, DRAW: tl.constexpr):
    # the four quarters' normals where DRAW, else four blocks of zeros (a caller that reads its
    # own eps, or needs none): a tuple, indexed by quarter
    if DRAW:
        return normals(seed, rows, q, sample)
    else:
        zero = tl.zeros([rows.shape[0], q.shape[0]], tl.float32)
        return zero, zero, zero, zero


@triton.jit
def std_of(lv, ACC: tl.constexpr):
    # exp(lv / 2); its square is exp(lv) for the KL
    if ACC == tl.float64:
        return tl.exp(0.5 * lv)
    else:
        return tl.exp2(lv * (0.5 * LOG2E))


def _pow2_at_least(n):
    return 1 << max(n - 1, 0).bit_length()


@functools.lru_cache(maxsize=1024)
def quarter_plan(kernel, B, L, dtype, flags, block_rows=None, block_cols=None):
    """``(programs, bound)`` of a launch of a noise-drawing ``kernel`` over (B, L) rows, once
    per key: Q (counters per row, the columns of one quarter), the tile (``BLOCK_Q`` counters
    by ``BLOCK_B`` rows, about 512 elements per quarter on a GPU), ``EVEN`` (no lane masked),
    and the kernel's own compile-time ``flags`` ((name, value) pairs), bound for
    ``_launch.launch``. ``block_rows`` / ``block_cols`` override the tile (tests)."""
    Q = 4 * -(-L // 16)
    bq = block_cols or min(_pow2_at_least(Q), 1024 if INTERPRET else 64)
    bb = block_rows or max(1, min(_pow2_at_least(B), (8192 if INTERPRET else 512) // bq))
    meta = dict(L=L, Q=Q, ACC=acc_dtype(dtype), BLOCK_B=bb, BLOCK_Q=bq, EVEN=B % bb == 0 and Q % bq == 0 and 4 * Q == L,
                num_warps=max(1, min(8, bb * bq // 128)), **dict(flags))
    return -(-B // bb), _launch.bind(kernel, meta)
