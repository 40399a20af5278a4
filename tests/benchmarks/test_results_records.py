"""Every results table committed under benchmarks/results/ ships the machine-readable records of
the runs it summarises (``records.json`` beside it: per run its command, commit, seed, device
and metrics), and is exactly the table those records give (``benchmarks.studies.records``)."""

import re
import subprocess

import pytest

from benchmarks import RESULTS, ROOT
from benchmarks.studies.records import read_json, rebuild, RECORDS


def _committed_tables():
    out = subprocess.run(["git", "ls-files", "--", str(RESULTS)], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return [ROOT / f for f in out.stdout.split() if f.endswith(".md")]


def test_every_results_table_ships_its_records_and_is_what_they_give():
    for table in _committed_tables():
        records = table.parent / RECORDS
        assert records.exists(), f"{table.relative_to(ROOT)} has no {RECORDS} beside it"
        assert rebuild(records) == table.read_text(), \
            f"{table.relative_to(ROOT)} is not what its records give (the tool's --from-records {records})"
        rec = read_json(records)
        if "runs" not in rec:  # one measurement (benchmarks/memory.py): its command and commit
            assert rec["command"] and rec["device"], rec.keys()
            assert re.fullmatch(r"[0-9a-f]{40}", rec["commit"]) and not rec["dirty"], (rec["commit"], rec["dirty"])
            continue
        for run in rec["runs"]:
            assert {"command", "seed", "metrics", "invocations"} <= set(run), run.keys()
            assert run["metrics"]["device"] and run["invocations"]
            for inv in run["invocations"]:
                assert re.fullmatch(r"[0-9a-f]{40}", inv["commit"]) and not inv["dirty"], inv
