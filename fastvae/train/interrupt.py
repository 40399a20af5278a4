"""Ctrl-C during training: the loop stops at a step boundary, checkpoints there and the command
leaves with exit status 130 (128 + SIGINT, what a shell reports for a process Ctrl-C ended).

Under ``torchrun`` the launcher passes the SIGINT on to every worker, which receive it at
different steps, so the ranks agree on where to stop: at every step boundary each rank adds its
flag to an all-reduce (MAX) on the host, over a Gloo group of its own, started at one boundary
and read at the next. All ranks read the same value at the same boundary and stop together,
nobody waits for the device, and the result is normally there before it is asked for. Ranks are
asked once more, and then wait for one another, at the end of each epoch.
"""

import signal
import threading

import torch
import torch.distributed as dist

EXIT_STATUS = 130


class Interrupted(Exception):
    """Training stopped at Ctrl-C (SIGINT); ``where`` says where, and that state is in the
    checkpoint."""

    def __init__(self, where):
        super().__init__(where)
        self.where = where


class StopRequest:
    """For the duration of a ``with`` block: SIGINT sets a flag instead of raising
    ``KeyboardInterrupt`` (a second one raises it, as usual), and ``at_step``/``at_epoch_end``
    say, the same on every rank, whether training should stop there. Where SIGINT is ignored
    (a background job) or this is not the main thread, nothing is installed."""

    def __init__(self, d):
        self.d = d
        self.requested = False
        self._previous = None
        self._group = dist.new_group(backend="gloo") if d.world > 1 else None
        self._flag = torch.zeros(1)
        self._pending = None  # the all-reduce started at the last boundary

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, kind, value, tb):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        if kind is None or issubclass(kind, Interrupted):  # every rank is here: finish the last all-reduce
            self._collect()

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def _collect(self):
        """The result of the pending all-reduce: True when some rank had been interrupted."""
        if self._pending is None:
            return False
        self._pending.wait()
        self._pending = None
        return self._flag.item() > 0

    def _start(self):
        self._flag.fill_(float(self.requested))
        self._pending = dist.all_reduce(self._flag, op=dist.ReduceOp.MAX, group=self._group, async_op=True)

    def at_step(self):
        """At a step boundary (every rank calls it at every one): True to stop here."""
        if self.d.world == 1:
            return self.requested
        if self._collect():
            return True
        self._start()
        return False

    def at_epoch_end(self):
        """After an epoch's checkpoint (every rank): True to stop here; ranks wait for one another."""
        if self.d.world == 1:
            return self.requested
        if self._collect():
            return True
        self._start()
        return self._collect()
