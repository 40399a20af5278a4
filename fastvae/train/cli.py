"""The command ``python -m fastvae.train`` / ``fastvae-train``: parse, run, exit status."""

import os
import sys

import torch

from .args import build_parser, prog_name
from .loop import TrainingDiverged
from .runner import run


def main(argv=None):
    """Entry point; returns the exit status (2 with a one-line message on bad settings or data)."""
    status = _main(argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # One process of several (torchrun): its files are written and its process group is
        # gone. Leave without the interpreter's finalization, where Gloo's worker threads can
        # still release tensors and abort the process (pytorch/pytorch#179291).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _main(argv):
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (ValueError, TypeError, OSError) as e:  # bad settings, missing data, unusable --out
        return _error(e, 2)
    except TrainingDiverged as e:
        return _error(e, 1)
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        return _error(f"out of memory ({_first_line(e)}); try a smaller --batch-size, --eval-rows or --num-train", 2)
    return 0


def _out_of_memory(e):
    return isinstance(e, (MemoryError, torch.OutOfMemoryError)) or "DefaultCPUAllocator" in str(e)


def _first_line(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _error(e, status):
    print(f"{prog_name()}: error: {e}", file=sys.stderr)
    return status
