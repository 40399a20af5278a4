"""Which implementation runs: the Triton kernels or plain PyTorch (``fastvae.reference``);
``implementation(tensor)`` says which one a given tensor gets.

``FASTVAE_BACKEND`` (read when fastvae is imported; change later with ``set_backend``):

* ``auto`` (default): CUDA tensors run the Triton kernels; CPU tensors run them through
  Triton's interpreter when ``TRITON_INTERPRET=1`` was set before fastvae was imported,
  and the reference otherwise. Other devices run the reference.
* ``triton``: always the kernels; a tensor they cannot run on raises ``RuntimeError``.
* ``torch``: always the reference.
"""

import contextlib
import importlib.util
import os

from .kernels._env import INTERPRET

BACKENDS = ("auto", "triton", "torch")

TRITON_AVAILABLE = importlib.util.find_spec("triton") is not None


def _validate(name):
    if not isinstance(name, str) or name.strip().lower() not in BACKENDS:
        raise ValueError(f"fastvae backend must be one of {BACKENDS}, got {name!r}")
    return name.strip().lower()


_backend = _validate(os.environ.get("FASTVAE_BACKEND", "auto") or "auto")


def get_backend() -> str:
    """The backend setting: ``auto``, ``triton`` or ``torch`` (what runs for a given tensor:
    ``implementation(tensor)``)."""
    return _backend


def implementation(t) -> str:
    """What fastvae's ops run for tensors like ``t`` under the current backend: ``"triton"``
    (the kernels, on CUDA), ``"triton-interpreter"`` (the kernels through Triton's interpreter,
    on CPU with ``TRITON_INTERPRET=1``) or ``"torch"`` (``fastvae.reference``, plain PyTorch).
    Raises ``RuntimeError`` where the ``triton`` backend cannot run (as the ops would)."""
    if not use_triton(t):
        return "torch"
    return "triton-interpreter" if t.device.type == "cpu" else "triton"


def set_backend(name: str) -> None:
    """Select the backend for all later calls (``auto``, ``triton`` or ``torch``)."""
    global _backend
    _backend = _validate(name)


@contextlib.contextmanager
def backend(name: str):
    """Context manager: run the enclosed calls with backend ``name``, then restore."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


_assume_kernels = False


@contextlib.contextmanager
def assume_kernels():
    """Private, for tools that trace with fake tensors (``benchmarks/count_bytes.py``): take the
    kernel path on any device. Fake tensors dispatch to the ops' fake implementations, so no
    kernel is launched."""
    global _assume_kernels
    previous, _assume_kernels = _assume_kernels, True
    try:
        yield
    finally:
        _assume_kernels = previous


def use_triton(t) -> bool:
    """True when the op on tensor ``t`` should run the Triton kernels."""
    if _backend == "torch":
        return False
    if _assume_kernels:
        return True
    kind = t.device.type
    if kind == "cuda":
        runnable, why = TRITON_AVAILABLE, "triton is not installed"
    elif kind == "cpu":
        runnable = TRITON_AVAILABLE and INTERPRET
        why = ("CPU tensors need TRITON_INTERPRET=1 set before fastvae is imported"
               if TRITON_AVAILABLE else "triton is not installed")
    else:
        runnable, why = False, f"the Triton kernels do not run on {kind} tensors"
    if _backend == "triton" and not runnable:
        raise RuntimeError(f"FASTVAE_BACKEND=triton but {why}; use the 'auto' or 'torch' backend")
    return runnable
