"""fastvae/_shadow.py: started from a folder that holds a clone named fastvae (git clone's
default), with fastvae installed in editable mode, the commands say what happened and what to do
instead of ``ImportError: cannot import name '__version__'``."""

import os
import subprocess
import sys

import pytest

from train_helpers import ROOT

# what `pip install -e` puts on sys.meta_path: fastvae's submodules from the real package
_EDITABLE = """
import importlib.machinery, runpy, sys
root, module = sys.argv[1:]
class Finder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.startswith("fastvae."):
            return importlib.machinery.PathFinder.find_spec(name, [root + "/fastvae"])
sys.meta_path.append(Finder)
sys.argv = ["-m", "--help"]
runpy._run_module_as_main(module)
"""


def _in_parent_of_a_clone(tmp_path, *cmd):
    (tmp_path / "fastvae").symlink_to(ROOT, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *cmd], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


def _explained(proc):
    return (proc.returncode == 1 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
            and "imported the folder" in proc.stderr and "cd fastvae" in proc.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("module", ["fastvae.train", "fastvae"])
def test_a_clone_named_fastvae_in_the_current_directory(tmp_path, module):
    assert _explained(_in_parent_of_a_clone(tmp_path, "-c", _EDITABLE, str(ROOT), module))


@pytest.mark.slow
def test_the_same_with_this_checkout_installed(tmp_path):
    """The real thing, when this checkout is the installed one (as after CI's pip install -e .)."""
    where = subprocess.run([sys.executable, "-c", "import fastvae; print(fastvae.__file__)"], cwd="/",
                           capture_output=True, text=True).stdout.strip()
    if where != str(ROOT / "fastvae" / "__init__.py"):
        pytest.skip(f"fastvae is installed from {where or 'nowhere'}, not from this checkout")
    proc = _in_parent_of_a_clone(tmp_path, "-m", "fastvae.train", "--help")
    # editable: the message; with the checkout itself on sys.path, the real package wins: it works
    assert _explained(proc) or (proc.returncode == 0 and "--out" in proc.stdout), proc.stderr
