"""RayExecutor: the study's executor seam on a local Ray (2 CPUs, no dashboard, loopback)."""
from __future__ import annotations

import os

import pytest

from pygzlaw.study.ray_executor import RayExecutor

HERE = os.path.dirname(os.path.abspath(__file__))

# Ray workers import the test run functions (study_fns) from this folder (conftest's local_ray).
RAY_ENV_VARS = {"PYTHONPATH": HERE}


def test_runs_failures_and_dead_workers_come_back(local_ray):
    ex = RayExecutor(num_cpus=1, run_fn="study_fns:die_run", max_retries=0, poll_s=0.2,
                     run_timeout_s=120)
    assert ex.workers == 2  # 2 CPUs // 1 CPU per run
    ex.submit("ok1", {"n": 1000, "d": 2048})
    ex.submit("bad", {"n": 10, "d": 10, "fail": "on purpose"})
    ex.submit("dies", {"n": 10, "d": 10, "die": True})
    ex.submit("ok2", {"n": 3000, "d": 10})
    got = {}
    for r in ex.results():
        got[r.run_id] = r
        assert len(got) <= 4
    ex.close()
    assert sorted(got) == ["bad", "dies", "ok1", "ok2"]
    assert got["ok1"].ok and got["ok1"].record["n_params"] == 1000
    assert got["ok2"].ok and got["ok2"].record["threads"] == 1
    assert got["ok1"].record["pid"] != os.getpid()  # ran in a Ray worker
    assert not got["bad"].ok and "ValueError: asked to fail: on purpose" in got["bad"].error
    assert not got["dies"].ok and "worker died while running dies" in got["dies"].error
    with pytest.raises(RuntimeError, match="closed"):
        ex.submit("late", {"n": 1, "d": 1})


def test_a_hung_run_times_out_and_the_executor_goes_on(local_ray):
    with RayExecutor(num_cpus=1, run_fn="study_fns:synthetic_run", poll_s=0.1,
                     run_timeout_s=3.0) as ex:
        ex.submit("hangs", {"n": 10, "d": 10, "sleep_s": 600})
        (hung,) = list(ex.results())
        assert not hung.ok and "timed out after 3.0 s" in hung.error
        assert 3.0 <= hung.wall_s < 60
        ex.run_timeout_s = 120  # (the limit counts from submission, worker start included)
        ex.submit("quick", {"n": 10, "d": 10})
        (quick,) = list(ex.results())
    assert quick.ok and quick.record["n_params"] == 10


def test_reproduce_on_ray_matches_the_run_function(local_ray, tmp_path):
    """The study driver (SQLite store on the driver) with runs as Ray tasks; a rerun resumes."""
    import sqlite3
    import json
    import sys

    from pygzlaw.study import load_config, reproduce

    cfg_text = f"""
[study]
scale = "tiny"
name = "rayed"
out = "{tmp_path / 'out'}"
workers = 2
[[grammars]]
preset = "main-2"
[grid]
models = ["w8", "w16"]
tokens = [2048, 4096]
[analysis]
h_docs = 200
"""
    p = tmp_path / "s.toml"
    p.write_text(cfg_text)
    cfg = load_config(p)
    with RayExecutor(num_cpus=1, run_fn="study_fns:law_run", poll_s=0.2, run_timeout_s=120) as ex:
        out = reproduce(cfg, run_fn="study_fns:law_run", executor=ex, progress=False, report=False)
    assert (out.n_runs, out.n_done, out.n_failed, out.n_ran) == (4, 4, 0, 4)
    sys.path.insert(0, HERE)
    try:
        from study_fns import law_run
    finally:
        sys.path.remove(HERE)
    con = sqlite3.connect(cfg.db_path)
    rows = con.execute("select config, record from runs").fetchall()
    con.close()
    assert len(rows) == 4
    for config, record in rows:
        assert json.loads(record)["val_loss"] == law_run(json.loads(config))["val_loss"]
    with RayExecutor(num_cpus=1, run_fn="study_fns:law_run", run_timeout_s=120) as ex:
        again = reproduce(cfg, run_fn="study_fns:law_run", executor=ex, progress=False,
                          report=False)
    assert again.n_ran == 0 and again.n_done == 4


def test_without_ray_the_error_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pygzlaw\[ray\]"):
        RayExecutor()
