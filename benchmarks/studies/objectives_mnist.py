"""ELBO vs IWAE vs DReG on binarized MNIST at equal epochs: the README's comparison.

    FASTVAE_DATA_DIR=/path/to/data python benchmarks/objectives_mnist.py [--epochs 50] [--seeds 0,1]
        [--samples 5] [--jobs 2] [--out benchmarks/results/objectives-<device>-<date>] [--note TEXT]
    python benchmarks/objectives_mnist.py --from-records DIR/records.json

Trains the literature's 784-400-40 MLP VAE (Bernoulli likelihood, Adam 1e-3, batch 100) once
per objective and seed with ``python -m fastvae.train`` (``--objective elbo``, ``iwae`` and
``dreg`` with ``--samples K``), each run in its own process (``--jobs`` at a time, one CPU
thread each when on CPU), and evaluates every model the same way: the test negative ELBO and
the test log-likelihood estimated with ``--eval-samples`` importance samples.

Writes into ``--out``: ``runs/<objective>-seed<N>/`` (each run's folder: checkpoint, metrics,
summary, and ``record.json``, the run's record) and ``runs/<objective>-seed<N>.log``;
``records.json``, the study's records (the study's command and settings, the machine, and per
run its command, every invocation's commit, its seed, device, test metrics and per-epoch
history); and ``results.md``, the table, computed from ``records.json`` alone (``table``).
Started again with the same arguments, the study keeps the runs that finished and resumes the
others from their checkpoints (``--resume``; their records say so), so a study survives a
restart of the machine. ``--from-records`` recomputes ``results.md`` from a records file (how
``tests/benchmarks/test_results_records.py`` checks a committed table against its records).
"""

import argparse
import datetime
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor

from .. import RESULTS
from .records import add_common_arguments, default_device, finish, recompute, run_training

TOOL = "objectives_mnist"
OBJECTIVES = ("elbo", "iwae", "dreg")
NAMES = {"elbo": "ELBO", "iwae": "IWAE", "dreg": "DReG"}
MODEL = ["--arch", "mlp", "--hidden", "400", "--latent-dim", "40", "--batch-size", "100", "--lr", "1e-3",
         "--lr-scaling", "none"]
METRICS = ("test_nll", "test_neg_elbo", "train_time_s", "final_train_neg_elbo", "final_valid_neg_elbo", "steps",
           "eval_samples", "examples_per_s", "backend", "device", "torch", "fastvae")


def command(objective, seed, s):
    """The training command of one run (``s``: the study's settings), as it is recorded: ``python``
    for the interpreter, the run's folder relative to the study's folder."""
    argv = ["python", "-m", "fastvae.train", "--data", s["data"], *MODEL, "--epochs", str(s["epochs"]),
            "--seed", str(seed), "--objective", objective, "--eval-samples", str(s["eval_samples"]),
            "--out", f"runs/{objective}-seed{seed}", "--no-progress", "--no-plots", "--device", s["device"]]
    for flag, v in (("--samples", s["samples"] if objective != "elbo" else None), ("--num-train", s["num_train"]),
                    ("--num-test", s["num_test"])):
        argv += [flag, str(v)] if v is not None else []
    return argv


def run_one(objective, seed, s, root):
    """Trains (or resumes, or keeps) one run in ``root/runs``; returns its record."""
    name = f"{objective}-seed{seed}"
    record = dict(objective=objective, seed=seed, **run_training(name, command(objective, seed, s), root, s["device"],
                                                                   METRICS))
    m = record["metrics"]
    print(f"{name}: test NLL {m['test_nll']:.2f}, test -ELBO {m['test_neg_elbo']:.2f}", flush=True)
    return record


# --------------------------------------------------------------------------- the table, from the records

def _mean_sd(values):
    return f"{statistics.mean(values):.2f}" + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")


