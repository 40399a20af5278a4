"""How a call is timed: the CPU and CUDA timers, the spread of the repeats, peak memory, the
copy bandwidth, and the settings a run is timed under.

A timer has ``describe`` (a sentence for the results), ``sync()``, ``samples(run, setup=None)``
(milliseconds of each timed call of ``run(state)``, where ``state = setup()`` runs untimed
before each call), ``time(run, setup=None)`` (their median) and ``peak_memory(run, setup=None)``
(bytes, or ``(None, None)`` where not measured). Another way of timing (host overhead with the
kernel launches stubbed, say) is another class with the same members.

Every timed figure is a median with its spread over the repeats (``Spread``: the quartiles,
min and max), and a ratio of two medians comes with the range its two interquartile ranges
allow (``ratio_range``), so a reader can tell a difference from noise.
"""

import contextlib
import dataclasses
import statistics
import time

import torch

import fastvae
from fastvae import _backend

GIB = 2**30


@dataclasses.dataclass(frozen=True)
class Spread:
    """The times of one call's repeats, in ms: median, quartiles (``q1``, ``q3``), ``min``,
    ``max``, and how many (``n``)."""

    median: float
    q1: float
    q3: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, times_ms):
        t = sorted(float(v) for v in times_ms)
        if not t:
            raise ValueError("no times to summarise")
        q1, _, q3 = statistics.quantiles(t, n=4, method="inclusive") if len(t) > 1 else t * 3
        return cls(statistics.median(t), q1, q3, t[0], t[-1], len(t))

    def record(self):
        """The JSON fields of a result record."""
        return {"median_ms": self.median, "q1_ms": self.q1, "q3_ms": self.q3, "min_ms": self.min, "max_ms": self.max,
                "repeats": self.n}


def ratio_range(a, b):
    """(low, high) of ``a.median / b.median`` as the two interquartile ranges allow: ``a.q1 /
    b.q3`` to ``a.q3 / b.q1``. Two runs whose ranges do not overlap differ by more than their
    repeats vary; ranges that overlap do not tell them apart."""
    return a.q1 / b.q3, a.q3 / b.q1


def call(run, setup):
    """One untimed call: ``run(setup())``, or ``run(None)`` without a setup."""
    state = setup() if setup is not None else None
    run(state)


class CpuTimer:
    """``time.perf_counter`` around each call; median after warm-up calls."""

    def __init__(self, warmup=3, min_reps=5, max_reps=1000, budget_s=1.0):
        self.warmup, self.min_reps, self.max_reps, self.budget_s = warmup, min_reps, max_reps, budget_s
        self.describe = (f"time.perf_counter per call, median and quartiles of {min_reps}-{max_reps} calls "
                         f"(~{budget_s} s each) after {warmup} warm-up calls; the implementations of a row timed in "
                         f"rounds of one call each, in rotating order")

    @classmethod
    def for_run(cls, quick):
        # at least five repeats even when quick: a spread needs them (quartiles of fewer are the extremes)
        return cls(1, 5, 200, 0.2) if quick else cls(2, 7, 1000, 0.3)

    def sync(self):
        pass

    def samples(self, run, setup=None):
        for _ in range(self.warmup):
            call(run, setup)
        times, stop = [], time.perf_counter() + self.budget_s
        while len(times) < self.max_reps and (len(times) < self.min_reps or time.perf_counter() < stop):
            state = setup() if setup is not None else None
            t0 = time.perf_counter()
            run(state)
            times.append((time.perf_counter() - t0) * 1e3)
            del state
        return times

    def time(self, run, setup=None):
        return statistics.median(self.samples(run, setup))

    def samples_interleaved(self, runs):
        """``{name: [ms, ...]}`` for ``runs`` (``{name: (setup, run)}``), timed in rounds of one
        call each, the order rotating every round: a change of the machine's load (another
        process on a shared CPU) then falls on all of them alike instead of on whichever was
        timed while it lasted, so their ratios move less than their times."""
        for setup, run in runs.values():
            for _ in range(self.warmup):
                call(run, setup)
        names = list(runs)
        times = {name: [] for name in names}
        stop = time.perf_counter() + self.budget_s * len(names)
        rounds = 0
        while rounds < self.max_reps and (rounds < self.min_reps or time.perf_counter() < stop):
            for name in names[rounds % len(names):] + names[:rounds % len(names)]:
                setup, run = runs[name]
                state = setup() if setup is not None else None
                t0 = time.perf_counter()
                run(state)
                times[name].append((time.perf_counter() - t0) * 1e3)
                del state
            rounds += 1
        return times

    def peak_memory(self, run, setup=None):
        return None, None


