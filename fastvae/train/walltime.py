"""Where a run's wall time went, printed at its end: start-up (Python, imports and parsing,
when the command was started from the shell), data set-up, model set-up, the first step
(compilation and warm-up, which examples/s leaves out), training, validation, checkpoints, the
test evaluation, and the plots and summary. Host clock (``time.perf_counter``); the phases
that end on the device synchronise it first where the loop already does (training)."""

import contextlib
import os
import time

# the phases in the order they are printed, with their names in the printed line
PHASES = {"start-up": "start-up (Python, imports)", "data": "data set-up", "model": "model set-up",
          "first step": "first step (compile, warm-up)", "training": "training", "validation": "validation",
          "checkpoints": "checkpoints", "test": "test evaluation", "plots": "plots and summary"}


def since_process_start():
    """Seconds since this process started (Linux), or None where that cannot be read."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time, clock ticks after boot
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class WallTime:
    """Seconds per phase of this invocation. ``start_up``: count the time from the process's
    start to now (the command line's own run; not for a run called from Python)."""

    def __init__(self, start_up=False):
        self.t0 = time.perf_counter()
        self.seconds = {}
        if start_up:
            before = since_process_start()
            if before is not None:
                self.seconds["start-up"] = before

    def add(self, phase, seconds):
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    @contextlib.contextmanager
    def phase(self, name):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t)

    def total(self):
        return time.perf_counter() - self.t0 + self.seconds.get("start-up", 0.0)

    def line(self):
        """``wall time 14.2 s: start-up 3.1 s, data set-up 1.0 s, ...`` (phases that took time,
        and what no phase accounts for)."""
        total = self.total()
        parts = [f"{PHASES[p]} {self.seconds[p]:.1f} s" for p in PHASES if p in self.seconds]
        other = total - sum(self.seconds.values())
        if other >= 0.05:
            parts.append(f"other {other:.1f} s")
        return f"wall time {total:.1f} s: " + ", ".join(parts)
