"""fastvae.train.runner: the console header names what really runs the fused ops."""

import torch

import fastvae
from fastvae import _backend

from train_helpers import status_and_errors


def _header(out, capsys, *argv):
    status, err = status_and_errors(out, capsys, "--stop-after", "1", *argv)
    assert status == 0, err
    return err.splitlines()[0]


def test_the_header_names_what_runs_the_ops(tmp_path, capsys, monkeypatch):
    kernels = "Triton kernels on CUDA" if torch.cuda.is_available() else "Triton kernels through the interpreter"
    assert f"mlp VAE, bernoulli likelihood, ELBO, on {kernels}, 1 x " in _header(tmp_path / "a", capsys)
    assert "ELBO, on plain PyTorch (fastvae.reference), 1 x " in _header(tmp_path / "b", capsys, "--no-fused")
    header = _header(tmp_path / "f", capsys, "--likelihood", "gaussian", "--objective", "dreg", "--no-fused")
    assert "gaussian likelihood, DReG (K=5), on plain PyTorch" in header
    fastvae.set_backend("torch")
    assert "on plain PyTorch (fastvae.reference)" in _header(tmp_path / "c", capsys)
    if not torch.cuda.is_available():  # CPU without the interpreter: the reference, whatever --fused says
        monkeypatch.setattr(_backend, "INTERPRET", False)
        fastvae.set_backend("auto")
        assert "on plain PyTorch (fastvae.reference)" in _header(tmp_path / "d", capsys)
        fastvae.set_backend("triton")  # ... which cannot run the kernels: a settings error
        status, err = status_and_errors(tmp_path / "e", capsys)
        assert status == 2 and "TRITON_INTERPRET=1" in err
