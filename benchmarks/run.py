#!/usr/bin/env python
"""``python benchmarks/run.py [--quick | --small | --overhead] [--only OP] [--dtype DTYPE] ...``:
the benchmark, eager PyTorch vs ``torch.compile`` vs fastvae. The command lives in
``benchmarks/harness/run.py`` (its arguments: ``--help``); this script only prepares the process.

Triton's interpreter is for testing, never for timing: run as a script, this unsets
``TRITON_INTERPRET`` (and says so) before torch or triton is imported.
"""

import os
import sys

_OFF = ("", "0", "false", "off", "no")
if __name__ == "__main__" and os.environ.pop("TRITON_INTERPRET", "0").strip().lower() not in _OFF:
    # before torch or triton is imported: Triton's interpreter is for testing, never for timing
    print("note: TRITON_INTERPRET unset for this run (the interpreter is never timed)", file=sys.stderr)

# the repository root instead of benchmarks/ on the path: the tools are the package `benchmarks`
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if os.path.dirname(_HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(_HERE))

from benchmarks.harness.run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
