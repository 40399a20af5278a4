#!/usr/bin/env python
"""``python benchmarks/memory.py [--only OP] [--out DIR]``: the bytes an op keeps for backward and
the peak memory of its forward+backward, eager PyTorch vs ``torch.compile`` vs fastvae. The
command lives in ``benchmarks/footprint/measure.py``; this script puts the repository on the path
and calls it.
"""

import os
import sys

# the repository root instead of benchmarks/ on the path: the tools are the package `benchmarks`
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if os.path.dirname(_HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(_HERE))

from benchmarks.footprint.measure import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
