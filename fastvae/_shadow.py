"""A clear error for a folder that hides the installed fastvae.

Started from a directory that holds a folder named ``fastvae`` that is not the package (a clone
of this repository keeps that name, ``git clone``'s default), ``python -m fastvae.train`` imports
that folder as the package ``fastvae``: Python looks in the current directory first, and a folder
without ``__init__.py`` becomes a namespace package. With fastvae installed in editable mode
(``pip install -e``), the submodules still come from the real package, and the first name they
take from ``fastvae`` fails (``cannot import name '__version__'``). The entry points call
``check_not_shadowed`` first, so that failure says what happened and what to do instead. (Not
installed, Python itself says ``No module named fastvae.train``; installed normally, the real
package wins and everything works.)

Importing this module makes the check: entry points import it before anything else.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def check_not_shadowed():
    """ImportError when ``fastvae`` was imported from a folder other than this package."""
    pkg = sys.modules.get("fastvae")
    if pkg is None or getattr(pkg, "__file__", None) is not None:
        return
    folders = [str(p) for p in getattr(pkg, "__path__", [])]
    where = " and ".join(folders) or "a folder without __init__.py"
    hint = next((f for f in folders if os.path.isdir(os.path.join(f, "fastvae"))), None)
    raise ImportError(
        f"Python imported the folder {where} as the package fastvae instead of the installed one ({_HERE}): "
        f"the current directory (or another entry of sys.path before it) holds a folder named fastvae"
        + (f" ({hint} looks like a clone of the repository)" if hint else "")
        + ". Run the command from another directory, for example from inside the clone "
          "(cd fastvae), or rename the folder.", name="fastvae")


check_not_shadowed()
