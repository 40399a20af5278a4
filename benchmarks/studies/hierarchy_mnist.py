"""A top-down hierarchical VAE on binarized MNIST: the README's hierarchical result.

    FASTVAE_DATA_DIR=/path/to/data python benchmarks/hierarchy_mnist.py [--epochs 50] [--seeds 0]
        [--out benchmarks/results/hierarchy-<device>-<date>] [--note TEXT]
    python benchmarks/hierarchy_mnist.py --from-records DIR/records.json

Trains ``python -m fastvae.train --arch hierarchical`` (two stochastic levels, 16 then 32
latents, MLP widths 256 and 512, ELU, Bernoulli likelihood, Adam 1e-3 on a cosine schedule, batch
100, the KL warmed up over the first 5000 steps, ELBO) once per seed, each run in its own process (one CPU thread on
CPU), and reports what the issue asks: the test log-likelihood by importance sampling over the
whole hierarchy (``--eval-samples``, 1000 by default), the test negative ELBO, each level's KL,
the epochs and the time. Writes into ``--out`` the runs' folders, ``records.json`` and
``results.md`` (the table, computed from the records alone) as ``objectives_mnist`` does; started
again with the same arguments it keeps finished runs and resumes the others.
"""

import argparse
import datetime
import sys

from .. import RESULTS
from .records import add_common_arguments, default_device, finish, recompute, run_training

TOOL = "hierarchy_mnist"
MODEL = ["--arch", "hierarchical", "--latent-dims", "16,32", "--hidden", "256,512", "--activation", "elu",
         "--batch-size", "100", "--lr", "1e-3", "--lr-scaling", "none", "--schedule", "cosine", "--kl-warmup", "5000"]
METRICS = ("test_nll", "test_neg_elbo", "test_level_kl", "train_time_s", "final_train_neg_elbo",
           "final_valid_neg_elbo", "steps", "eval_samples", "examples_per_s", "backend", "device", "torch", "fastvae")
# the one-level 784-400-40 model's test NLL at 50 epochs by objective (benchmarks/results/objectives-*)
ONE_LEVEL = "91.55 with DReG (K = 5), 91.93 with IWAE (K = 5), 92.94 with the ELBO"


def command(seed, s):
    """The training command of one run, as recorded (the run's folder relative to the study's)."""
    return ["python", "-m", "fastvae.train", "--data", s["data"], *MODEL, "--epochs", str(s["epochs"]),
            "--seed", str(seed), "--eval-samples", str(s["eval_samples"]), "--out", f"runs/seed{seed}",
            "--no-progress", "--no-plots", "--device", s["device"]] + [
        a for flag in ("num_train", "num_test") if s.get(flag) for a in (f"--{flag.replace('_', '-')}", str(s[flag]))]


def table(records):
    """The Markdown results of a study from its records (``records.json``) alone."""
    s, m, runs = records["settings"], records["machine"], records["runs"]
    commits = sorted({i["commit"][:12] + ("+changes" if i["dirty"] else "") for r in runs for i in r["invocations"]})
    lines = [f"# A hierarchical VAE on binarized MNIST, {m['device']}, {records['date']}", "",
             "Top-down hierarchical VAE (`--arch hierarchical`): two stochastic levels of 16 (top) and 32 latents, "
             "MLP widths 256 and 512, ELU, Bernoulli likelihood, Adam lr 1e-3 on a cosine schedule, batch 100, "
             "KL warm-up over 5000 "
             f"steps, ELBO, {s['epochs']} epochs; test log-likelihood by importance sampling over the whole "
             f"hierarchy with K = {s['eval_samples']} on {s.get('num_test') or 10000} test images. "
             f"torch {m['torch']}, python "
             f"{m['python']}, commit {', '.join(commits)}.", "",
             f"| seed | test NLL (nats, K={s['eval_samples']}) | test negative ELBO | test KL per level (top first) "
             "| epochs | training time (s) |", "|---|---|---|---|---|---|"]
    for r in runs:
        mt = r["metrics"]
        kls = " / ".join(f"{k:.2f}" for k in mt["test_level_kl"])
        lines.append(f"| {r['seed']} | {mt['test_nll']:.2f} | {mt['test_neg_elbo']:.2f} | {kls} | {len(r['history'])} "
                     f"| {mt['train_time_s']:.0f} |")
    lines += ["", f"The one-level 784-400-40 model on the same data, 50 epochs: {ONE_LEVEL} "
              "(`benchmarks/results/objectives-*`). Lower is better.", "",
              f"Command of the study: `{records['command']}`; of each run: `{runs[0]['command']}`" if runs else ""]
    lines += [n for note in records.get("notes", []) for n in ("", note)]
    return "\n".join(lines) + "\n"


def _parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seeds", default="0")
    return add_common_arguments(p)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = _parser().parse_args(argv)
    if a.from_records is not None:
        return recompute(a.from_records, table)
    device = default_device(a.device)
    s = dict(epochs=a.epochs, seeds=[int(v) for v in a.seeds.split(",")], eval_samples=a.eval_samples,
             data=a.data, device=device, num_train=a.num_train, num_test=a.num_test)
    root = a.out or RESULTS / f"hierarchy-{'cpu' if device == 'cpu' else 'gpu'}-{datetime.date.today()}"
    (root / "runs").mkdir(parents=True, exist_ok=True)
    runs = [dict(seed=seed, **run_training(f"seed{seed}", command(seed, s), root, device, METRICS))
            for seed in s["seeds"]]
    return finish(root, TOOL, "benchmarks/hierarchy_mnist.py", argv, s, a.note, runs, table)
