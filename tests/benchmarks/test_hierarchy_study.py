"""benchmarks/hierarchy_mnist.py: the hierarchical VAE's run recorded beside its table, the table
recomputed from the records alone (``--from-records``), a finished run kept when started again."""

import json

import pytest

import fastvae
from benchmarks import ROOT
from benchmarks.studies import hierarchy_mnist as study
from benchmarks.studies.records import git_state, rebuild, RECORDS, TABLE

pytestmark = pytest.mark.slow

QUICK = ["--data", "shapes", "--epochs", "1", "--num-train", "200", "--num-test", "20", "--eval-samples", "2",
         "--device", "cpu"]


def test_the_study_records_its_run_and_its_table_comes_from_them(tmp_path, monkeypatch, capsys):
    # the run is a process of its own: the CPU path a user gets (not this session's interpreter)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.delenv("FASTVAE_BACKEND", raising=False)
    fastvae.set_backend("torch")
    out = tmp_path / "study"
    assert study.main([*QUICK, "--out", str(out)]) == 0
    records = json.loads((out / RECORDS).read_text())
    (run,) = records["runs"]
    assert records["tool"] == study.TOOL and run["seed"] == 0 and "--arch hierarchical" in run["command"]
    assert [i["commit"] for i in run["invocations"]] == [git_state(ROOT)[0]]
    assert len(run["metrics"]["test_level_kl"]) == 2 and run["history"][-1]["epoch"] == 1
    text = (out / TABLE).read_text()
    assert study.table(records) == text == rebuild(out / RECORDS) and "| 0 |" in text
    (out / TABLE).write_text("edited by hand\n")
    assert study.main(["--from-records", str(out / RECORDS)]) == 0 and (out / TABLE).read_text() == text
    capsys.readouterr()
    assert study.main([*QUICK, "--out", str(out)]) == 0  # started again: kept, nothing trained
    assert "kept" in capsys.readouterr().out
