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


def test_a_study_runs_from_a_folder_holding_a_pygzlaw_tree(tmp_path, monkeypatch):
    # the new user's case: `pygzlaw reproduce` started from the folder that holds the clone
    import os

    from pygzlaw.study.executor import LocalExecutor
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "study")
    # no empty PYTHONPATH entry: that one would put the cwd back on sys.path
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
    monkeypatch.chdir(_shadow(tmp_path))
    with LocalExecutor(1, threads=1, run_fn="study_fns:synthetic_run") as ex:
        ex.submit("r0", {"n": 1000, "d": 2048})
        got = list(ex.results())
    assert len(got) == 1 and got[0].ok, got[0].error
