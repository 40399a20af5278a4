"""Shared test utilities: the named tolerances (every tolerance the op tests share is defined
here, once), float64 comparison, and fresh inputs."""

from typing import NamedTuple

import torch


class Tol(NamedTuple):
    rtol: float
    atol: float

    @property
    def kw(self):
        """As keyword arguments of ``torch.testing.assert_close`` / ``torch.allclose``."""
        return dict(rtol=self.rtol, atol=self.atol)


# Outputs stored in each dtype, compared with a float64 reference computed from the same
# (already rounded) inputs. Sums stored in float32 use the float32 row; ``assert_close64``'s
# ``scale`` widens atol for sums of many terms. (Triton's interpreter truncates float32 to
# bfloat16 where a GPU rounds to nearest: the bfloat16 row allows for it.)
TOL = {
    torch.float64: Tol(1e-10, 1e-10),
    torch.float32: Tol(2e-5, 2e-5),
    torch.bfloat16: Tol(1.6e-2, 1e-2),
    torch.float16: Tol(2e-3, 2e-3),
}
# two float32 computations of one value that sum in different orders (eager vs compiled, the
# fused path vs the reference path on the same noise), and their gradients
SAME_FLOAT32 = Tol(1e-5, 1e-5)
SAME_FLOAT32_GRAD = Tol(1e-4, 1e-5)
# values spanning many magnitudes (tiny KLs, well-fit pixels): relative error only
RELATIVE_FLOAT32 = Tol(1e-5, 0.0)


def assert_close64(actual, expected, dtype=None, scale=1.0, msg=""):
    """Compare ``actual`` with a float64 ``expected`` at the tolerance of ``dtype``
    (default: actual's dtype); ``scale`` widens atol for sums of many terms."""
    dtype = dtype or actual.dtype
    rtol, atol = TOL[dtype]
    assert actual.shape == expected.shape, f"{msg}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    torch.testing.assert_close(actual.double(), expected.double(), rtol=rtol, atol=atol * scale,
                               msg=lambda m: f"{msg}: {m}")


def sum_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def randn(shape, dtype, device, scale=1.0, noncontig=False):
    """Fresh normal values of ``dtype``; with ``noncontig`` a transposed, sliced view of a larger
    buffer (never contiguous) holding the same kind of values."""
    if not noncontig:
        return (torch.randn(shape, device=device) * scale).to(dtype)
    rev = tuple(reversed(shape))
    big = (torch.randn(rev[:-1] + (rev[-1] * 2,), device=device) * scale).to(dtype)
    view = big[..., ::2].permute(*reversed(range(len(shape))))
    assert view.shape == tuple(shape) and (view.numel() <= 1 or not view.is_contiguous())
    return view
