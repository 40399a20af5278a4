"""Before anything is timed: every implementation's values (outputs and gradients, same noise)
are compared with eager PyTorch's in float64; a difference stops the run. Also how a failing
call is reported (out of memory, or its error) without stopping the others."""

import math

import torch


class Mismatch(Exception):
    """An implementation disagrees with eager PyTorch: its timings would mean nothing."""


class Fatal(Exception):
    """Eager PyTorch or fastvae failed (not out of memory): the run stops, keeping what it has."""


def rel_err(a, b, chunk=2**24):
    """||a - b|| / ||b|| in float64, in chunks (no float64 copy of a whole large tensor);
    inf when anything is not finite."""
    a, b = a.detach().reshape(-1), b.detach().reshape(-1)
    if a.shape != b.shape:
        return math.inf
    num = den = 0.0
    for i in range(0, a.numel(), chunk):
        x, y = a[i:i + chunk].double(), b[i:i + chunk].double()
        num += (x - y).square().sum().item()
        den += y.square().sum().item()
    if not (math.isfinite(num) and math.isfinite(den)):
        return math.inf
    return math.sqrt(num) / max(math.sqrt(den), 1e-300)


def compare(label, names, got, want, baseline, tol):
    """Raise ``Mismatch`` naming the first value of ``got`` that differs from ``want``."""
    for name, a, b in zip(names, got, want):
        err = rel_err(a, b)
        if not err <= tol:  # NaN fails too
            raise Mismatch(f"{label}: {name} differs from {baseline}: relative error {err:.2e} "
                           f"(limit {tol:.0e})")


def is_oom(e):
    # cuBLAS/cuDNN report some allocation failures as a RuntimeError
    return isinstance(e, torch.OutOfMemoryError) or (isinstance(e, RuntimeError) and "out of memory" in str(e))


def guard(fn):
    """(value, None), or (None, 'oom' | error message); never swallows a Mismatch."""
    try:
        return fn(), None
    except Mismatch:
        raise
    except Exception as e:  # noqa: BLE001 - reported per variant in the results
        return None, "oom" if is_oom(e) else f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def check_all(c, variants, names, tol):
    """Run every variant once with the same noise and compare it with eager PyTorch (with the
    compiled reference where eager failed, e.g. out of memory).
    -> (impl -> error, impl -> "baseline", the impl it matched, or None when unchecked)."""
    errors, checked, want, baseline = {}, {}, None, None
    for impl, (check, _) in variants.items():
        got, err = guard(check)
        if err is not None:
            errors[impl] = err
            continue
        if want is None and impl in ("eager", "compile"):
            want, baseline = got, impl
            checked[impl] = "baseline"
        elif want is not None:
            compare(f"{c.op} {c.label()} {c.dtype}, {impl}", names, got, want, baseline, tol)
            checked[impl] = baseline
        else:
            checked[impl] = None
        del got
    return errors, checked


def stop_if_broken(c, results):
    """Raise ``Fatal`` when eager PyTorch or fastvae failed at ``c`` (not out of memory)."""
    failed = [f"{impl} {mode}: {v}" for impl in ("eager", "fastvae")
              for mode, v in results.get(impl, {}).items() if isinstance(v, str) and v != "oom"]
    if failed:
        raise Fatal(f"{c.op} {c.label()} {c.dtype}: " + "; ".join(failed))


def out_of_memory(results):
    return any(v == "oom" for r in results.values() for v in r.values())
