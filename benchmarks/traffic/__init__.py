"""The byte count: the passes and bytes of one VAE objective step, eager PyTorch vs fastvae,
traced with fake tensors (``python benchmarks/count_bytes.py``)."""
