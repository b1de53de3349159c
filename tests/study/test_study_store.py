"""SQLite run store: identity by config hash, status life cycle, WAL, errors."""
from __future__ import annotations

import sqlite3

import pytest

from pygzlaw.study.store import RunStore, run_id_of


def _run(i, grammar="g1", **cfg):
    c = {"model": f"w{8 * (i + 1)}", "grammar": grammar, "n_tokens": 1024 * (i + 1), "lr": 1e-3, **cfg}
    return {"run_id": run_id_of(c), "config": c, "grammar": grammar, "grammar_spec": {"preset": grammar, "seed": 0},
            "grammar_seed": 0, "model": c["model"], "D": c["n_tokens"]}


def test_run_id_is_the_config_hash_without_bookkeeping_fields():
    a = {"model": "w8", "grammar": "main-1", "n_tokens": 100, "threads": 1, "progress": True}
    b = {"progress": False, "n_tokens": 100, "threads": 4, "grammar": "main-1", "model": "w8"}
    assert run_id_of(a) == run_id_of(b)
    assert run_id_of(a) != run_id_of({**a, "n_tokens": 101})
    assert run_id_of(a) != run_id_of({**a, "lr": 1e-3})
    assert len(run_id_of(a)) == 16


def test_life_cycle_and_resume_bookkeeping(tmp_path):
    db = tmp_path / "s" / "runs.sqlite"
    runs = [_run(i) for i in range(3)]
    with RunStore(db) as st:
        assert st._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert st.add_runs(runs) == 3
        assert st.add_runs(runs) == 0                      # idempotent: identity is the hash
        st.upsert_grammar("g1", {"preset": "g1", "seed": 0}, 0, vocab_size=10, h_median=0.3, h_std=0.01,
                          h_docs=100, seq_len=256)
        st.mark_running(runs[0]["run_id"])
        st.mark_done(runs[0]["run_id"], {"n_params": 100, "n_params_non_embedding": 50, "n_tokens": 1024,
                                         "flops": 6e5, "train_loss": 2.0, "val_loss": 2.5, "wall_s": 1.0,
                                         "tokens_per_s": 1024.0, "version": "x"})
        st.mark_running(runs[1]["run_id"])
        st.mark_failed(runs[1]["run_id"], "ValueError: boom")
        st.mark_running(runs[2]["run_id"])                  # the driver dies here
        assert st.counts() == {"pending": 0, "running": 1, "done": 1, "failed": 1}
    with RunStore(db) as st:                                # a new driver
        assert st.reset_interrupted() == 1
        rows = {r["run_id"]: r for r in st.runs()}
        done = rows[runs[0]["run_id"]]
        assert (done["status"], done["N"], done["val_loss"], done["H_median"]) == ("done", 100, 2.5, 0.3)
        assert done["record"]["flops"] == 6e5 and done["config"] == runs[0]["config"]
        assert rows[runs[1]["run_id"]]["error"] == "ValueError: boom"
        assert rows[runs[2]["run_id"]]["status"] == "pending" and rows[runs[2]["run_id"]]["attempts"] == 1
        assert "interrupted" in rows[runs[2]["run_id"]]["error"]
        assert [r["run_id"] for r in st.runs(status="done")] == [runs[0]["run_id"]]
        assert len(st.runs(status=["done", "failed"])) == 2
        assert st.runs(grammar="nope") == []
        assert st.integrity_check() == "ok"
        assert st.grammars()[0]["H_median"] == 0.3


def test_transaction_rolls_back_on_error(tmp_path):
    with RunStore(tmp_path / "r.sqlite") as st:
        with pytest.raises(RuntimeError):
            with st.transaction() as tx:
                tx.execute("INSERT INTO meta VALUES ('k', '1')")
                raise RuntimeError("midway")
        assert st.get_meta("k") is None


def test_not_a_store_is_named(tmp_path):
    p = tmp_path / "junk.sqlite"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="junk.sqlite: not a pygzlaw run store"):
        RunStore(p)


def test_newer_schema_is_refused(tmp_path):
    p = tmp_path / "r.sqlite"
    RunStore(p).close()
    con = sqlite3.connect(p)
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(ValueError, match="schema version 99"):
        RunStore(p)


def test_a_second_driver_on_the_same_folder_is_refused(tmp_path):
    from pygzlaw.study import reproduce, scale_config
    from pygzlaw.study.run import study_lock

    cfg = scale_config("tiny", out=str(tmp_path / "s"))
    with study_lock(cfg.out):
        with pytest.raises(ValueError, match=r"another study driver \(pid \d+\) is running in this folder"):
            reproduce(cfg, progress=False)
    with study_lock(cfg.out):            # released with its holder
        pass
