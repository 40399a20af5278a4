"""The rules of the house (CONTRIBUTING.md), checked on the tracked source: file and function
sizes, the kernels' independence from ``fastvae``, and the likelihood names spelled only in the
registry."""

import ast
import io
import os
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from fastvae import likelihoods

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60  # a function's body; a signature with one parameter per line does not count


def _python_files():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return [ROOT / f for f in out.stdout.split() if (ROOT / f).exists()]


def test_no_python_file_over_400_lines():
    long = {str(f.relative_to(ROOT)): n for f in _python_files()
            if (n := f.read_text().count("\n")) > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_no_function_body_over_60_lines_outside_the_tests():
    long = []
    for f in _python_files():
        if f.relative_to(ROOT).parts[0] == "tests":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.body[0].lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{f.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, f"function bodies over {MAX_FUNCTION_LINES} lines: {long}"


def test_kernels_import_nothing_from_fastvae():
    bad = []
    for f in sorted((ROOT / "kernels").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level >= 2 or (node.module or "").startswith("fastvae")):
                bad.append(f"{f.name}:{node.lineno}")
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "fastvae" for a in node.names):
                bad.append(f"{f.name}:{node.lineno}")
    assert not bad, f"kernels/ reaches up into fastvae at {bad}"


def test_kernels_run_as_a_package_of_their_own():
    # kernels/ imported as the top-level package ``kernels`` (not fastvae.kernels): one
    # Bernoulli pass through Triton's interpreter, and fastvae never imported
    code = (
        "import sys, torch, kernels\n"
        "from kernels import modes\n"
        "p = torch.zeros(2, 3); x = torch.ones(2, 3)\n"
        "ll = kernels.likelihood_pass(modes.BERNOULLI, p, x)[0]\n"
        "assert torch.allclose(ll, torch.full((2,), -3 * 0.6931471805599453)), ll\n"
        "assert not any(m == 'fastvae' or m.startswith('fastvae.') for m in sys.modules), 'fastvae imported'\n"
    )
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


# where the likelihood names may be written as strings: the registry and the argument parsing
NAMES_ALLOWED_IN = {"fastvae/likelihoods.py", "fastvae/train/args.py"}


def _string_literals(path):
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING:
            try:
                value = ast.literal_eval(tok.string)
            except (ValueError, SyntaxError):  # f-strings
                continue
            if isinstance(value, str):
                yield tok.start[0], value


def test_likelihood_names_are_spelled_only_in_the_registry():
    names = {n for r in likelihoods.records() for n in (r.name, r.cli_name, *r.aliases)}
    found = []
    for f in _python_files():
        rel = f.relative_to(ROOT).as_posix()
        if rel.split("/")[0] not in ("fastvae", "kernels") or rel in NAMES_ALLOWED_IN:
            continue
        found += [f"{rel}:{line} {value!r}" for line, value in _string_literals(f) if value in names]
    assert not found, f"likelihood names written outside the registry: {found}"
