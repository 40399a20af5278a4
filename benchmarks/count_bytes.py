#!/usr/bin/env python
"""``python benchmarks/count_bytes.py [--batch B --dim D --latent L --dtype float32|bfloat16|float16
--targets uint8|float]``: the passes and bytes of one VAE objective step, eager PyTorch vs
fastvae, traced with fake tensors (no timing, no GPU). The command lives in
``benchmarks/traffic/count_bytes.py``; this script puts the repository on the path and calls it.
"""

import os
import sys

# the repository root instead of benchmarks/ on the path: the tools are the package `benchmarks`
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if os.path.dirname(_HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(_HERE))

from benchmarks.traffic.count_bytes import main  # noqa: E402

if __name__ == "__main__":
    main()  # exit status 0; main returns the byte totals (for callers that import it)
