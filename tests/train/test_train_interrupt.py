"""fastvae.train.interrupt: Ctrl-C during training checkpoints where it stopped, says how to go
on, exits with status 130, and --resume then gives the unbroken run. The SIGINT comes from
outside, into a process of its own, while tests/train/train_paused.py holds it at a known step. (Under
torchrun: tests/train/test_train_distributed.py.)"""

import shlex
import sys

import pytest
import torch

from fastvae import train
from fastvae.train import runner
from fastvae.train.checkpoint import CHECKPOINT

from train_helpers import interrupt, run, same_metrics, SMALL, start_paused

COMMON = ("--epochs", "2", "--no-plots")


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The unbroken run: its directory and summary."""
    out = tmp_path_factory.mktemp("whole")
    return out, run(out, *COMMON)


@pytest.mark.slow
@pytest.mark.parametrize("pause_at, where", [(4, "at step 4 (epoch 1, batch 4 of 6)"),
                                             (6, "at step 6, after epoch 1")])
def test_ctrl_c_checkpoints_and_resume_gives_the_unbroken_run(tmp_path, whole, pause_at, where):
    argv = [*SMALL, "--out", str(tmp_path), *COMMON]
    status, err = interrupt(*start_paused([sys.executable], argv, pause_at))
    assert status == 130 and "Traceback" not in err, err[-3000:]
    assert f"interrupted {where}; saved {tmp_path / CHECKPOINT}\n" in err, err[-3000:]
    assert f"continue with: python -m fastvae.train {shlex.join([*argv, '--resume'])}\n" in err, err[-3000:]
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert saved["step"] == pause_at and (saved["epoch"], saved["batch"]) == ((0, 4) if pause_at == 4 else (1, 0))
    assert not (tmp_path / "summary.json").exists()
    resumed = run(tmp_path, *COMMON, "--resume")
    whole_out, whole_summary = whole
    for key in ("test_neg_elbo", "test_nll", "steps", "examples"):
        assert resumed[key] == whole_summary[key], key
    assert same_metrics(tmp_path) == same_metrics(whole_out)


def _raise_keyboard_interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("where, said", [("load_data", "interrupted before the first checkpoint; nothing was saved"),
                                         ("_finish", "interrupted; the last checkpoint")])
def test_ctrl_c_outside_training_is_one_message_and_130(tmp_path, capsys, monkeypatch, where, said):
    """In set-up or in the final evaluation Ctrl-C raises as usual; the command says what is
    kept and how to go on, without a traceback."""
    monkeypatch.setattr(runner, where, _raise_keyboard_interrupt)
    argv = [*SMALL, "--out", str(tmp_path), *COMMON]
    assert train.main(argv) == 130
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err, err
    if where == "_finish":
        assert f"continue with: python -m fastvae.train {shlex.join([*argv, '--resume'])}\n" in err
