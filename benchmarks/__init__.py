"""fastvae's measuring tools, one room (sub-package) per tool; ``benchmarks/README.md`` says
which tool answers which question.

* ``harness``: the benchmark, eager PyTorch vs ``torch.compile`` vs fastvae
  (``python benchmarks/run.py``), its cases (``harness/cases.py``) and the pytest-benchmark
  regressions (``harness/test_bench.py``);
* ``codegen``: the kernels' sm_90 machine code (``python benchmarks/sass_report.py``);
* ``traffic``: the passes and bytes of one step (``python benchmarks/count_bytes.py``);
* ``gpu``: the one-command GPU check (``bash benchmarks/gpu_check.sh``);
* ``studies``: training studies (``python benchmarks/objectives_mnist.py``);
* ``launches``: the interception of fastvae's Triton launches, shared by ``codegen`` and the
  harness's host-overhead timing.

The commands are the thin scripts ``benchmarks/<name>.py``: each puts the repository root on
``sys.path`` and calls its room's ``main()``. Importing this package imports nothing else (no
torch, no triton), so a script can still change the environment first.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent  # benchmarks/
ROOT = HERE.parent                      # the repository
RESULTS = HERE / "results"              # where the tools write by default
