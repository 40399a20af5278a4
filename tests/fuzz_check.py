"""The differential check the fuzzing runs on each drawn case (``fuzz_cases.Spec``): every input
laid out in memory as drawn (``lay_out``), the fused op run on the kernels (with the tiles a GPU
would choose, when drawn: ``gpu_tiles``), every output given an upstream gradient of the drawn
kind, and value and gradients compared with the float64 reference computed from the same
(rounded) inputs, at the tolerances of ``helpers.TOL``."""

import contextlib
import functools
import sys

import torch

import fastvae
from fastvae import reference

from helpers import TOL

# the relative rounding error of one value of each dtype (bfloat16: the interpreter truncates)
ULP = {torch.float64: 2.0 ** -52, torch.float32: 2.0 ** -23, torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}
# how an input may sit in memory; ``layouts(shape)`` says which fit a shape
LAYOUTS = ("contiguous", "permuted", "batch-fastest", "channels-last", "expanded", "offset", "step-2")


def layouts(shape):
    """The layouts that make a distinct tensor of ``shape``."""
    n = len(shape)
    fits = {"contiguous": True, "permuted": n >= 3, "batch-fastest": n >= 2, "channels-last": n == 4,
            "expanded": n >= 1 and shape[0] > 1, "offset": n >= 1, "step-2": n >= 1}
    return tuple(name for name in LAYOUTS if fits[name])


def _fill(t):
    """What the memory around a view holds: NaN (floats) or 255 (bytes), so that a kernel
    reading past its view, or through a wrong stride, shows it."""
    return float("nan") if t.is_floating_point() else (255 if t.dtype == torch.uint8 else True)


def lay_out(t, layout):
    """``(base, view)``: a new tensor ``base`` and the function that views it as ``t``'s
    logical shape and values (``expanded``: ``t``'s first row for every row), laid out as
    ``layout`` says: ``permuted`` (non-batch dims in reverse memory order), ``batch-fastest``
    (all dims reversed: the batch has stride 1), ``channels-last``, ``expanded`` (stride 0
    over the rows), ``offset`` (inside a larger buffer, at an offset, every stride larger),
    ``step-2`` (every other element of the last dim)."""
    n, shape = t.dim(), tuple(t.shape)
    if layout in ("permuted", "batch-fastest", "channels-last"):
        perm = {"permuted": (0, *range(n - 1, 0, -1)), "batch-fastest": tuple(range(n - 1, -1, -1)),
                "channels-last": (0, 2, 3, 1)}[layout]
        inv = tuple(perm.index(d) for d in range(n))
        return t.permute(perm).contiguous(), lambda b: b.permute(inv)
    if layout == "expanded":
        return t[:1].clone(), lambda b: b.expand(shape)
    if layout == "offset":
        base = torch.full([s + 1 for s in shape], _fill(t), dtype=t.dtype)
        inner = (slice(1, None),) * n
        base[inner] = t
        return base, lambda b: b[inner]
    if layout == "step-2":
        base = torch.full((*shape[:-1], 2 * shape[-1]), _fill(t), dtype=t.dtype)
        base[..., ::2] = t
        return base, lambda b: b[..., ::2]
    return t.clone(), lambda b: b


def upstream(out, kind, gen):
    """The gradient sent back to output ``out`` (None: the output is not used): ``ones`` (what
    ``.sum()`` sends: stride 0), ``random``, ``strided`` (every other element of a larger
    buffer), ``zero``, ``bf16-strided`` (a strided bfloat16 buffer), ``scaled`` (3 everywhere,
    stride 0), ``one-row`` (ones but one element: a kernel that skips the programs whose rows
    all get 1 must not skip the one that gets another value)."""
    if kind == "none" or not out.is_floating_point():
        return None
    shape = tuple(out.shape)
    if kind in ("ones", "scaled"):
        return torch.full((), 1.0 if kind == "ones" else 3.0, dtype=out.dtype).expand(shape)
    if kind == "zero":
        return torch.zeros(shape, dtype=out.dtype)
    if kind == "one-row":
        g = torch.ones(shape, dtype=torch.float64)
        g.view(-1)[torch.randint(0, g.numel(), (), generator=gen)] = 2.0 + torch.rand((), generator=gen,
                                                                                    dtype=torch.float64)
        return g.to(out.dtype)
    g = torch.randn((*shape[:-1], 2 * shape[-1]) if shape else (), generator=gen, dtype=torch.float64)
    g = g[..., ::2] if shape else g
    return g.to(torch.bfloat16 if kind == "bf16-strided" else out.dtype)