class CudaTimer:
    """``triton.testing.do_bench`` (CUDA events, L2 flushed before each call, median); a timed
    call after an untimed ``setup`` (the backward after its forward) uses the same method with
    its own events. At least ``MIN_REPS`` calls are timed whatever the time budget."""

    MIN_REPS = 10

    def __init__(self, quick):
        self.warmup_ms, self.rep_ms = (10, 40) if quick else (25, 100)
        self.describe = (f"triton.testing.do_bench(warmup={self.warmup_ms}, rep={self.rep_ms} ms or "
                         f"{self.MIN_REPS} calls, return_mode='all'), median and quartiles: CUDA events, L2 flushed")

    def sync(self):
        torch.cuda.synchronize()

    def _estimate_ms(self, run, setup):
        self.sync()
        t0 = time.perf_counter()
        for _ in range(2):
            call(run, setup)
        self.sync()
        return (time.perf_counter() - t0) * 1e3 / 2

    def samples(self, run, setup=None):
        import triton.testing

        est = self._estimate_ms(run, setup)
        rep = max(self.rep_ms, self.MIN_REPS * est)
        if setup is None:
            return [float(t) for t in triton.testing.do_bench(lambda: run(None), warmup=self.warmup_ms, rep=rep,
                                                              quantiles=None, return_mode="all")]
        return self._time_with_setup(run, setup, est, rep)

    def time(self, run, setup=None):
        return statistics.median(self.samples(run, setup))

    def _time_with_setup(self, run, setup, est, rep):
        # freed on return, so it never counts in a peak-memory measurement
        flush = torch.empty(256 * 2**20, dtype=torch.int8, device="cuda")
        for _ in range(max(1, int(self.warmup_ms / max(est, 1e-3)))):
            call(run, setup)
        n = max(self.MIN_REPS, min(1000, int(rep / max(est, 1e-3))))
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
        for s, e in zip(starts, ends):
            state = setup()
            flush.zero_()  # as do_bench: no call finds its inputs in L2
            s.record()
            run(state)
            e.record()
            del state
        self.sync()
        return [s.elapsed_time(e) for s, e in zip(starts, ends)]

    def peak_memory(self, run, setup=None):
        """(peak bytes allocated during one call, the same above what was allocated before it)."""
        state = setup() if setup is not None else None
        self.sync()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        run(state)
        self.sync()
        peak = torch.cuda.max_memory_allocated()
        del state
        return int(peak), int(peak - base)


def timer_for(dev, quick):
    return CudaTimer(quick) if dev.type == "cuda" else CpuTimer.for_run(quick)


def measure_together(timer, runs, guard, after_oom=lambda: None):
    """``{name: (Spread, peak bytes, peak bytes above the inputs) or an error string}`` for
    ``runs`` (``{name: (setup, run)}``), each after its warm-up; ``guard(fn)`` returns ``(value,
    None)`` or ``(None, error)``, ``after_oom()`` runs after an out-of-memory error. A timer with
    ``samples_interleaved`` (the CPU's) times them in rounds, so that they share the machine's
    changes of load; otherwise, or when that fails, each is measured on its own (``measure``),
    as on a GPU."""
    out, ready = {}, {}
    for name, (setup, run) in runs.items():
        _, err = guard(lambda: [call(run, setup) for _ in range(2)])  # warm-up: compiles, allocator
        if err is None:
            ready[name] = (setup, run)
        else:
            out[name] = err
            if err == "oom":
                after_oom()
    together = getattr(timer, "samples_interleaved", None)
    times, err = guard(lambda: together(ready)) if together and len(ready) > 1 else (None, "not together")
    for name, (setup, run) in ready.items():
        if err is None:
            out[name] = (Spread.of(times[name]),) + timer.peak_memory(run, setup)
            continue
        value, error = guard(lambda: measure(timer, setup, run))
        out[name] = value if error is None else error
        if error == "oom":
            after_oom()
    return out


def measure(timer, setup, run):
    """(``Spread`` of the times in ms, peak bytes, peak bytes above the inputs) of ``run`` after
    its warm-up."""
    for _ in range(2):  # warm-up: compiles, autotuning, allocator
        call(run, setup)
    timer.sync()
    spread = Spread.of(timer.samples(run, setup))
    peak, extra = timer.peak_memory(run, setup)
    return spread, peak, extra


def copy_bandwidth(dev, timer, quick):
    """Device-to-device copy bandwidth: a large ``dst.copy_(src)``, bytes moved = 2 x size."""
    if dev.type == "cuda":
        n = min(2 * GIB, torch.cuda.get_device_properties(dev).total_memory // 8)
    else:
        n = (64 if quick else 256) * 2**20
    src = torch.empty(n, dtype=torch.uint8, device=dev).random_()
    dst = torch.empty_like(src)
    ms = timer.time(lambda _: dst.copy_(src))
    return {"bytes_copied": n, "bytes_moved": 2 * n, "median_ms": ms, "gb_per_s": 2 * n / ms / 1e6}


def problem(dev):
    """Why this device cannot be benchmarked, or None."""
    if _backend.INTERPRET:
        return ("fastvae was imported with TRITON_INTERPRET=1: the interpreter is never timed. "
                "Run benchmarks/run.py as a script (it unsets the variable) or unset it yourself.")
    if dev.type == "cuda" and not _backend.TRITON_AVAILABLE:
        return "triton is not installed: the fused kernels cannot run on this GPU"
    return None


@contextlib.contextmanager
def settings(dev, threads):
    """Backend, threads and compiler settings for the run; all restored afterwards."""
    import torch._inductor.config

    dynamo = {name: 64 for name in ("recompile_limit", "cache_size_limit") if hasattr(torch._dynamo.config, name)}
    if hasattr(torch._dynamo.config, "fail_on_recompile_limit_hit"):
        # a compiled variant that silently fell back to eager would be timed as "compile"
        dynamo["fail_on_recompile_limit_hit"] = True
    # CPU: small C++ kernels, no worker pool to start
    inductor = {"compile_threads": 1} if dev.type == "cpu" else {}
    previous_threads = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        # CUDA: the kernels; CPU tensors: fastvae's CPU path, its PyTorch reference
        with fastvae.backend("triton" if dev.type == "cuda" else "auto"), \
                torch._dynamo.config.patch(**dynamo), torch._inductor.config.patch(**inductor):
            yield
    finally:
        torch.set_num_threads(previous_threads)
