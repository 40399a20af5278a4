"""``python -m fastvae.train`` for the Ctrl-C tests, run as a script (also under torchrun):
``FASTVAE_PAUSE_AT=N`` makes rank ``FASTVAE_PAUSE_RANK`` (default 0) print "paused at step N"
after its N-th step and wait there until its SIGINT has arrived, so that the signal the test
sends lands at a known step. With ``FASTVAE_STATUS_DIR``, a process of several (which leaves
through ``os._exit``) writes its exit status there, in ``rank<RANK>``."""

import os
import signal
import sys
import time

from fastvae import train
from fastvae.train import step

PAUSE_AT = int(os.environ["FASTVAE_PAUSE_AT"])
PAUSED_RANK = int(os.environ.get("FASTVAE_PAUSE_RANK", "0"))
_real_step = step.TrainStep.__call__


def _interrupted():
    handler = signal.getsignal(signal.SIGINT)  # the run's StopRequest._handle
    return getattr(getattr(handler, "__self__", None), "requested", False)


def _pausing_step(self, x, at):
    terms = _real_step(self, x, at)
    if at + 1 == PAUSE_AT and int(os.environ.get("RANK", "0")) == PAUSED_RANK:
        print(f"paused at step {PAUSE_AT}", file=sys.stderr, flush=True)
        deadline = time.monotonic() + 120
        while not _interrupted() and time.monotonic() < deadline:
            time.sleep(0.01)
    return terms


def _recording_exit(status, _exit=os._exit):
    folder = os.environ.get("FASTVAE_STATUS_DIR")
    if folder:
        with open(os.path.join(folder, f"rank{os.environ.get('RANK', '0')}"), "w") as f:
            f.write(str(status))
    _exit(status)


step.TrainStep.__call__ = _pausing_step
os._exit = _recording_exit

if __name__ == "__main__":
    sys.exit(train.main())
