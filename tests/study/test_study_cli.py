"""pygzlaw runs / report / reproduce on the command line (a hand-filled run store: no training)."""
from __future__ import annotations

import csv
import json

import pytest

from pygzlaw.cli import main
from pygzlaw.study.store import RunStore, run_id_of


def _fill(db, grammars=(("g-lo", 0.2), ("g-hi", 0.5))):
    """Runs whose loss is an exact Chinchilla law: 4 widths x 4 amounts per grammar, one failed run."""
    with RunStore(db) as st:
        for name, h in grammars:
            st.upsert_grammar(name, {"preset": name, "seed": 0}, 0, vocab_size=100, h_median=h, h_std=0.01,
                              h_docs=100, seq_len=256)
            runs = []
            for n in (3e3, 1e4, 3e4, 1e5):
                for d in (1e4, 3e4, 1e5, 3e5):
                    cfg = {"model": f"n{int(n)}", "grammar": name, "n_tokens": int(d)}
                    runs.append({"run_id": run_id_of(cfg), "config": cfg, "grammar": name,
                                 "grammar_spec": {"preset": name, "seed": 0}, "grammar_seed": 0,
                                 "model": cfg["model"], "D": int(d), "n": n})
            st.add_runs(runs)
            for r in runs:
                st.mark_running(r["run_id"])
                loss = 1.0 + h + 200 / r["n"] ** 0.5 + 400 / r["D"] ** 0.4
                st.mark_done(r["run_id"], {"n_params": int(r["n"]), "n_params_non_embedding": int(r["n"]) // 2,
                                           "n_tokens": r["D"], "flops": 6 * r["n"] * r["D"], "train_loss": loss,
                                           "val_loss": loss, "wall_s": 1.0, "tokens_per_s": 1.0, "version": "t"})
        bad = {"model": "w8", "grammar": grammars[0][0], "n_tokens": 5}
        st.add_runs([{"run_id": run_id_of(bad), "config": bad, "grammar": grammars[0][0],
                      "grammar_spec": {"preset": grammars[0][0], "seed": 0}, "grammar_seed": 0, "model": "w8",
                      "D": 5}])
        st.mark_failed(run_id_of(bad), "ValueError: n_tokens=5 is fewer than one step")


def test_runs_lists_filters_and_exports(tmp_path, capsys):
    db = tmp_path / "s" / "runs.sqlite"
    _fill(db)
    assert main(["runs", "--db", str(db), "--status", "failed"]) == 0
    out = capsys.readouterr()
    assert "fewer than one step" in out.out and "1 runs: 1 failed" in out.err
    assert main(["runs", "--out", str(tmp_path / "s"), "--grammar", "g-hi", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 16 and {r["grammar"] for r in rows} == {"g-hi"} and rows[0]["config"]["grammar"] == "g-hi"
    assert main(["runs", "--db", str(db), "--export", str(tmp_path / "all.csv")]) == 0
    with open(tmp_path / "all.csv") as f:
        got = list(csv.DictReader(f))
    assert len(got) == 33 and sum(r["status"] == "failed" for r in got) == 1
    assert main(["runs", "--db", str(db), "--export", str(tmp_path / "x.txt")]) == 2
    assert "use .csv or .json" in capsys.readouterr().err


def test_report_rebuilds_from_the_database(tmp_path, capsys):
    out = tmp_path / "s"
    _fill(out / "runs.sqlite")
    assert main(["report", "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "| g-lo |" in text and "| g-hi |" in text and "need >= 3" in text
    ana = json.loads((out / "analysis.json").read_text())
    assert [g["name"] for g in ana["grammars"]] == ["g-lo", "g-hi"]
    assert ana["grammars"][0]["params"]["alpha"] == pytest.approx(0.5, rel=1e-3)
    assert ana["runs"] == {"done": 32, "failed": 1}


def test_report_without_database_names_the_file(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path / "nothing")]) == 2
    assert "runs.sqlite: no study database" in capsys.readouterr().err


def test_reproduce_bad_config_is_a_one_line_error(tmp_path, capsys):
    p = tmp_path / "bad.toml"
    p.write_text("[grid]\ntokens = [0]\n")
    assert main(["reproduce", "--config", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "grid.tokens[0]=0 must be >= 1" in err and "Traceback" not in err


def test_reproduce_engine_ray_without_ray_names_the_extra(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    out = tmp_path / "o"
    assert main(["reproduce", "--engine", "ray", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "pygzlaw reproduce: error:" in err and "pip install 'pygzlaw[ray]'" in err and "Traceback" not in err
    assert not out.exists()  # refused before the study folder was made


def test_reproduce_address_needs_engine_ray(tmp_path, capsys):
    assert main(["reproduce", "--address", "auto", "--out", str(tmp_path / "o")]) == 2
    assert "--address needs --engine ray" in capsys.readouterr().err


def test_reproduce_engine_flag_is_checked(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--engine", "dask", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "invalid choice: 'dask'" in capsys.readouterr().err


def test_reproduce_engine_ray_hands_the_runs_to_a_ray_executor(tmp_path, capsys, monkeypatch):
    """--engine ray builds RayExecutor from the flags and passes it to the study driver, then closes it."""
    import pygzlaw.study.ray_executor as rx
    import pygzlaw.study.run as run

    made, seen = [], {}

    class FakeRay:
        def __init__(self, **kw):
            self.kw, self.closed = kw, False
            made.append(self)

        def close(self):
            self.closed = True

    def fake_reproduce(cfg, *, progress, report, executor):
        seen.update(cfg=cfg, executor=executor)
        return run.StudyOutcome(out=cfg.out, db=cfg.db_path, n_runs=0, n_done=0, n_failed=0, n_ran=0, n_skipped=0,
                                wall_s=0.0, report=None)

    monkeypatch.setattr(rx, "RayExecutor", FakeRay)
    monkeypatch.setattr(run, "reproduce", fake_reproduce)
    assert main(["reproduce", "--engine", "ray", "--address", "ray://127.0.0.1:10001", "-K", "3",
                 "--threads-per-worker", "2", "--out", str(tmp_path / "o"), "--no-report"]) == 0
    (ex,) = made
    assert seen["executor"] is ex and ex.closed
    assert ex.kw == {"num_cpus": 2, "num_gpus": 0, "address": "ray://127.0.0.1:10001", "workers": 3}
