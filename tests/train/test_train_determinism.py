"""The training command repeats itself to the bit: two runs with the same seed write the same
metrics (timing aside), the same test results and the same weights and optimiser state; another
seed gives another run. (A resumed run against an unbroken one: tests/train/test_train_checkpoint.py.)"""

import json

import torch

from fastvae.train.checkpoint import CHECKPOINT

from train_helpers import run, same_metrics


def _state(out):
    saved = torch.load(out / CHECKPOINT, weights_only=True)
    return saved["model"], saved["optimizer"]["state"]


def test_two_runs_with_the_same_seed_are_bit_identical(tmp_path):
    common = ("--epochs", "2", "--no-plots", "--seed", "3")
    a, b = run(tmp_path / "a", *common), run(tmp_path / "b", *common)
    for key in ("test_neg_elbo", "test_nll", "final_train_neg_elbo", "final_valid_neg_elbo", "steps"):
        assert a[key] == b[key], key
    assert same_metrics(tmp_path / "a") == same_metrics(tmp_path / "b")
    (wa, oa), (wb, ob) = _state(tmp_path / "a"), _state(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert all(torch.equal(oa[i][k], ob[i][k]) for i in oa for k in oa[i] if isinstance(oa[i][k], torch.Tensor))
    other = run(tmp_path / "c", "--epochs", "2", "--no-plots", "--seed", "4")
    assert other["test_neg_elbo"] != a["test_neg_elbo"]
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["config"]["seed"] == 3
