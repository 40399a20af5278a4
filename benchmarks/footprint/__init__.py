"""The memory of an op's forward+backward, eager PyTorch vs ``torch.compile`` vs fastvae: the
bytes autograd keeps for backward, and the peak resident memory of the step in a fresh process
(``python benchmarks/memory.py``)."""
