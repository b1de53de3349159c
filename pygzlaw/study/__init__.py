"""The paper's study end to end: grammars → H → a grid of training runs → laws → report.

Python API (mirrors ``pygzlaw reproduce``, ``pygzlaw runs``, ``pygzlaw report``)::

    from pygzlaw.study import load_config, reproduce, list_runs, export_runs, build_report
    cfg = load_config(scale="tiny", out="study-tiny")        # or load_config("study.toml")
    outcome = reproduce(cfg)                                 # resumes: finished runs are skipped
    rows = list_runs("study-tiny/runs.sqlite", status="done", grammar="main-3")
    export_runs("study-tiny/runs.sqlite", "runs.json")
    build_report("study-tiny")                               # re-analyse from the database

Modules: ``config`` (TOML, scales), ``store`` (SQLite run store), ``executor`` (the seam; local
worker processes), ``worker`` (one run through ``pygzlaw.train.train``), ``run`` (the driver),
``analysis`` (fits, regressions, frontier), ``report`` (report folder), ``cli``.
Importing this package imports no torch (the workers do).
"""
from __future__ import annotations

from pygzlaw.study.config import SCALES, StudyConfig, load_config, scale_config
from pygzlaw.study.executor import Executor, LocalExecutor, RunResult
from pygzlaw.study.report import build_report
from pygzlaw.study.run import StudyOutcome, plan_runs, reproduce
from pygzlaw.study.store import RunStore, run_id_of

__all__ = ["SCALES", "StudyConfig", "load_config", "scale_config", "Executor", "LocalExecutor", "RunResult",
           "build_report", "StudyOutcome", "plan_runs", "reproduce", "RunStore", "run_id_of", "list_runs",
           "export_runs"]


def list_runs(db, *, status=None, grammar=None, model=None) -> list[dict]:
    """Runs in a study database as dicts (see RunStore.runs); filters combine with AND.

    Raises:
        FileNotFoundError: no such database.
    """
    import os

    if not os.path.isfile(db):
        raise FileNotFoundError(f"{db}: no study database")
    with RunStore(db) as store:
        return store.runs(status=status, grammar=grammar, model=model)


def export_runs(db, path, *, status=None, grammar=None, model=None) -> int:
    """Write runs to ``path`` as .csv (flat columns) or .json (full rows, config and record included).

    Returns:
        Number of runs written.

    Raises:
        ValueError: an extension other than .csv or .json.
    """
    import os

    from pygzlaw.atomic import write_json
    from pygzlaw.study.report import write_runs_csv

    ext = os.path.splitext(str(path))[1].lower()
    if ext not in (".csv", ".json"):
        raise ValueError(f"{path}: unknown export format {ext!r}; use .csv or .json")
    rows = list_runs(db, status=status, grammar=grammar, model=model)
    if ext == ".csv":
        return write_runs_csv(path, rows, only_done=False)
    write_json(path, rows)
    return len(rows)
