#!/usr/bin/env python
"""``FASTVAE_DATA_DIR=/path/to/data python benchmarks/hierarchy_mnist.py [--epochs 50]
[--seeds 0] [--eval-samples 1000] [--out DIR]``: a top-down hierarchical VAE on binarized MNIST,
the README's hierarchical result, written to ``benchmarks/results/hierarchy-<device>-<date>/`` by
default. The study lives in ``benchmarks/studies/hierarchy_mnist.py``; this script puts the
repository on the path and calls it.
"""

import os
import sys

# the repository root instead of benchmarks/ on the path: the tools are the package `benchmarks`
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if os.path.dirname(_HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(_HERE))

from benchmarks.studies.hierarchy_mnist import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
