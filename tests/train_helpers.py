"""Shared by the tests of fastvae.train: a tiny, fast run and reading its metrics."""

import json
import pathlib

from fastvae import train

ROOT = pathlib.Path(__file__).resolve().parents[1]

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
