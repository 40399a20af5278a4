"""``python -m fastvae.train`` (and ``torchrun -m fastvae.train``): the training command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
