"""fastvae.train.cli: every bad setting is one line and exit status 2, never a traceback.
(Values the parser itself refuses: tests/train/test_train_args.py; Ctrl-C: tests/train/test_train_interrupt.py.)"""

import os
import subprocess
import sys

import pytest
import torch

from fastvae import train

from train_helpers import ROOT, status_and_errors


def _bad_settings(tmp_path):
    """(arguments, words the one-line error must contain)."""
    (tmp_path / "file").write_text("")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "checkpoint.pt").write_text("not a checkpoint")
    (tmp_path / "foreign").mkdir()
    torch.save({"model": {}}, tmp_path / "foreign" / "checkpoint.pt")
    return [
        (["--out", str(tmp_path / "file")], "is a file, but --out is the directory"),
        (["--out", str(tmp_path / "file" / "run")], "is a file, not a directory"),
        (["--out", ""], "--out is empty"),
        (["--arch", "conv", "--conv-channels", "4,8"], "--hidden is for --arch mlp"),
        (["--resume"], "--resume: no checkpoint at"),
        (["--resume", "--out", str(tmp_path / "junk")], "cannot read"),
        (["--resume", "--out", str(tmp_path / "foreign")], "is not a checkpoint of fastvae's training command"),
        (["--num-train", "10"], "larger than the 10 examples"),
        (["--data", "binarized-mnist", "--data-dir", str(tmp_path / "nowhere")], "does not exist"),
        (["--data", "binarized-mnist", "--data-dir", str(tmp_path / "file")], "a file, not a directory"),
        (["--data", "binarized-mnist", "--image-size", "64"], "are for --data shapes"),
        (["--num-train", str(10**13)], "out of memory"),
        (["--logscale", "0.5"], "--logscale is for --likelihood gaussian"),
        (["--grey"], "--grey is for --data mnist"),
        (["--samples", "3"], "--samples is for --objective iwae or dreg"),
        (["--objective", "iwae", "--beta", "0.5"], "--objective iwae has none"),
        (["--objective", "dreg", "--compile"], "runs eagerly only"),
        (["--data", "mnist", "--grey"], "add --likelihood continuous-bernoulli or gaussian"),
        (["--data", "mnist", "--likelihood", "gaussian"], "add --grey"),
    ]


def test_bad_settings_are_one_line_and_status_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FASTVAE_DATA_DIR", raising=False)
    for argv, words in _bad_settings(tmp_path):
        status, err = status_and_errors(tmp_path, capsys, *argv)
        assert status == 2 and err.count("\n") == 1 and words in err, (argv, err)
    assert train.main(["--data", "binarized-mnist", "--out", str(tmp_path / "m")]) == 2
    assert "FASTVAE_DATA_DIR" in capsys.readouterr().err


def test_unwritable_out(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    real = os.access  # root may write anywhere: the answer a user would get, for this folder
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == str(locked) else real(p, mode, **kw))
    status, err = status_and_errors(tmp_path, capsys, "--out", str(locked / "run"))
    assert status == 2 and f"no permission to write in {locked}" in err


@pytest.mark.slow
def test_the_command_never_shows_a_traceback(tmp_path):
    (tmp_path / "file").write_text("")
    for argv in (["--out", str(tmp_path / "file")], ["--lr", "nan"], ["--resume", "--out", str(tmp_path)]):
        proc = subprocess.run([sys.executable, "-m", "fastvae.train", *argv], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr
