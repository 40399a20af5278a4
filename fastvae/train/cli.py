"""The command ``python -m fastvae.train`` / ``fastvae-train``: parse, run, exit status.

Exit statuses: 0 done (or stopped by --stop-after), 1 training diverged, 2 bad settings or data
(a one-line message, never a traceback), 130 stopped by Ctrl-C (checkpointed when it came
during training; the message gives the command that continues).
"""

import os
import shlex
import sys

import torch

from .args import build_parser, prog_name
from .checkpoint import CHECKPOINT
from .interrupt import EXIT_STATUS, Interrupted
from .loop import TrainingDiverged
from .runner import run
from .walltime import WallTime


def main(argv=None):
    """Entry point; returns the exit status (2 with a one-line message on bad settings or data)."""
    clock = WallTime(start_up=argv is None)  # from the shell: the start-up counts too
    status = _main(sys.argv[1:] if argv is None else list(argv), clock)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # One process of several (torchrun): its files are written and its process group is
        # gone. Leave without the interpreter's finalization, where Gloo's worker threads can
        # still release tensors and abort the process (pytorch/pytorch#179291).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _main(argv, clock):
    args = build_parser().parse_args(argv)
    try:
        run(args, clock)
    except (ValueError, TypeError, OSError) as e:  # bad settings, missing data, unusable --out
        return _error(e, 2)
    except TrainingDiverged as e:
        return _error(e, 1)
    except Interrupted as e:
        _say(f"{prog_name()}: interrupted {e.where}; saved {os.path.join(args.out, CHECKPOINT)}\n"
             f"continue with: {resume_command(argv, args.resume)}")
        return EXIT_STATUS
    except KeyboardInterrupt:  # Ctrl-C in set-up or the final evaluation, or a second one
        _interrupted_without_checkpoint(argv, args)
        return EXIT_STATUS
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        return _error(f"out of memory ({_first_line(e)}); try a smaller --batch-size, --eval-rows or --num-train", 2)
    return 0


def resume_command(argv, resuming):
    """The command line that continues this run: the same one, plus --resume."""
    args = shlex.join(list(argv) + ([] if resuming else ["--resume"]))
    world, local = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if world == 1:
        return f"{prog_name()} {args}"
    if world == local:
        return f"torchrun --nproc_per_node {local} -m fastvae.train {args}"
    return f"the same torchrun command on every node, with these arguments: -m fastvae.train {args}"


def _interrupted_without_checkpoint(argv, args):
    path = os.path.join(args.out, CHECKPOINT)
    if os.path.exists(path):
        _say(f"{prog_name()}: interrupted; the last checkpoint, {path}, is kept\n"
             f"continue with: {resume_command(argv, args.resume)}")
    else:
        _say(f"{prog_name()}: interrupted before the first checkpoint; nothing was saved")


def _out_of_memory(e):
    return isinstance(e, (MemoryError, torch.OutOfMemoryError)) or "DefaultCPUAllocator" in str(e)


def _first_line(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _error(e, status):
    print(f"{prog_name()}: error: {e}", file=sys.stderr)
    return status


def _say(text):
    """Rank 0 speaks for the run (every rank prints its errors)."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(text, file=sys.stderr)
