"""Training studies whose results the README quotes: ``objectives_mnist.py``, ELBO vs IWAE vs
DReG on binarized MNIST (``python benchmarks/objectives_mnist.py``)."""
