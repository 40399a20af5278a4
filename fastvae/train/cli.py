"""The command ``python -m fastvae.train`` / ``fastvae-train``: parse, run, exit status."""

import sys

from .args import build_parser, prog_name
from .loop import TrainingDiverged
from .runner import run


def main(argv=None):
    """Entry point; returns the exit status (2 with a one-line message on bad settings or data)."""
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (ValueError, TypeError, OSError) as e:  # bad settings, missing data, unusable --out
        print(f"{prog_name()}: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"{prog_name()}: error: {e}", file=sys.stderr)
        return 1
    return 0
