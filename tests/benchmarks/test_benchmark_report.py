"""``benchmarks/harness/report.py`` and ``plots.py``: what a run writes."""

import sys

import torch

from benchmarks.harness import cases, measure, plots, report, timing
from benchmarks.harness.case_types import Config, IMPLS
from benchmarks.harness.metadata import metadata


def test_plots_are_optional(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    assert plots.plot({"records": []}, tmp_path) == []
    assert "matplotlib is not installed" in capsys.readouterr().out


def _meta(records):
    meta = metadata(torch.device("cpu"), ["--quick"], True, timing.CpuTimer())
    meta.update(copy_bandwidth={"bytes_copied": 2**20, "bytes_moved": 2**21, "median_ms": 1.0, "gb_per_s": 2.0},
                records=records, failures=[])
    return meta


def test_markdown_puts_the_headline_configurations_first():
    records = []
    for batch in (256, 512):
        c = Config("reparameterize_kl", batch, "float32", latent=64)
        spread = timing.Spread.of([0.9, 1.0, 1.1])
        results = {impl: {m: (spread, None, None, "eager") for m in cases.CASES[c.op].modes} for impl in IMPLS}
        records += measure.make_records(c, results, copy_gbs=2.0)
    md = report.markdown(_meta(records))
    head, rest = md.split("## reparameterize_kl")
    headline = [line for line in head.splitlines() if line.startswith("| reparameterize_kl")]
    assert len(headline) == 1 and "| fwd+bwd | float32 | B=256 L=64 |" in headline[0]  # cases.LAUNCH_BOUND
    assert rest.count("| reparameterize_kl") == 6  # every mode of both sizes under the op
    assert "the Triton kernels are NOT timed on this machine" in md
    rows = [report.table_row(g) for g in report.group_rows(records)]  # the console: one row per mode and size
    assert len(rows) == 6 and rows[0].split()[:5] == ["reparameterize_kl", "fwd", "float32", "B=256", "L=64"]
    # every time with its spread, every ratio with its range, and a CPU run says its ratios are noisy
    assert "1 ±5%" in rows[0] and "1.000 (0.90-1.11)" in rows[0]
    assert "1 ±5%" in headline[0] and "1.000 (0.90-1.11)" in headline[0]
    assert report.CPU_NOISE in md and "ratios are noisy" in report.CPU_NOISE


def test_results_files_name_what_a_partial_run_covers(tmp_path):
    meta = _meta([])
    every = list(cases.CASES)
    assert report.stem(meta, every, [], False) == f"cpu-{meta['date']}"
    assert report.stem(meta, ["elbo_loss"], ["bfloat16"], True) == f"cpu-{meta['date']}-elbo_loss-bfloat16-quick"
    json_path, md_path = report.write_results(meta, tmp_path, "x", with_plots=False)
    assert (json_path.name, md_path.name) == ("x.json", "x.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.md"]  # written whole, then renamed
