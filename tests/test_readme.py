"""The README's examples run as written: the code blocks are read from README.md here, so the
two cannot drift apart.

* "own data": a new user's first steps with their own data, as the README gives them: make a
  ``.npy``, train on it, load the checkpoint in Python, sample with ``python -m fastvae.sample``.
  Each command runs as a subprocess in an empty folder, with the environment a user has (no
  ``TRITON_INTERPRET``, no forced backend), against the installed package, as from a fresh clone.
* "own loop": the training loop of your own, run in this process (on a CPU through Triton's
  interpreter, so the real kernels run).
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def block(name):
    """The code block that follows ``<!-- test: NAME ...-->`` in README.md."""
    text = README.read_text()
    m = re.search(r"<!-- test: " + re.escape(name) + r"\b[^>]*-->\s*```(\w+)\n(.*?)```", text, re.S)
    assert m, f"README.md has no block marked <!-- test: {name} -->"
    return m.group(2)


def _user_env():
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "FASTVAE_BACKEND")}
    return dict(env, OMP_NUM_THREADS="2")


@pytest.mark.slow
def test_own_data_from_the_readme(tmp_path):
    commands = [line for line in block("own data").splitlines() if line.strip()]
    assert [c.split()[:3] for c in commands[1:2]] == [["python", "-m", "fastvae.train"]]
    outputs = []
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "python", command
        proc = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, env=_user_env(), capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
        outputs.append(proc.stdout + proc.stderr)
    assert "wall time" in outputs[1] and "examples/s" in outputs[1]
    assert outputs[2].strip() == "torch.Size([4, 1, 28, 28])"  # loaded in Python, sampled
    run = tmp_path / "runs" / "mine"
    assert (run / "more_samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples = np.load(run / "more.npy")
    assert samples.shape == (16, 1, 28, 28) and samples.dtype == np.float32
    assert 0 <= samples.min() and samples.max() <= 1  # Bernoulli means


def test_own_training_loop_from_the_readme(capsys):
    code = block("own loop")
    exec(compile(code, "README.md (own loop)", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    value = float(re.search(r"negative ELBO ([\d.]+) nats", out).group(1))
    assert 10 < value < 543  # finite, and below the 784 log 2 = 543 nats of a model that knows nothing
