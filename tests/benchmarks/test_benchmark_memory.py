"""``benchmarks/memory.py`` (``benchmarks/footprint/measure.py``): the count of the bytes kept for
backward, the second eager baseline (VDVAE's spelling of the loss), and the whole tool at a tiny
size. No memory figure is asserted (the committed results are measurements, not tests)."""

import json

import pytest
import torch

from benchmarks.footprint import measure
from benchmarks.harness import mixture_cases, vdvae
from benchmarks.harness.case_types import Config
from fastvae import reference


def test_kept_bytes_counts_each_saved_storage_once():
    a = torch.randn(1000, requires_grad=True)
    kept, new, out = measure.kept_bytes(lambda t: torch.exp(t), (a,))  # exp keeps its output: new
    assert kept == new == 4000 and out.shape == (1000,)
    # two views of the input kept by a mul: its storage once, and nothing new
    kept, new, _ = measure.kept_bytes(lambda t: t[:500] * t[500:], (a,))
    assert (kept, new) == (4000, 0)
    with torch.no_grad():
        assert measure.kept_bytes(lambda t: torch.exp(t), (a,))[0] == 0


@pytest.mark.parametrize("bits", [8, 5])
def test_vdvae_baseline_is_the_pixelcnn_formulation(bits):
    c = Config("mixture_ll", 3, "float32", image="4x5x3", mixtures=4, targets="uint8")
    inputs = mixture_cases._inputs(c, torch.device("cpu"))
    params, x = inputs.args
    params64 = params.detach().double()
    x = (x.long() % 2**bits).to(torch.uint8)
    got = vdvae.log_likelihood(params64, x, bits=bits)
    want = reference.pixelcnn_log_likelihood(params64, x, 4, bits=bits, dim=-1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-9)
    # NCHW inputs go through channels-last views
    if bits == 8:
        nchw = mixture_cases.vdvae_forward(params64.permute(0, 3, 1, 2), x.permute(0, 3, 1, 2))[0]
        torch.testing.assert_close(nchw, got)


@pytest.mark.slow
def test_memory_tool_runs_at_a_tiny_size(tmp_path):
    argv = ["--batch", "2", "--image", "4x4x3", "--impls", "eager,vdvae", "--out", str(tmp_path), "--tag", "t"]
    assert measure.main(argv) == 0
    (folder,) = tmp_path.glob("t-memory-*")
    got = json.loads((folder / "records.json").read_text())
    assert got["tool"] == "memory" and got["commit"]
    assert got["command"] == "python benchmarks/memory.py " + " ".join(argv)
    rows = got["rows"]
    # one configuration (the three at one size), eager, vdvae and fastvae (always: the ratios' base)
    assert [r["impl"] for r in rows] == ["eager", "vdvae", "fastvae"], rows
    for r in rows:
        assert "error" not in r, r
        assert r["kept"] >= r["kept_new"] >= 0 and r["kept"] > 0 and r["step_peak"] is not None and r["kept_ratio"] > 0
    assert rows[-1]["grad_fn"] == "fastvae_mixtureBackward"  # the fused route's autograd function
    table = (folder / "results.md").read_text()
    assert "| fastvae | fastvae_mixtureBackward |" in table
    assert measure.main(["--from-records", str(folder / "records.json")]) == 0  # the table, from the records
    assert (folder / "results.md").read_text() == table
