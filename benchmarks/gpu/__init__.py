"""The GPU check: ``bash benchmarks/gpu_check.sh`` validates fastvae on a CUDA GPU and measures
it in stages (the command is ``check.py`` here; the stages and the summary ``stages.py``)."""
