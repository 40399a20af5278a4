"""python -m fastvae.train on your own data (--data PATH), where its wall time went, a run of
one step, and the likelihood's spellings on the command line."""

import json

import numpy as np
import pytest
import torch

from fastvae import data, likelihoods, train
from fastvae.train.checkpoint import CHECKPOINT

from train_helpers import status_and_errors

OWN = ["--num-test", "16", "--batch-size", "32", "--latent-dim", "4", "--eval-samples", "2", "--no-progress",
       "--epochs", "1"]
CONTINUOUS = likelihoods.get("continuous_bernoulli")


def _run(tmp_path, source, *extra):
    out = tmp_path / "out"
    assert train.main(["--data", str(source), *OWN, "--out", str(out), *extra]) == 0
    return json.loads((out / "summary.json").read_text()), out


@pytest.mark.slow
def test_training_on_a_float_npy(tmp_path, capsys):
    x = np.random.default_rng(0).random((200, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "mine.npy", x)
    summary, out = _run(tmp_path, tmp_path / "mine.npy", "--likelihood", CONTINUOUS.cli_name, "--no-plots",
                        "--hidden", "32")
    cfg = summary["config"]
    assert cfg["input_shape"] == [3, 8, 8] and cfg["held_out"] == data.HELD_OUT and cfg["num_test"] == 16
    assert cfg["num_train"] == 160 and np.isfinite(summary["test_nll"])
    err = capsys.readouterr().err
    assert "wall time" in err and "data set-up" in err and "test evaluation" in err


@pytest.mark.slow
def test_training_on_vectors_writes_no_pictures_and_resumes(tmp_path):
    x = (np.random.default_rng(1).random((256, 10)) < 0.5).astype(np.uint8)
    np.save(tmp_path / "vectors.npy", x)
    common = ["--data", str(tmp_path / "vectors.npy"), *OWN, "--epochs", "2", "--hidden", "8", "--out",
              str(tmp_path / "out")]
    assert train.main([*common, "--stop-after", "3"]) == 0
    assert train.main([*common, "--resume"]) == 0
    out = tmp_path / "out"
    assert (out / "loss.png").exists() and not (out / "samples.png").exists()  # (10,) is not an image
    assert torch.load(out / CHECKPOINT, weights_only=True)["config"]["input_shape"] == [10]


@pytest.mark.slow
def test_training_on_a_folder_of_images(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    (tmp_path / "imgs").mkdir()
    rng = np.random.default_rng(2)
    for i in range(64):
        Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i:03d}.png")
    summary, out = _run(tmp_path, tmp_path / "imgs", "--likelihood", CONTINUOUS.cli_name, "--num-test", "4",
                        "--resize", "8x8", "--arch", "conv", "--conv-channels", "4,4")
    assert summary["config"]["input_shape"] == [1, 8, 8] and summary["config"]["resize"] == [8, 8]
    assert (out / "reconstructions.png").exists()


@pytest.mark.slow
def test_one_step_says_examples_per_s_was_not_measured(tmp_path, capsys):
    status, err = status_and_errors(tmp_path, capsys, "--num-train", "64", "--batch-size", "64")
    assert status == 0 and "nan" not in err
    assert "examples/s not measured (only the first step ran" in err
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["examples_per_s"] is None


def test_bad_own_data_settings_are_one_line_and_status_2(tmp_path, capsys):
    np.save(tmp_path / "grey.npy", np.full((50, 4), 200, np.uint8))
    (tmp_path / "table.csv").write_text("1,2\n")
    settings = [(["--data", str(tmp_path / "grey.npy")], "reads uint8 as 0/1"),
                (["--data", str(tmp_path / "grey.npy"), "--grey"], "--grey is for the built-in data sets"),
                (["--data", str(tmp_path / "grey.npy"), "--image-size", "64"], "--image-size is for the built-in"),
                (["--held-out", "0.2"], "--held-out and --resize are for your own data")]
    for argv, words in settings:
        status, err = status_and_errors(tmp_path, capsys, *argv)
        assert status == 2 and err.count("\n") == 1 and words in err, (argv, err)
    arguments = [(["--data", str(tmp_path / "table.csv")], "not a kind of data fastvae reads"),
                 (["--data", str(tmp_path / "nothing.npy")], "neither a built-in data set"),
                 (["--held-out", "0.7"], "a fraction between 0 and 0.5"),
                 (["--resize", "8x"], "expected a size like 64 or 64x48")]
    for argv, words in arguments:  # refused by the parser, before anything runs
        with pytest.raises(SystemExit) as e:
            train.build_parser().parse_args(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count("\n") == 1 and words in err, (argv, err)


def test_the_likelihood_takes_both_spellings():
    parser = train.build_parser()
    for spelling in (CONTINUOUS.name, CONTINUOUS.cli_name):
        assert parser.parse_args(["--likelihood", spelling]).likelihood == CONTINUOUS.cli_name
