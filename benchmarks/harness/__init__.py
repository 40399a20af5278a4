"""The benchmark: fastvae's fused ops timed against eager PyTorch and ``torch.compile``, checked
equal first (``python benchmarks/run.py``; the command is ``run.py`` here). What is measured:
``cases.py``; the pytest-benchmark regressions: ``test_bench.py``."""
