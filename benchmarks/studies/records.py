"""The machine-readable records a study writes beside its table, and the one way back from
records to table.

Every results table under ``benchmarks/results/`` is computed from a records file beside it
(``records.json``): the study's settings, the machine, and per run its command, commit, seed,
device and metrics. ``rebuild(path)`` recomputes the table from the records alone, with the
function of the tool that wrote them (``TABLES``); ``tests/benchmarks/test_results_records.py``
checks that every committed table is exactly what its records give.
"""

import datetime
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

RECORDS = "records.json"  # a study's records, in its --out folder beside its table
TABLE = "results.md"      # the table computed from them

# the tool named in a records file -> "module:function" that turns the records into the table
TABLES = {"objectives_mnist": "benchmarks.studies.objectives_mnist:table",
          "hierarchy_mnist": "benchmarks.studies.hierarchy_mnist:table",
          "memory": "benchmarks.footprint.measure:table"}


def git_state(root):
    """``(commit, dirty)`` of the checkout at ``root``: the full commit hash ("unknown" outside
    git) and whether tracked files differ from it (results folders aside)."""
    def git(*argv):
        try:
            p = subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return p.stdout if p.returncode == 0 else None
    commit = (git("rev-parse", "HEAD") or "").strip() or "unknown"
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results")
    return commit, bool(status and status.strip())


def write_json(path, obj):
    """``obj`` as indented JSON at ``path``, written whole or not at all."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def read_json(path):
    return json.loads(Path(path).read_text())


def table_function(tool):
    """The function that computes ``tool``'s table from its records; a ValueError for a tool
    that has none."""
    if tool not in TABLES:
        raise ValueError(f"records of tool {tool!r}: no table function for it in benchmarks/studies/records.py "
                         f"TABLES (known: {sorted(TABLES)})")
    module, name = TABLES[tool].split(":")
    return getattr(importlib.import_module(module), name)


def rebuild(path):
    """The table (Markdown text) that the records file ``path`` gives."""
    records = read_json(path)
    return table_function(records.get("tool"))(records)


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_training(name, argv, root, device, metrics):
    """Trains (or resumes, or keeps) one run of a study in ``root/runs/<name>`` with the recorded
    training command ``argv`` (``python -m fastvae.train ... --out runs/<name>``), one CPU thread
    on CPU; returns its record: the command, every invocation's commit (``invocations.json``),
    the summary's ``metrics`` and the per-epoch history. A folder holding a finished run of
    another command is an error."""
    from .. import ROOT

    out, shown = root / "runs" / name, shlex.join(argv)
    if (out / "record.json").exists():
        record = read_json(out / "record.json")
        if record["command"] != shown:
            raise RuntimeError(f"{out} holds a run of another command ({record['command']}); choose another --out")
        print(f"{name}: kept (finished earlier)", flush=True)
        return record
    from fastvae.train.checkpoint import CHECKPOINT
    resume = (out / CHECKPOINT).exists()
    out.mkdir(parents=True, exist_ok=True)
    invocations = read_json(out / "invocations.json") if (out / "invocations.json").exists() else []
    commit, dirty = git_state(ROOT)
    invocations.append(dict(commit=commit, dirty=dirty, started=now(), resume=resume))
    write_json(out / "invocations.json", invocations)
    env = dict(os.environ, OMP_NUM_THREADS="1") if device == "cpu" else dict(os.environ)
    with open(root / "runs" / f"{name}.log", "a") as log:
        proc = subprocess.run([sys.executable, *argv[1:]] + (["--resume"] if resume else []), cwd=root,
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{shown} exited {proc.returncode}; see runs/{name}.log in {root}")
    invocations[-1]["finished"] = now()
    write_json(out / "invocations.json", invocations)
    summary = read_json(out / "summary.json")
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    record = dict(command=shown, invocations=invocations, metrics={k: summary.get(k) for k in metrics},
                  history=history)
    write_json(out / "record.json", record)
    return record


def machine(device):
    """The machine a study ran on: the device's name, torch, Triton, Python, the platform."""
    import torch
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    name = (torch.cuda.get_device_name(0) if device.startswith("cuda")
            else f"cpu ({platform.machine()}, {os.cpu_count()} cores)")
    return dict(device=name, torch=torch.__version__, triton=triton_version, python=platform.python_version(),
                platform=platform.platform())


def add_common_arguments(p):
    """The arguments every study takes (its own go before): the evaluation, quick-trial subsets,
    the data, the device, the output folder, notes, and ``--from-records``."""
    p.add_argument("--eval-samples", type=int, default=1000)
    p.add_argument("--num-train", type=int, help="a random subset of the training images (quick trials)")
    p.add_argument("--num-test", type=int, help="a random subset of the test images (quick trials)")
    p.add_argument("--data", default="binarized-mnist", help="the training command's --data (tests: shapes)")
    p.add_argument("--device", default=None, help="default: cuda when there is a GPU, else cpu")
    p.add_argument("--out", type=Path)
    p.add_argument("--note", action="append", default=[], help="a paragraph printed under the table (repeatable)")
    p.add_argument("--from-records", type=Path, metavar="RECORDS",
                   help="only recompute results.md beside this records.json from it, and print it")
    return p


def default_device(device):
    """``device``, or cuda when there is a GPU, else cpu."""
    if device is not None:
        return device
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def recompute(path, table):
    """``--from-records``: ``results.md`` beside the records file ``path`` rewritten from it with
    ``table``, and printed."""
    text = table(read_json(path))
    (Path(path).parent / TABLE).write_text(text)
    print(text, end="")
    return 0


def finish(root, tool, script, argv, settings, notes, runs, table):
    """A study's end: ``records.json`` in ``root`` (the study's command, settings, machine, notes
    kept from earlier invocations plus the new ones, the runs) and ``results.md`` computed from
    it, printed."""
    earlier = read_json(root / RECORDS).get("notes", []) if (root / RECORDS).exists() else []
    records = dict(tool=tool, command=shlex.join(["python", script, *argv]),
                   date=min(i["started"] for r in runs for i in r["invocations"])[:10], settings=settings,
                   machine=machine(settings["device"]), notes=earlier + [n for n in notes if n not in earlier],
                   runs=runs)
    write_json(root / RECORDS, records)
    (root / TABLE).write_text(table(records))
    print((root / TABLE).read_text(), end="")
    return 0
