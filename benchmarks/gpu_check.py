#!/usr/bin/env python
"""``python benchmarks/gpu_check.py [--headline | --objectives] [OUTDIR]``: the GPU check, what
``bash benchmarks/gpu_check.sh`` runs once it has installed the checkout. The check lives in
``benchmarks/gpu/check.py`` (its stages: ``--help``); this script only prepares the process.

The real kernels are measured: this unsets ``TRITON_INTERPRET`` before torch or triton is
imported.
"""

import os
import sys

if __name__ == "__main__":
    os.environ.pop("TRITON_INTERPRET", None)  # before triton is imported: the real kernels

# the repository root instead of benchmarks/ on the path: the tools are the package `benchmarks`
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if os.path.dirname(_HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(_HERE))

from benchmarks.gpu.check import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
