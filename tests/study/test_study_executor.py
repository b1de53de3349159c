"""The local executor: K worker processes, results as they finish, failures and dead workers reported."""
from __future__ import annotations

import os

import pytest

from pygzlaw.study.executor import LocalExecutor

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(autouse=True)
def _worker_path(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_runs_come_back_from_k_workers():
    with LocalExecutor(2, threads=1, run_fn="study_fns:synthetic_run") as ex:
        for i in range(6):
            ex.submit(f"r{i}", {"n": 1000 * (i + 1), "d": 2048, "sleep_s": 0.05})
        got = {r.run_id: r for r in ex.results()}
    assert sorted(got) == [f"r{i}" for i in range(6)]
    assert all(r.ok and r.record["threads"] == 1 for r in got.values())
    assert got["r2"].record["n_params"] == 3000
    assert len({r.record["pid"] for r in got.values()}) == 2          # two worker processes


def test_failure_and_dead_worker_are_reported_and_work_goes_on():
    with LocalExecutor(1, run_fn="study_fns:die_run") as ex:
        ex.submit("ok1", {"n": 10, "d": 10})
        ex.submit("bad", {"n": 10, "d": 10, "fail": "on purpose"})
        ex.submit("dies", {"n": 10, "d": 10, "die": True})
        ex.submit("ok2", {"n": 20, "d": 10})
        got = {r.run_id: r for r in ex.results()}
    assert got["ok1"].ok and got["ok2"].ok
    assert not got["bad"].ok and "ValueError: asked to fail: on purpose" in got["bad"].error
    assert not got["dies"].ok and "worker died" in got["dies"].error
    assert got["ok1"].record["pid"] != got["ok2"].record["pid"]       # replaced after the SIGKILL


def test_bad_worker_count():
    with pytest.raises(ValueError, match="workers=0"):
        LocalExecutor(0)
