"""A miniature study end to end with the real trainer: database, report, figures, served laws, resume,
and a SIGKILL of the driver mid-study followed by a rerun."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("torch")

MINI = """
[study]
scale = "tiny"
name = "mini"
out = "{out}"
workers = 2
[[grammars]]
preset = "main-2"
[[grammars]]
preset = "main-4"
[grid]
models = ["w8", "w16", "w32"]
tokens = [2048, 4096, 8192]
[train]
val_docs = 16
lr = 0.01
[analysis]
n_boot = 20
grid = "muennighoff"
h_docs = 200
"""


def _config(tmp_path, name="mini", models=("w8", "w16", "w32")):
    out = tmp_path / name
    p = tmp_path / f"{name}.toml"
    text = MINI.format(out=out).replace('models = ["w8", "w16", "w32"]', f"models = {list(models)}".replace("'", '"'))
    p.write_text(text)
    return p, out


def test_miniature_study_with_the_trainer(tmp_path):
    """18 real training runs: database, report, figures, runs.csv, then a rerun that skips them all."""
    from pygzlaw.study import RunStore, build_report, load_config, plan_runs, reproduce

    path, out = _config(tmp_path)
    lines = []
    outcome = reproduce(load_config(path), log=lines.append)
    assert (outcome.n_runs, outcome.n_done, outcome.n_failed, outcome.n_ran) == (18, 18, 0, 18)
    with RunStore(out / "runs.sqlite") as st:
        assert st.integrity_check() == "ok"
        rows = st.runs()
        assert {r["run_id"] for r in rows} == {r["run_id"] for r in plan_runs(load_config(path))}
        assert all(r["status"] == "done" and r["attempts"] == 1 for r in rows)
        hs = {g["name"]: g["H_median"] for g in st.grammars()}
    assert 0.2 < hs["main-2"] < hs["main-4"] < 0.5
    for r in rows:
        assert r["H_median"] == hs[r["grammar"]]
        assert r["N"] > r["N_non_embedding"] > 0 and r["D"] == r["config"]["n_tokens"]
        assert np.isfinite(r["val_loss"]) and r["val_loss"] > 0 and r["C"] > 0 and r["host"] and r["version"]
    # the loss depends on the data amount: for every grammar and size, more tokens, lower loss
    for g in ("main-2", "main-4"):
        for m in ("w8", "w16", "w32"):
            losses = [r["val_loss"] for r in sorted(rows, key=lambda r: r["D"]) if r["grammar"] == g and r["model"] == m]
            assert losses == sorted(losses, reverse=True), (g, m, losses)
    assert any(line.startswith("[18/18]") and "left" in line for line in lines)     # progress lines
    _check_report(out)
    again = reproduce(load_config(path), progress=False, report=False)
    assert (again.n_ran, again.n_skipped, again.n_done) == (0, 18, 18)
    (out / "report.md").unlink()
    build_report(str(out))
    assert (out / "report.md").is_file()


def _check_report(out):
    from pygzlaw.laws import read_points

    text = (out / "report.md").read_text()
    for heading in ("## Grammars", "## Chinchilla law per grammar", "## Parameters regressed on H",
                    "## Compute-optimal frontier"):
        assert heading in text
    assert "need >= 3" in text                       # two grammars: no regression on H, said so
    # served or flagged, every fitted law is on disk and the report says which
    for g in json.loads((out / "analysis.json").read_text())["grammars"]:
        if g["params"] is not None:
            assert (out / ("laws" if g["served"] else "laws-flagged") / f"{g['name']}.json").is_file()
    png = (out / "figures" / "loss_vs_D.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    pts = read_points(out / "runs.csv")              # pygzlaw fit reads the CSV as written
    assert len(pts) == 18 and pts.dataset is not None and pts.h is not None
    ana = json.loads((out / "analysis.json").read_text())
    assert [g["name"] for g in ana["grammars"]] == ["main-2", "main-4"]
    for g in ana["grammars"]:
        assert g["n_runs"] == 9 and (g["distinct_N"], g["distinct_D"]) == (3, 3)
        assert g["served"] == (not g["flags"])


SYNTH = """
[study]
scale = "tiny"
name = "synthetic"
out = "{out}"
workers = 2
[[grammars]]
preset = "main-2"
[[grammars]]
preset = "main-3"
[[grammars]]
preset = "main-5"
[grid]
models = ["w8", "w16", "w32", "w64"]
tokens = [4096, 16384, 65536, 262144]
[analysis]
n_boot = 20
grid = "muennighoff"
h_docs = 200
"""


def _synthetic(tmp):
    """The same driver, analysis and report over runs whose loss is a known law of H (study_fns.law_run)."""
    from pygzlaw.study import load_config, reproduce

    here = os.path.dirname(os.path.abspath(__file__))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = here + (os.pathsep + old if old else "")
    try:
        p = tmp / "s.toml"
        p.write_text(SYNTH.format(out=tmp / "out"))
        outcome = reproduce(load_config(p), run_fn="study_fns:law_run", progress=False)
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old
    return tmp / "out", outcome


def test_synthetic_study_recovers_known_laws_and_serves_them(tmp_path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from study_fns import true_params

    out, outcome = _synthetic(tmp_path)
    assert outcome.n_done == 48
    ana = json.loads((out / "analysis.json").read_text())
    hs = [g["H"] for g in ana["grammars"]]
    assert hs == sorted(hs)
    for g in ana["grammars"]:
        assert g["served"] and g["flags"] == [], g["flags"]
        truth = true_params(g["H"])
        for k in ("E", "alpha", "beta"):
            assert g["params"][k] == pytest.approx(truth[k], rel=1e-3), (g["name"], k)
        for k in ("A", "B"):
            assert g["params"][k] == pytest.approx(truth[k], rel=2e-2), (g["name"], k)
        a = truth["beta"] / (truth["alpha"] + truth["beta"])
        assert g["frontier"]["a"] == pytest.approx(a, rel=1e-3)
    reg = ana["regressions"]
    assert reg["E"]["slope"] == pytest.approx(2.0, rel=1e-3) and reg["E"]["intercept"] == pytest.approx(0.3, rel=1e-2)
    assert reg["alpha"]["slope"] == pytest.approx(-0.5, rel=1e-2) and reg["beta"]["slope"] == pytest.approx(0.4, rel=1e-2)
    assert reg["E"]["r"] == pytest.approx(1.0, abs=1e-6)
    # a(H) = beta/(alpha+beta) = 0.5 where 0.6 - 0.5 H = 0.3 + 0.4 H, i.e. H = 1/3
    assert ana["frontier_crossing_h"] == [pytest.approx(1 / 3, abs=1e-3)]
    assert ana["frontier_crossing_h_interpolated"][0] == pytest.approx(1 / 3, abs=0.02)
    text = (out / "report.md").read_text()
    assert "| E |" in text and "0.333" in text
    for fig in ("loss_vs_D", "frontiers", "params_vs_H"):
        assert (out / "figures" / f"{fig}.png").read_bytes()[:4] == b"\x89PNG"
    _check_served(out)
    # A narrower grid over the same folder: its runs are all done already, and the report uses only them.
    from pygzlaw.study import load_config, reproduce

    p = out.parent / "narrow.toml"
    p.write_text(SYNTH.format(out=out).replace("tokens = [4096, 16384, 65536, 262144]",
                                               "tokens = [16384, 65536, 262144]"))
    again = reproduce(load_config(p), run_fn="study_fns:law_run", progress=False)
    assert (again.n_runs, again.n_ran) == (36, 0)
    ana = json.loads((out / "analysis.json").read_text())
    assert ana["runs_of_other_configurations"] == 12 and [g["n_runs"] for g in ana["grammars"]] == [12, 12, 12]


def _check_served(out):
    """pygzlaw serve's app answers from the study's law folder, as written."""
    from fastapi.testclient import TestClient

    from pygzlaw.laws import load_law
    from pygzlaw.serve.app import create_app

    served = sorted(p.stem for p in (out / "laws").glob("*.json"))
    assert served == ["data_dependent", "main-2", "main-3", "main-5"]
    client = TestClient(create_app(out / "laws"))
    listed = client.get("/laws").json()
    names = sorted(d["name"] for d in (listed["laws"] if isinstance(listed, dict) else listed))
    assert names == served
    for name in served:
        law = load_law(out / "laws" / f"{name}.json")
        body = {"n_params": 20000, "n_tokens": 8192}
        if name == "data_dependent":
            body["h"] = 0.4
        r = client.post(f"/laws/{name}/predict", json=body)
        assert r.status_code == 200, r.text
        got = r.json()["loss"]
        got = got[0] if isinstance(got, list) else got
        want = law.predict(20000, 8192, 0.4) if name == "data_dependent" else law.predict(20000, 8192)
        assert got == pytest.approx(float(want), rel=1e-9)
    r = client.post("/allocate", json={"budget_flops": 1e18, "h": 0.4})
    assert r.status_code == 200, r.text


def _workers_of(pid):
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"pygzlaw.study.worker" in cmd and str(pid).encode() in cmd:
            found.append(int(d))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find orphaned workers")
def test_sigkill_of_the_driver_then_rerun_completes_without_redoing(tmp_path):
    path, out = _config(tmp_path, "killed", models=("w8", "w16"))
    cmd = [sys.executable, "-m", "pygzlaw", "reproduce", "--config", str(path), "--quiet"]
    db = out / "runs.sqlite"
    proc = subprocess.Popen(cmd + ["--no-report"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    n_done = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
                    n_done = con.execute("SELECT COUNT(*) FROM runs WHERE status='done'").fetchone()[0]
                    con.close()
                except sqlite3.OperationalError:
                    n_done = 0
            if n_done >= 4:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the study ended before it could be killed: " + proc.stderr.read().decode()
        assert n_done >= 4, "no runs finished in time"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    t = time.monotonic()
    while _workers_of(proc.pid) and time.monotonic() - t < 10:      # workers die with their driver
        time.sleep(0.1)
    assert _workers_of(proc.pid) == []
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finished = dict(con.execute("SELECT run_id, finished_at FROM runs WHERE status='done'").fetchall())
    con.close()
    assert len(finished) >= 4
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    con = sqlite3.connect(db)
    rows = {r[0]: r[1:] for r in con.execute("SELECT run_id, status, finished_at, attempts FROM runs")}
    con.close()
    assert len(rows) == 12 and all(v[0] == "done" for v in rows.values())
    for run_id, fin in finished.items():                           # not redone
        assert rows[run_id][1] == fin and rows[run_id][2] == 1
    assert (out / "report.md").is_file()
