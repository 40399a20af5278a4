"""The backward passes over the gradients ``likelihood.py``'s kernel stored.

* ``scale_rows``: ``grad[b] * g[b] / s`` for the upstream gradient g, in place or into a new
  buffer. Programs whose rows all got the upstream gradient the forward already applied
  (``g == s``, checked on the device) return at once, so the usual ``loss.backward()`` reads
  only g. It can also write ``g[b] * aux_scale`` (another gradient of the same upstream one,
  the KL's in the ELBO), which then needs no launch of its own.
* ``sum_partials``: a logscale shared by the rows gets its gradient as per-program partial sums
  over the rows; this sums them over the programs.
"""

import functools

import torch
import triton
import triton.language as tl

from . import _launch
from ._launch import acc_dtype, chunk_elems, column_order, INTERPRETING, tile


@triton.jit
def _sum_partials_kernel(part_ptr, out_ptr, P, D, TRIPS: tl.constexpr, BLOCK_P: tl.constexpr,
                         BLOCK_D: tl.constexpr):
    # out[d] = sum_p part[p, d]: the shared logscale's gradient from the programs' partial sums.
    # TRIPS (a power of two >= cdiv(P, BLOCK_P)) bounds the loop at compile time: a runtime
    # bound breaks the interpreter of triton 3.6 under numpy >= 2.4; the mask drops the excess.
    cols = tl.program_id(0).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D)
    acc = tl.zeros([BLOCK_P, BLOCK_D], part_ptr.dtype.element_ty)
    for t in range(TRIPS):
        r = t * BLOCK_P + tl.arange(0, BLOCK_P)
        mask = (r < P)[:, None] & (cols < D)[None, :]
        acc += tl.load(part_ptr + r[:, None].to(tl.int64) * D + cols[None, :], mask=mask, other=0.0)
    tl.store(out_ptr + cols, tl.sum(acc, axis=0), mask=cols < D)


@triton.jit
def _scale_rows_kernel(
    grad_ptr, out_ptr, g_ptr, aux_ptr, B, stride_g, grad_scale: tl.float64, aux_scale: tl.float64,
    D: tl.constexpr, ACC: tl.constexpr, IN_PLACE: tl.constexpr, HAS_AUX: tl.constexpr, CHECK_ROWS: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
):
    # out[b, :] = grad[b, :] * g[b] / s for the CHECK_ROWS rows of this program. In place, the
    # program returns at once when g[b] == s for all of them (the usual case: the forward
    # already applied the expected upstream gradient), so that case costs B / CHECK_ROWS
    # programs reading g. NaN != s: a NaN upstream gradient is applied, never skipped. HAS_AUX:
    # also aux[b] = g[b] * aux_scale (another gradient of the same upstream one, no launch of its own).
    if not INTERPRETING:
        grad_scale, aux_scale = grad_scale.to(ACC), aux_scale.to(ACC)
    first = tl.program_id(0).to(tl.int64) * CHECK_ROWS
    chk = first + tl.arange(0, CHECK_ROWS)
    g_all = tl.load(g_ptr + chk * stride_g, mask=chk < B, other=grad_scale).to(ACC)
    if HAS_AUX:
        tl.store(aux_ptr + chk, (g_all * aux_scale).to(aux_ptr.dtype.element_ty), mask=chk < B)
    n_differ = tl.sum((g_all != grad_scale).to(tl.int32), axis=0)
    if not IN_PLACE:
        n_differ += 1  # a new buffer: every row is written
    if n_differ > 0:
        for r0 in range(0, CHECK_ROWS, BLOCK_B):
            rows = first + r0 + tl.arange(0, BLOCK_B)
            row_ok = rows < B
            factor = tl.load(g_ptr + rows * stride_g, mask=row_ok, other=grad_scale).to(ACC) / grad_scale
            for c0 in range(0, D, BLOCK_D):
                cols = c0 + tl.arange(0, BLOCK_D)
                mask = row_ok[:, None] & (cols < D)[None, :]
                offs = rows[:, None] * D + cols[None, :]
                v = tl.load(grad_ptr + offs, mask=mask, other=0.0).to(ACC) * factor[:, None]
                tl.store(out_ptr + offs, v.to(out_ptr.dtype.element_ty), mask=mask)



def sum_partials(part, like):
    """The per-program partial sums (P, D) of ``likelihood(..., gs_mode=2)`` summed over the
    programs: a tensor of ``like.shape[1:]`` in the partials' dtype (``like``: the parameters)."""
    P, D = part.shape
    out = torch.empty(D, device=part.device, dtype=part.dtype)
    if D:
        bp, bd = min(64, 1 << max(P - 1, 0).bit_length()), min(256, 1 << max(D - 1, 0).bit_length())
        trips = 1 << max(-(-P // bp) - 1, 0).bit_length()
        _launch.launch(_sum_partials_kernel, -(-D // bd), (part, out, P, D),
                       _launch.bind(_sum_partials_kernel, dict(TRIPS=trips, BLOCK_P=bp, BLOCK_D=bd, num_warps=4)))
    order = column_order(tuple(like.shape), like.stride())
    return out.view(*(like.shape[d] for d in order)).permute(*(i - 1 for i in _launch.inverse(order)))


@functools.lru_cache(maxsize=1024)
def _scale_plan(B, D, dtype, block_rows, block_cols, in_place, has_aux):
    rows, cols, warps = tile(B, D, block_rows, block_cols, chunk_elems(dtype))
    check = max(rows, min(256, 1 << (B - 1).bit_length()))
    return -(-B // check), _launch.bind(_scale_rows_kernel, dict(
        D=D, ACC=acc_dtype(dtype), IN_PLACE=in_place, HAS_AUX=has_aux, CHECK_ROWS=check, BLOCK_B=rows, BLOCK_D=cols,
        num_warps=warps))


def scale_rows(grad, g, grad_scale=1.0, in_place=True, aux_scale=None, block_rows=None, block_cols=None):
    """``grad[b] * g[b] / grad_scale``: in place (programs whose rows all have g == grad_scale
    return at once, so the expected upstream gradient costs no pass), or into a new buffer
    (``in_place=False``: the stored buffer stays as it was, for another backward).

    grad: a gradient ``likelihood`` stored (dense rows); g: (B,) upstream gradient, any stride
    (an expanded scalar has stride 0), or a 0-d tensor (the same for every row). No host
    synchronisation. Returns the result; with ``aux_scale`` (a number) ``(result, aux)``, aux
    (B,) in g's dtype = ``g[b] * aux_scale``, formed by the same launch.
    """
    B = grad.shape[0]
    out = grad if in_place else torch.empty_like(grad)
    aux = None if aux_scale is None else torch.empty(B, device=g.device, dtype=g.dtype)
    if B == 0 or grad.numel() == 0:
        return out if aux is None else (out, aux.copy_(g * aux_scale))
    programs, bound = _scale_plan(B, grad.numel() // B, torch.float64 if g.dtype == torch.float64 else grad.dtype,
                                  block_rows, block_cols, in_place, aux is not None)
    _launch.launch(_scale_rows_kernel, programs, (grad, out, g, g if aux is None else aux, B,
                                                  g.stride(0) if g.dim() else 0, float(grad_scale),
                                                  0.0 if aux is None else float(aux_scale)), bound)
    return out if aux is None else (out, aux)