@contextlib.contextmanager
def gpu_tiles(on=True):
    """Inside, the launchers choose the tiles a GPU launch gets (column chunks of the largest
    power of two dividing the row, or 16 with a masked last chunk; a GPU's rows per program)
    instead of the interpreter's one-chunk rows; the plans cached either way are dropped on
    the way in and out."""
    from fastvae.kernels import _launch, _noise

    if not on:
        yield
        return
    saved = _launch.INTERPRET, _noise.INTERPRET
    _clear_plans()
    _launch.INTERPRET = _noise.INTERPRET = False
    try:
        yield
    finally:
        _launch.INTERPRET, _noise.INTERPRET = saved
        _clear_plans()


def _clear_plans():
    for name, module in list(sys.modules.items()):
        if name.startswith("fastvae.kernels"):
            for value in vars(module).values():
                if isinstance(value, functools._lru_cache_wrapper):
                    value.cache_clear()


def assert_close(got, want, scale, what, tol_dtype=None, rtol_extra=0.0):
    """``got`` against the float64 ``want`` at the tolerance of ``tol_dtype`` (default: got's
    dtype), atol widened by ``scale``, rtol by ``rtol_extra`` (of the largest ``want``). Where
    ``want`` is beyond the range of got's dtype, got must be too (or not finite)."""
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)}, want {tuple(want.shape)}"
    dtype = got.dtype
    big = torch.finfo(dtype).max
    got, want = got.double(), want.double()
    beyond = want.abs() > big
    if beyond.any():
        bad = beyond & torch.isfinite(got) & (got.abs() < big / 2)
        assert not bad.any(), f"{what}: finite {got[bad][:4].tolist()} where the truth {want[bad][:4].tolist()} " \
                              f"is beyond the dtype's range"
        got, want = got.masked_fill(beyond, 0.0), want.masked_fill(beyond, 0.0)
    rtol, atol = TOL[tol_dtype or dtype]
    finite = want[torch.isfinite(want)]
    atol = atol * scale + rtol_extra * (finite.abs().max().item() if finite.numel() else 0.0)
    torch.testing.assert_close(got, want, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m: f"{what}: {m}")


def conditioning(entry, spec, outs64):
    """For entries whose results are weighted by a softmax of float32 (or float64) sums: the
    relative error those sums carry, ~4 ulp of the largest, which the weights, and everything
    they weight, inherit (at logits 1e4 or logscales -20 a row's log-likelihood reaches 1e5 to
    1e25, and its weights are then only as good as float32 makes them; at worst, 2: anything
    up to twice the largest truth, finite); and for an entry whose inputs are scaled by up to
    ``entry.steep`` (the mixture's 1 / scale, e^7 at the clamp), 4 ulp of that; 0 otherwise."""
    ulp = ULP[torch.float64 if spec.dtype == "float64" else torch.float32]
    steep = 4 * ulp * entry.steep  # an input's rounding times the steepest slope it meets
    if not entry.softmax:
        return steep
    mag = max((o.detach().abs().max().item() for o in outs64 if o.numel()), default=0.0)
    return max(steep, min(2.0, 4 * ulp * mag))


