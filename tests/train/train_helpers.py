"""Shared by the tests of fastvae.train: a tiny, fast run, reading its metrics, and a run in a
process of its own held at a known step to be sent Ctrl-C (SIGINT)."""

import json
import os
import pathlib
import signal
import subprocess

from fastvae import train

ROOT = pathlib.Path(__file__).resolve().parents[2]

# tiny and fast: 384 training images of 28x28 shapes, 6 steps per epoch
SMALL = ["--data", "shapes", "--num-train", "384", "--num-test", "96", "--batch-size", "64", "--hidden", "64",
         "--latent-dim", "8", "--eval-samples", "8", "--no-progress", "--lr", "3e-3"]


def run(out, *extra):
    code = train.main([*SMALL, "--out", str(out), *extra])
    assert code == 0
    return json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else None


def status_and_errors(tmp_path, capsys, *argv):
    """(exit status, stderr) of a one-epoch in-process run in ``tmp_path / "out"`` (or --out)."""
    out = [] if "--out" in argv else ["--out", str(tmp_path / "out")]
    status = train.main([*SMALL, "--epochs", "1", "--no-plots", *out, *argv])
    return status, capsys.readouterr().err


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def same_metrics(path):
    """metrics.jsonl in ``path`` without the timing, to compare runs."""
    return [{k: v for k, v in m.items() if k != "examples_per_s"} for m in lines(path / "metrics.jsonl")]


def start_paused(launcher, argv, pause_at, status_dir=None):
    """Starts ``launcher + [tests/train/train_paused.py] + argv`` (launcher: the interpreter, or
    torchrun); returns the process and its stderr so far once rank 0 holds after step
    ``pause_at``, waiting for its SIGINT. Processes of several write their exit statuses into
    ``status_dir``."""
    env = dict(os.environ, FASTVAE_PAUSE_AT=str(pause_at), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
               FASTVAE_STATUS_DIR=str(status_dir or ""))
    proc = subprocess.Popen([*launcher, str(ROOT / "tests" / "train" / "train_paused.py"), *argv], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # not ignored
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(f"paused at step {pause_at}"):
            return proc, "".join(seen)
    proc.wait()
    raise AssertionError(f"the run ended (status {proc.returncode}) before pausing:\n{''.join(seen)[-3000:]}")


def interrupt(proc, seen):
    """Ctrl-C: SIGINT to ``proc``; returns its exit status and all its stderr."""
    proc.send_signal(signal.SIGINT)
    err = seen + proc.stderr.read()
    return proc.wait(timeout=300), err
