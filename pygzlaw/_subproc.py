"""Start a pygzlaw module in a child Python process without the current folder on sys.path.

``python -m pkg.mod`` puts the current working directory first on ``sys.path``; started from the
folder that holds a clone (``~`` with ``~/pygzlaw``), the child then imports the clone's source
tree instead of the installed package, and fails (no compiled extensions, no ``__version__``).
``-P`` (Python >= 3.11) leaves the folder out; on 3.10 a ``-c`` launcher removes it.
``PYTHONPATH`` is honoured either way.
"""
from __future__ import annotations

import sys

_LAUNCHER = ("import runpy, sys; sys.path.pop(0); module = sys.argv.pop(1); "
             "runpy.run_module(module, run_name='__main__', alter_sys=True)")


def module_argv(module: str, *args: str) -> list[str]:
    """argv running ``python -m module args...`` with the current folder kept off sys.path.

    Args:
        module: dotted module name, e.g. ``"pygzlaw.study.worker"``.
        *args: its command-line arguments (strings).

    Returns:
        list[str] for ``subprocess.Popen``/``run``.
    """
    if sys.version_info >= (3, 11):
        return [sys.executable, "-P", "-m", module, *args]
    # runpy's alter_sys sets sys.argv[0] to the module's path, as -m does
    return [sys.executable, "-c", _LAUNCHER, module, *args]
