"""Shared benchmark plumbing: timing with burn-in, medians, machine facts, JSON.

Every bench script runs its baseline and pygzlaw in the same process, reports
medians of several runs (the machines are noisy) and writes one JSON document:
``{"bench": ..., "machine": {..., "commit"}, "timestamp_utc", "summary": {...},
"rows": [...]}``. Lives in the package so ``pygzlaw bench`` runs where pygzlaw is
installed; ``bench/_harness.py`` re-exports it for the scripts in a clone.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from typing import Callable

# One BLAS thread for every benchmark (this module is imported before numpy):
# OpenBLAS's idle workers spin for a while after each call, e.g. the sampler's
# spectral-radius eigvals, and take a core from the 2-thread runs measured next.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")


def time_runs(fn: Callable[[], object], *, runs: int = 5, warmup: int = 1) -> list[float]:
    """Wall seconds of ``runs`` calls of fn after ``warmup`` unrecorded calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def time_interleaved(fns: dict[str, Callable[[], object]], *, runs: int = 5,
                     warmup: int = 1) -> dict[str, list[float]]:
    """Wall seconds of each fn, run in turn within every round, so a machine
    whose speed drifts over seconds slows all of them alike (their ratio is
    then measured fairly, not their absolute speed)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t0)
    return out


def median(xs) -> float:
    return float(statistics.median(xs))


def quantiles(xs) -> dict:
    """p20/p50/p80 of a list of numbers (p50 = median)."""
    xs = sorted(xs)
    if len(xs) == 1:
        return {"p20": xs[0], "p50": xs[0], "p80": xs[0]}
    q = statistics.quantiles(xs, n=10, method="inclusive")
    return {"p20": q[1], "p50": median(xs), "p80": q[7]}


def machine_info() -> dict:
    import numpy as np

    try:
        import pygzlaw
        version = pygzlaw.__version__
    except Exception:  # bench may run before install
        version = None
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "pygzlaw": version, "platform": sys.platform,
            "commit": git_commit()}


def git_commit() -> str | None:
    """HEAD of the clone pygzlaw runs from (None for an installed package or no git)."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not os.path.exists(os.path.join(root, ".git")):  # a file in a worktree
        return None
    try:
        r = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                           text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def write_json(path: str | None, doc: dict) -> None:
    """Print the summary and write the whole document atomically to path (if given)."""
    import datetime

    doc = {**doc, "machine": machine_info(),
           "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
               timespec="seconds")}
    print(json.dumps(doc.get("summary", {}), indent=2))
    if path:
        from pygzlaw.atomic import write_json as write_json_atomic

        write_json_atomic(path, doc, indent=2)
