#!/usr/bin/env python
"""``python benchmarks/sass_report.py [--json FILE] [--check] [--only TEXT] [--sass TEXT]``: the
kernels' sm_90 machine code, counted without a GPU. The command lives in
``benchmarks/codegen/report.py`` (its arguments: ``--help``); this script only prepares the process.

The kernels must be compiled for real: this unsets ``TRITON_INTERPRET`` before torch or triton
is imported.
"""

import os
import sys

if __name__ == "__main__":
    os.environ.pop("TRITON_INTERPRET", None)  # before triton is imported: compile for real

# the repository root instead of benchmarks/ on the path: the tools are the package `benchmarks`
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if os.path.dirname(_HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(_HERE))

from benchmarks.codegen.report import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