def _header(records):
    s, m, runs = records["settings"], records["machine"], records["runs"]
    commits = sorted({i["commit"][:12] + ("+changes" if i["dirty"] else "") for r in runs for i in r["invocations"]})
    backends = sorted({r["metrics"]["backend"] for r in runs})
    data = "binarized MNIST" if s["data"] == "binarized-mnist" else s["data"]
    return [f"# ELBO vs IWAE vs DReG on {data}, {m['device']}, {records['date']}", "",
            f"784-400-40 MLP VAE, Bernoulli likelihood, Adam lr 1e-3, batch 100, {s['epochs']} epochs, "
            f"K = {s['samples']} for IWAE and DReG, seeds {','.join(map(str, s['seeds']))}; test log-likelihood "
            f"estimated with {s['eval_samples']} importance samples on {s['num_test'] or 10000} test images"
            + (f", {s['num_train']} training images" if s["num_train"] else "")
            + f". Code path: {', '.join(backends)}. torch {m['torch']}, python {m['python']}, "
            f"commit {', '.join(commits)}.", ""]


def table(records):
    """The Markdown table of a study from its records (``records.json``) alone."""
    s, runs = records["settings"], records["runs"]
    lines = _header(records) + [
        f"| objective | test NLL (nats, K={s['eval_samples']}) | test negative ELBO | seeds "
        "| training time per run (s) |", "|---|---|---|---|---|"]
    for objective in s["objectives"]:
        rs = [r["metrics"] for r in runs if r["objective"] == objective]
        if rs:
            name = NAMES[objective] + (f" (K={s['samples']})" if objective != "elbo" else "")
            lines.append(f"| {name} | {_mean_sd([m['test_nll'] for m in rs])} | "
                         f"{_mean_sd([m['test_neg_elbo'] for m in rs])} | {len(rs)} | "
                         f"{statistics.mean(m['train_time_s'] for m in rs):.0f} |")
    lines += ["", "mean ± standard deviation over the seeds; lower is better. Each run (from `records.json`, "
              "where every run's command, commits, metrics and per-epoch history are):", ""]
    for r in runs:
        resumed = sum(i["resume"] for i in r["invocations"])
        lines.append(f"- {r['objective']} seed {r['seed']}: test NLL {r['metrics']['test_nll']:.4f}, test negative "
                     f"ELBO {r['metrics']['test_neg_elbo']:.4f}, {r['metrics']['train_time_s']:.0f} s"
                     + (f" (resumed {resumed} time{'s' if resumed > 1 else ''})" if resumed else ""))
    lines += ["", f"Command of the study: `{records['command']}`; of each run: `{runs[0]['command']}` "
              "(with its `--objective`, `--seed`, `--samples`)." if runs else ""]
    lines += [n for note in records.get("notes", []) for n in ("", note)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the command

def _parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--objectives", default=",".join(OBJECTIVES), help="a subset of elbo,iwae,dreg")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    return add_common_arguments(p)


def _settings(a):
    objectives = [o for o in a.objectives.split(",") if o]
    if not objectives or set(objectives) - set(OBJECTIVES):
        raise SystemExit(f"--objectives: a subset of {','.join(OBJECTIVES)}, got {a.objectives!r}")
    return dict(epochs=a.epochs, seeds=[int(s) for s in a.seeds.split(",")], samples=a.samples,
                objectives=[o for o in OBJECTIVES if o in objectives], eval_samples=a.eval_samples,
                num_train=a.num_train, num_test=a.num_test, data=a.data, device=default_device(a.device))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = _parser().parse_args(argv)
    if a.from_records is not None:
        return recompute(a.from_records, table)
    s = _settings(a)
    root = a.out or RESULTS / f"objectives-{'cpu' if s['device'] == 'cpu' else 'gpu'}-{datetime.date.today()}"
    (root / "runs").mkdir(parents=True, exist_ok=True)
    jobs = [(o, seed) for seed in s["seeds"] for o in s["objectives"]]
    with ThreadPoolExecutor(a.jobs) as pool:
        runs = list(pool.map(lambda job: run_one(*job, s, root), jobs))
    return finish(root, TOOL, "benchmarks/objectives_mnist.py", argv, s, a.note, runs, table)
