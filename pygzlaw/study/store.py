"""The study's run store: one SQLite database, one row per training run, one per grammar.

Every write is one transaction in WAL mode (``synchronous=NORMAL`` keeps WAL durable against a
killed process; only a power loss can drop the last commits), so a study killed at any moment
leaves a database that opens and holds every run finished before the kill.

Run identity: ``run_id`` is the sha256 (first 16 hex digits) of the run's training config as
canonical JSON (sorted keys, no whitespace), without the fields that never change the result
(``IGNORED_KEYS``). Rerunning a study therefore finds its finished runs by id, whatever order
or worker count it runs with.

Status life cycle: pending → running → done | failed (with the error). ``reset_interrupted``
turns 'running' rows of a dead driver back into pending (the driver holds a lock file while it
runs; see ``pygzlaw.study.run``).
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["RunStore", "run_id_of", "STATUSES", "RUN_COLUMNS", "IGNORED_KEYS"]

STATUSES = ("pending", "running", "done", "failed")
# TrainConfig fields that never change a run's result (threads: the trainer is deterministic
# across thread counts; progress/out_dir/checkpointing: bookkeeping only).
IGNORED_KEYS = frozenset({"threads", "progress", "out_dir", "checkpoint_every_steps"})
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grammars (
    name TEXT PRIMARY KEY,          -- label used in the study (e.g. main-3)
    spec TEXT NOT NULL,             -- JSON: {"preset": ...} or {"file": ...} plus knobs
    grammar_seed INTEGER NOT NULL,
    vocab_size INTEGER,
    H_median REAL,                  -- median gzip ratio of h_docs documents (Pandey 2024, Sec. 3)
    H_std REAL,
    h_docs INTEGER,
    seq_len INTEGER,
    updated_at REAL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,        -- sha256 of the canonical training config (16 hex digits)
    config TEXT NOT NULL,           -- JSON of the TrainConfig (to_dict)
    grammar TEXT NOT NULL,          -- label, joins grammars.name
    grammar_spec TEXT NOT NULL,
    grammar_seed INTEGER NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    H_median REAL, H_std REAL,
    N INTEGER,                      -- parameters, embeddings included (the paper's N)
    N_non_embedding INTEGER,
    D INTEGER,                      -- training tokens
    C REAL,                         -- training FLOPs as reported by the trainer
    train_loss REAL, val_loss REAL, -- nats/token (the laws fit val_loss)
    wall_s REAL, tokens_per_s REAL,
    host TEXT, pid INTEGER, version TEXT,
    record TEXT,                    -- JSON of the trainer's RunRecord
    created_at REAL NOT NULL, started_at REAL, finished_at REAL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_grammar ON runs (grammar);
"""

RUN_COLUMNS = ("run_id", "grammar", "grammar_seed", "model", "status", "attempts", "H_median", "H_std", "N",
               "N_non_embedding", "D", "C", "train_loss", "val_loss", "wall_s", "tokens_per_s", "host", "version",
               "error", "created_at", "started_at", "finished_at", "grammar_spec", "config")


