"""The run's metadata, the head of the JSON: device, versions, commit, date, command, and the
formulas and tolerances the figures rest on."""

import datetime
import platform
import re
import subprocess
from pathlib import Path

import torch

import fastvae

from .. import ROOT
from . import cases
from .case_types import TOL
from .train_step import TRAIN_TOL

CPU_NOTE = ("no CUDA GPU here: the Triton kernels are NOT timed on this machine. The fastvae column runs "
            "fastvae's CPU path, which is its plain PyTorch reference (the eager column's code), so "
            "fastvae/eager and fastvae/compile only measure overheads. These are not GPU results.")


def _git(*args):
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def slug(text, empty="device"):
    """A device name as a file name: lower case, runs of other characters as one dash."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or empty


def metadata(dev, argv, quick, timer):
    """The head of the JSON, for a run on ``dev`` with arguments ``argv`` timed by ``timer``."""
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    cuda = dev.type == "cuda"
    name = torch.cuda.get_device_name(dev) if cuda else _cpu_name()
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "schema_version": 1,
        "device": dev.type,
        "device_name": name,
        "device_slug": slug(name) if cuda else "cpu",
        "triton_kernels_timed": cuda,
        "fastvae_implementation": ("fastvae's Triton kernels" if cuda else
                                   "fastvae's CPU path = its PyTorch reference (Triton kernels NOT timed)"),
        "note": None if cuda else CPU_NOTE,
        "memory_measured": cuda,
        "fastvae_version": fastvae.__version__,
        "torch_version": torch.__version__,
        "triton_version": triton_version,
        "python_version": platform.python_version(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "date": datetime.date.today().isoformat(),
        "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/run.py", *argv]),
        "quick": quick,
        "least_bytes_formulas": cases.least_bytes_formulas(),
        "tolerances": {"relative_error_vs_eager": TOL, "train_step": TRAIN_TOL},
        "timer": timer.describe,
        "cpu_threads": torch.get_num_threads(),
    }
