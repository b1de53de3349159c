"""Child processes import the installed pygzlaw, not a ``pygzlaw/`` folder in the cwd."""
import subprocess
import sys

from pygzlaw import __version__
from pygzlaw import _subproc
from pygzlaw._subproc import module_argv


def _shadow(tmp_path):
    # what a clone's parent folder looks like to `python -m`: a pygzlaw/ that is not the package
    (tmp_path / "pygzlaw").mkdir()
    (tmp_path / "pygzlaw" / "__init__.py").write_text("raise ImportError('shadowed by the cwd')\n")
    return tmp_path


def test_plain_dash_m_is_shadowed_by_the_cwd(tmp_path):
    # the fault module_argv exists for: if this ever passes, the guard is no longer needed
    r = subprocess.run([sys.executable, "-m", "pygzlaw", "--version"], cwd=_shadow(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "shadowed by the cwd" in r.stderr


def test_module_argv_runs_the_installed_package_from_a_shadowing_cwd(tmp_path):
    r = subprocess.run(module_argv("pygzlaw", "--version"), cwd=_shadow(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert __version__ in r.stdout


def test_the_310_launcher_also_drops_the_cwd_and_passes_arguments(tmp_path):
    argv = [sys.executable, "-c", _subproc._LAUNCHER, "pygzlaw", "--version"]
    r = subprocess.run(argv, cwd=_shadow(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert __version__ in r.stdout