def canonical_json(obj) -> str:
    """Sorted keys, no whitespace, tuples as lists: the form that is hashed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=list)


def run_id_of(train_config: dict) -> str:
    """Run identity: first 16 hex digits of sha256(canonical JSON of the config without IGNORED_KEYS)."""
    ident = {k: v for k, v in train_config.items() if k not in IGNORED_KEYS}
    return hashlib.sha256(canonical_json(ident).encode()).hexdigest()[:16]


class RunStore:
    """SQLite run store (see module docstring). One connection per process; not shared across forks.

    Args:
        path: database file (created with its folder if missing).
        timeout_s: how long a writer waits for another writer's lock.

    Raises:
        ValueError: the file exists but is not a pygzlaw run store (names the file).
    """

    def __init__(self, path, *, timeout_s: float = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self.transaction() as db:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if row is None:
                    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) != SCHEMA_VERSION:
                    raise ValueError(f"{self.path}: run store schema version {row[0]}, this pygzlaw reads "
                                     f"{SCHEMA_VERSION}; use a new --out folder")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ValueError(f"{self.path}: not a pygzlaw run store ({exc}); choose another database path") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def transaction(self):
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): writers never interleave half-done."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield _Tx(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # ----------------------------------------------------------------- meta
    def set_meta(self, key: str, value) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default=None):
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # ------------------------------------------------------------- grammars
    def upsert_grammar(self, name: str, spec: dict, grammar_seed: int, *, vocab_size=None, h_median=None,
                       h_std=None, h_docs=None, seq_len=None) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO grammars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (name, canonical_json(spec), int(grammar_seed), vocab_size, h_median, h_std, h_docs,
                        seq_len, time.time()))
            db.execute("UPDATE runs SET H_median=?, H_std=? WHERE grammar=?", (h_median, h_std, name))

    def grammars(self) -> list[dict]:
        rows = self._db.execute("SELECT * FROM grammars ORDER BY H_median, name").fetchall()
        return [{**dict(r), "spec": json.loads(r["spec"])} for r in rows]

    def grammar(self, name: str) -> dict | None:
        r = self._db.execute("SELECT * FROM grammars WHERE name=?", (name,)).fetchone()
        return None if r is None else {**dict(r), "spec": json.loads(r["spec"])}

    # ----------------------------------------------------------------- runs
    def add_runs(self, runs: list[dict]) -> int:
        """Insert planned runs as 'pending' unless their run_id exists. Each dict: run_id, config (dict),
        grammar, grammar_spec (dict), grammar_seed, model, D. Returns the number inserted."""
        now = time.time()
        n = 0
        with self.transaction() as db:
            for r in runs:
                cur = db.execute(
                    "INSERT OR IGNORE INTO runs (run_id, config, grammar, grammar_spec, grammar_seed, model, status, "
                    "D, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                    (r["run_id"], canonical_json(r["config"]), r["grammar"], canonical_json(r["grammar_spec"]),
                     int(r["grammar_seed"]), r["model"], int(r["D"]), now))
                n += cur.rowcount
            g = {r["grammar"] for r in runs}
            for name in g:   # a grammar measured before the runs were added: copy its H
                db.execute("UPDATE runs SET H_median=(SELECT H_median FROM grammars WHERE name=?), "
                           "H_std=(SELECT H_std FROM grammars WHERE name=?) WHERE grammar=? AND H_median IS NULL",
                           (name, name, name))
        return n

    def reset_interrupted(self) -> int:
        """'running' rows (their driver is gone) back to 'pending'. Returns how many."""
        with self.transaction() as db:
            return db.execute("UPDATE runs SET status='pending', error='interrupted (driver stopped mid-run)' "
                              "WHERE status='running'").rowcount

    def mark_running(self, run_id: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status='running', attempts=attempts+1, started_at=?, host=?, pid=? "
                       "WHERE run_id=?", (time.time(), socket.gethostname(), os.getpid(), run_id))

    def mark_done(self, run_id: str, record: dict) -> None:
        """Store a finished run's RunRecord (dict from RunRecord.to_dict)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status='done', error=NULL, N=?, N_non_embedding=?, D=?, C=?, train_loss=?, "
                "val_loss=?, wall_s=?, tokens_per_s=?, version=?, record=?, finished_at=? WHERE run_id=?",
                (record.get("n_params"), record.get("n_params_non_embedding"), record.get("n_tokens"),
                 record.get("flops"), record.get("train_loss"), record.get("val_loss"), record.get("wall_s"),
                 record.get("tokens_per_s"), record.get("version"), canonical_json(record), time.time(), run_id))

    def mark_failed(self, run_id: str, error: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status='failed', error=?, finished_at=? WHERE run_id=?",
                       (error[-4000:], time.time(), run_id))

    def counts(self) -> dict:
        out = {s: 0 for s in STATUSES}
        for status, n in self._db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"):
            out[status] = n
        return out

    def runs(self, *, status=None, grammar=None, model=None, run_ids=None) -> list[dict]:
        """Rows as dicts (config and record decoded), ordered by grammar H, N, D; filters combine with AND."""
        where, args = [], []
        for col, val in (("status", status), ("grammar", grammar), ("model", model)):
            if val is not None:
                vals = [val] if isinstance(val, str) else list(val)
                where.append(f"{col} IN ({','.join('?' * len(vals))})")
                args.extend(vals)
        if run_ids is not None:
            ids = list(run_ids)
            where.append(f"run_id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY H_median, grammar, N, model, D, run_id"
        out = []
        for r in self._db.execute(sql, args).fetchall():
            d = dict(r)
            d["config"] = json.loads(d["config"])
            d["grammar_spec"] = json.loads(d["grammar_spec"])
            d["record"] = json.loads(d["record"]) if d["record"] else None
            out.append(d)
        return out

    def integrity_check(self) -> str:
        """SQLite's own check: 'ok' for a sound file."""
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]


class _Tx:
    """The connection as seen inside a transaction (execute only)."""

    def __init__(self, db):
        self._db = db

    def execute(self, sql, args=()):
        return self._db.execute(sql, args)