def scaled_targets(spec):
    """uint8 targets read as k / 255 at extreme values: the kernels round k / 255 to their float32
    (float64 for float64 inputs) arithmetic, the reference does not; where x - mean cancels, that
    half ulp of x shows in full, multiplied by the gradient's scale (e^40 at logscale -20). Held
    to a few ulp of the largest truth; 0 otherwise."""
    if spec.option("target") != "uint8" or spec.option("values") != "extreme":
        return 0.0
    return 4 * ULP[torch.float64 if spec.dtype == "float64" else torch.float32]


def _laid_out(made, spec):
    """Each input as drawn: (bases, views); a base is the tensor that owns the memory (and
    gets the gradient), its view what the op is given; values that are not tensors pass as
    they are."""
    bases, views = {}, {}
    for name, (t, grad) in made.items():
        if not isinstance(t, torch.Tensor):
            bases[name], views[name] = t, (lambda b: b)
            continue
        base, view = lay_out(t, dict(spec.layouts).get(name, "contiguous"))
        bases[name], views[name] = base.requires_grad_(grad and base.is_floating_point()), view
    return bases, views


def _backward(outs, grads):
    used = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
    if used:
        torch.autograd.backward([o for o, _ in used], [g for _, g in used])


def run(entry, spec):
    """The check of one drawn case: fused against float64 truth, values and gradients."""
    torch.manual_seed(spec.seed)
    gen = torch.Generator().manual_seed(spec.seed)
    bases, views = _laid_out(entry.tensors(spec), spec)
    noise = None
    if entry.noise is not None and spec.option("noise") == "drawn":
        torch.manual_seed(spec.seed + 1)  # the interpreter's tiles: the noise must not depend on them
        noise = entry.noise(spec)
    with gpu_tiles(spec.tiles == "gpu"):
        torch.manual_seed(spec.seed + 1)
        outs = entry.call(fastvae, spec, {n: views[n](b) for n, b in bases.items()})
        grads = [upstream(o, kind, gen) for o, kind in zip(outs, spec.upstream)]
        _backward(outs, grads)
    bases64 = {n: b.detach().double().requires_grad_(b.requires_grad)
               if isinstance(b, torch.Tensor) and b.is_floating_point() else b for n, b in bases.items()}
    inputs64 = {n: views[n](b) for n, b in bases64.items()}
    if noise is not None:
        inputs64["eps"] = noise.double()
    outs64 = entry.call(reference, spec, inputs64)
    _backward(outs64, [None if g is None else g.double() for g in grads])
    assert len(outs) == len(outs64) == len(spec.upstream)
    cond = conditioning(entry, spec, outs64)
    for i, (o, o64) in enumerate(zip(outs, outs64)):
        assert o.dtype == entry.out_dtype(spec, i), f"output {i}: dtype {o.dtype}, want {entry.out_dtype(spec, i)}"
        assert_close(o.detach(), o64.detach(), entry.out_scale(spec, i), f"{entry.name} output {i}",
                     entry.tol_dtype(spec, o.dtype))
    for name, b in bases.items():
        if not (isinstance(b, torch.Tensor) and b.requires_grad):
            continue
        want = bases64[name].grad
        if want is None:
            assert b.grad is None or not b.grad.any(), f"{name}: a gradient where the reference has none"
            continue
        assert b.grad is not None, f"{name}: no gradient, the reference has one"
        # an input read by several elements (expanded; K samples) sums their gradients: in half
        # precision each term's rounding (truncation, in the interpreter) adds up; in float32 a
        # sum of n terms carries ~n ulp of the largest, which cancellation can leave in a small
        # result (logvar 30 gives terms of 1e6)
        terms = views[name](b).numel() / max(1, b.numel()) * entry.grad_scale(spec, name)
        tol = entry.tol_dtype(spec, b.dtype)
        half = tol in (torch.bfloat16, torch.float16)
        summed = (ULP[tol] if half else 4 * ULP[tol]) * terms if terms > 1 else 0.0
        assert_close(b.grad, want, max(1.0, terms if half else terms / 8), f"{entry.name} gradient of {name}",
                     tol, max(cond, summed, scaled_targets(spec)))
