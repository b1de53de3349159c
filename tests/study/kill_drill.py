"""SIGKILL drill for `pygzlaw reproduce` (run by hand; not collected by pytest).

Starts a miniature study, SIGKILLs the driver (or, with --worker-kills, sometimes one of its
workers) at a random moment, checks the database, and starts it again, until a run of the
study finishes on its own. Then checks: every run done, database integrity 'ok', no run that was
done before a kill was run again (same finished_at, attempts 1), no orphaned worker processes.

Usage: python tests/study/kill_drill.py [--trials 5] [--max-delay 12] [--worker-kills] [--seed 0]
Prints one line per kill and a summary; exit 0 when every trial passed.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

CONFIG = """
[study]
scale = "tiny"
name = "drill"
out = "{out}"
workers = 2
[[grammars]]
preset = "main-2"
[[grammars]]
preset = "main-4"
[[grammars]]
preset = "main-5"
[grid]
models = ["w8", "w16", "w32"]
tokens = [8192, 16384, 32768, 65536]
[train]
val_docs = 16
[analysis]
n_boot = 20
h_docs = 200
"""


def workers_of(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if b"pygzlaw.study.worker" in cmd and str(pid).encode() in cmd:
                out.append(int(d))
    return out


def snapshot(db):
    if not os.path.exists(db):
        return {}, "absent"
    con = sqlite3.connect(db, timeout=10)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        rows = {r[0]: (r[1], r[2], r[3]) for r in con.execute("SELECT run_id, status, finished_at, attempts FROM runs")}
    finally:
        con.close()
    return rows, ok


def trial(rng, max_delay, worker_kills, log) -> bool:
    tmp = tempfile.mkdtemp(prefix="pygzlaw-drill-")
    out = os.path.join(tmp, "study")
    cfg = os.path.join(tmp, "drill.toml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(out=out))
    db = os.path.join(out, "runs.sqlite")
    cmd = [sys.executable, "-m", "pygzlaw", "reproduce", "--config", cfg, "--quiet"]
    done_before: dict = {}
    kills = 0
    ok = True
    while True:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        delay = rng.uniform(0.3, max_delay)
        try:
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            victim = "driver"
            ws = workers_of(p.pid)
            if worker_kills and ws and rng.random() < 0.3:
                victim = f"worker {ws[0]}"
                os.kill(ws[0], signal.SIGKILL)
                try:
                    p.wait(timeout=600)      # the driver carries on and finishes (that run is marked failed)
                except subprocess.TimeoutExpired:
                    p.kill()
            else:
                p.kill()
                p.wait()
            kills += 1
            t = time.monotonic()
            while workers_of(p.pid) and time.monotonic() - t < 10:
                time.sleep(0.1)
            orphans = workers_of(p.pid)
            rows, integrity = snapshot(db)
            n_done = sum(v[0] == "done" for v in rows.values())
            redone = [k for k, (st, fin, att) in done_before.items() if rows.get(k, (None, None))[1] != fin]
            log(f"  kill {kills} ({victim}) after {delay:.1f} s: integrity {integrity}, {n_done}/{len(rows)} done, "
                f"orphans {orphans}, redone {len(redone)}")
            if integrity not in ("ok", "absent") or orphans or redone:
                ok = False
            done_before.update({k: v for k, v in rows.items() if v[0] == "done"})
            if p.returncode == 0 and victim != "driver":
                pass                                  # finished despite a worker kill: rerun retries it
            else:
                continue
        if p.returncode not in (0, 1):
            log(f"  driver exited {p.returncode}: {p.stderr.read().decode()[-500:]}")
            return False
        rows, integrity = snapshot(db)
        if any(v[0] != "done" for v in rows.values()):
            continue                                  # a worker kill left a failed run: rerun retries it
        redone = [k for k, (st, fin, att) in done_before.items() if rows[k][1] != fin or rows[k][2] != att]
        report = os.path.isfile(os.path.join(out, "report.md"))
        log(f"  finished after {kills} kill(s): {len(rows)} runs done, integrity {integrity}, redone {len(redone)}, "
            f"report {'written' if report else 'MISSING'}")
        return ok and integrity == "ok" and not redone and report and len(rows) == 36


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--max-delay", type=float, default=12.0, help="longest wait before a kill, seconds")
    ap.add_argument("--worker-kills", action="store_true", help="sometimes SIGKILL a worker instead")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    passed = 0
    for i in range(args.trials):
        print(f"trial {i + 1}:", flush=True)
        if trial(rng, args.max_delay, args.worker_kills, lambda s: print(s, flush=True)):
            passed += 1
    print(f"{passed}/{args.trials} trials passed")
    return 0 if passed == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
