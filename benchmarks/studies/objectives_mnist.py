"""ELBO vs IWAE vs DReG on binarized MNIST at equal epochs: the README's comparison.

    FASTVAE_DATA_DIR=/path/to/data python benchmarks/objectives_mnist.py [--epochs 50] [--seeds 0,1]
        [--samples 5] [--jobs 2] [--out benchmarks/results/objectives-<device>-<date>]

Trains the literature's 784-400-40 MLP VAE (Bernoulli likelihood, Adam 1e-3, batch 100) once
per objective and seed with ``python -m fastvae.train`` (``--objective elbo``, ``iwae`` and
``dreg`` with ``--samples K``), each run in its own process (``--jobs`` at a time, one CPU
thread each when on CPU), and evaluates every model the same way: the test negative ELBO and
the test log-likelihood estimated with 1000 importance samples. Writes each run's directory,
``results.json`` (every run's summary) and ``results.md`` (the table, with the device, date,
versions and the code path that ran: fused Triton kernels on a GPU, or fastvae's CPU path,
which is its PyTorch reference) into ``--out``.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from .. import RESULTS, ROOT

OBJECTIVES = ("elbo", "iwae", "dreg")
MODEL = ["--data", "binarized-mnist", "--arch", "mlp", "--hidden", "400", "--latent-dim", "40",
         "--batch-size", "100", "--lr", "1e-3", "--lr-scaling", "none"]


def command(objective, seed, a, out):
    argv = [sys.executable, "-m", "fastvae.train", *MODEL, "--epochs", str(a.epochs), "--seed", str(seed),
            "--objective", objective, "--eval-samples", str(a.eval_samples), "--out", str(out), "--no-progress",
            "--no-plots", "--device", a.device]
    for flag, v in (("--samples", a.samples if objective != "elbo" else None), ("--num-train", a.num_train),
                    ("--num-test", a.num_test)):
        argv += [flag, str(v)] if v is not None else []
    return argv


def train(objective, seed, a, root):
    out = root / f"{objective}-seed{seed}"
    env = dict(os.environ, OMP_NUM_THREADS="1") if a.device == "cpu" else dict(os.environ)
    argv = command(objective, seed, a, out)
    with open(root / f"{objective}-seed{seed}.log", "w") as log:
        proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}; see its .log in {root}")
    summary = json.loads((out / "summary.json").read_text())
    print(f"{objective} seed {seed}: test NLL {summary['test_nll']:.2f}, test -ELBO {summary['test_neg_elbo']:.2f}",
          flush=True)
    return dict(objective=objective, seed=seed, command=" ".join(argv[1:]), summary=summary)


def _mean_sd(values):
    return f"{statistics.mean(values):.2f}" + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")


def table(runs, a, meta):
    lines = [f"# ELBO vs IWAE vs DReG on binarized MNIST, {meta['device']}, {meta['date']}", "",
             f"784-400-40 MLP VAE, Bernoulli likelihood, Adam lr 1e-3, batch 100, {a.epochs} epochs, "
             f"K = {a.samples} for IWAE and DReG, seeds {a.seeds}; test log-likelihood estimated with "
             f"{a.eval_samples} importance samples on {a.num_test or 10000} test images"
             + (f", {a.num_train} training images" if a.num_train else "") + f". Code path: {meta['code_path']}. torch "
             f"{meta['torch']}, python {meta['python']}, commit {meta['commit']}.", "",
             f"| objective | test NLL (nats, K={a.eval_samples}) | test negative ELBO | seeds "
             "| training time per run (s) |",
             "|---|---|---|---|---|"]
    for objective in OBJECTIVES:
        rs = [r["summary"] for r in runs if r["objective"] == objective]
        if rs:
            name = objective.upper() if objective != "dreg" else "DReG"
            name += f" (K={a.samples})" if objective != "elbo" else ""
            lines.append(f"| {name} | {_mean_sd([s['test_nll'] for s in rs])} | "
                         f"{_mean_sd([s['test_neg_elbo'] for s in rs])} | {len(rs)} | "
                         f"{statistics.mean(s['train_time_s'] for s in rs):.0f} |")
    lines += ["", "mean ± standard deviation over the seeds; lower is better."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    p.add_argument("--eval-samples", type=int, default=1000)
    p.add_argument("--num-train", type=int, help="a random subset of the training images (quick trials)")
    p.add_argument("--num-test", type=int, help="a random subset of the test images (quick trials)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    date = datetime.date.today().isoformat()
    device = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else f"cpu ({platform.machine()})"
    root = a.out or RESULTS / f"objectives-{'cpu' if a.device == 'cpu' else 'gpu'}-{date}"
    root.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    meta = dict(device=device, date=date, torch=torch.__version__, python=platform.python_version(),
                commit=commit.strip() or "unknown",
                code_path="fused Triton kernels" if a.device.startswith("cuda") else
                "fastvae's CPU path, its PyTorch reference (no Triton kernels)")
    jobs = [(o, s) for s in seeds for o in OBJECTIVES]
    with ThreadPoolExecutor(a.jobs) as pool:
        runs = list(pool.map(lambda job: train(*job, a, root), jobs))
    (root / "results.json").write_text(json.dumps(dict(meta, runs=runs), indent=1) + "\n")
    (root / "results.md").write_text(table(runs, a, meta))
    print((root / "results.md").read_text())
    return 0

