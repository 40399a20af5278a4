"""The machine-readable records a study writes beside its table, and the one way back from
records to table.

Every results table under ``benchmarks/results/`` is computed from a records file beside it
(``records.json``): the study's settings, the machine, and per run its command, commit, seed,
device and metrics. ``rebuild(path)`` recomputes the table from the records alone, with the
function of the tool that wrote them (``TABLES``); ``tests/benchmarks/test_results_records.py``
checks that every committed table is exactly what its records give.
"""

import importlib
import json
import os
import subprocess
from pathlib import Path

RECORDS = "records.json"  # a study's records, in its --out folder beside its table
TABLE = "results.md"      # the table computed from them

# the tool named in a records file -> "module:function" that turns the records into the table
TABLES = {"objectives_mnist": "benchmarks.studies.objectives_mnist:table"}


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
