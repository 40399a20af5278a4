"""``python -m fastvae`` (the install check) and ``benchmarks/count_bytes.py``."""

import pathlib
import runpy
import sys

import pytest

from fastvae.__main__ import main


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_self_check_passes(dtype, capsys):
    assert main(["--batch", "9", "--dim", "50", "--latent", "5", "--dtype", dtype]) == 0
    out = capsys.readouterr().out
    assert "running the Triton kernels" in out and "PASS: 51 of 51" in out
    assert "drawn noise" in out
    for row in ("elbo_loss: grad logits", "continuous_bernoulli_log_likelihood: grad logits",
                "gaussian_log_likelihood: grad logscale", "reparameterize_iw: grad logvar", "iwae_loss: grad recon",
                "negative_binomial_log_likelihood: grad log_theta",
                "softmax_negative_binomial_log_likelihood: grad logits",
                "negative_binomial_log_likelihood (zero inflated negative binomial): grad zero_inflation_logits"):
        assert row in out


def test_self_check_fails_on_a_wrong_kernel(capsys, monkeypatch):
    import fastvae.ops.likelihood as ops

    real = ops.log_likelihood
    monkeypatch.setattr(ops, "log_likelihood", lambda *a, **k: real(*a, **k) * 1.01)
    assert main(["--batch", "4", "--dim", "8", "--latent", "2"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_count_bytes_runs(capsys, monkeypatch):
    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "count_bytes.py"
    monkeypatch.setattr(sys, "argv", [str(path), "--batch", "64", "--dim", "784", "--latent", "8"])
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert "eager PyTorch:" in out
    # the fused path: two kernels forward, two backward, each launched once
    eager = out.split("fastvae: ")[1].split("fastvae compiled: ")[0]
    assert "triton::likelihood_kernel x1, triton::reparameterize_kl_fwd_kernel x1" in eager
    assert "triton::reparameterize_kl_bwd_kernel x1, triton::scale_rows_kernel x1" in eager
    # under torch.compile: the custom ops, the Bernoulli gradient recomputed in backward
    compiled = out.split("fastvae compiled: ")[1]
    assert "fastvae::draw_seed x1, fastvae::likelihood x1, fastvae::reparameterize_kl x1" in compiled
    assert "fastvae::likelihood_backward x1, fastvae::reparameterize_kl_backward x1" in compiled
    ratio = float(out.split("ratio eager / fastvae bytes: ")[1].split("x")[0])
    assert ratio > 2


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_readme_byte_table_matches_count_bytes(dtype, capsys):
    # the README's passes-and-bytes table is count_bytes.py's output at its defaults
    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "count_bytes.py"
    totals = runpy.run_path(str(path))["main"](["--dtype", dtype])
    out = capsys.readouterr().out
    eager_ops = out.split("eager PyTorch: ")[1].split(" ops forward, ")
    ef, eb = int(eager_ops[0]), int(eager_ops[1].split(" ")[0])
    fused_ops = out.split("\nfastvae: ")[1].split(" ops forward, ")
    ff, fb = int(fused_ops[0]), int(fused_ops[1].split(" ")[0])
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| {dtype} |"))
    assert f"{ef} + {eb}, {totals['eager PyTorch'] / 1e6:.0f} MB" in row, row
    assert f"| {ff} + {fb}, {totals['fastvae'] / 1e6:.0f} MB" in row, row
    assert f"{totals['eager PyTorch'] / totals['fastvae']:.1f}x" in row, row
    assert f"{totals['fastvae compiled'] / 1e6:.0f} MB" in row, row
    assert f"{totals['eager PyTorch'] / totals['fastvae compiled']:.1f}x" in row, row
