"""Bench: how the study should use 2 CPU cores for tiny runs — K=2 single-threaded workers or 1 two-threaded.

Both configurations are LocalExecutors whose workers are started (and warmed by one round) before
timing, so torch's import is not counted. Each round runs the same batch of tiny-scale training
runs (a mix of widths and data amounts from the tiny grid) through one executor, then the other
(bench/_harness.time_interleaved): the machine's speed drifts, and interleaving makes both see it
alike. The summary gives the median wall seconds per batch for each and their ratio
(> 1: two single-threaded workers are faster).

Usage: python bench/bench_study.py [--rounds 3] [--json PATH]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _harness import median, quantiles, time_interleaved, write_json  # noqa: E402  (one BLAS thread; before numpy)

from pygzlaw.study.config import scale_config  # noqa: E402
from pygzlaw.study.executor import LocalExecutor  # noqa: E402


def batch(cfg):
    """Tiny-scale runs: every model at two of the tiny data amounts, for the middle grammar."""
    g = cfg.grammars[1]
    return [cfg.train_config(g, m, t).to_dict() for m in cfg.models for t in cfg.tokens[1:3]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    cfg = scale_config("tiny")
    runs = batch(cfg)
    execs = {"2_workers_x_1_thread": LocalExecutor(2, threads=1), "1_worker_x_2_threads": LocalExecutor(1, threads=2)}

    def drain(ex):
        def go():
            for i, r in enumerate(runs):
                ex.submit(f"r{i}", r)
            res = list(ex.results())
            bad = [x.error for x in res if not x.ok]
            if bad:
                raise RuntimeError(bad[0])
        return go

    try:
        times = time_interleaved({k: drain(ex) for k, ex in execs.items()}, runs=args.rounds, warmup=1)
    finally:
        for ex in execs.values():
            ex.close()
    a, b = median(times["2_workers_x_1_thread"]), median(times["1_worker_x_2_threads"])
    # Pairwise ratio per round too: the drift between rounds cancels within a round.
    pair = [y / x for x, y in zip(times["2_workers_x_1_thread"], times["1_worker_x_2_threads"])]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True).stdout.strip() or None
    except OSError:
        commit = None
    tokens = sum(r["n_tokens"] for r in runs)
    doc = {"bench": "study.local_executor", "commit": commit,
           "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "params": {"runs_per_batch": len(runs), "tokens_per_batch": tokens, "models": cfg.models,
                      "tokens": cfg.tokens[1:3], "grammar": cfg.grammars[1].name, "rounds": args.rounds},
           "summary": {"batch_s_2x1": a, "batch_s_1x2": b, "ratio_1x2_over_2x1": b / a,
                       "ratio_per_round_median": median(pair),
                       "tokens_per_s_2x1": tokens / a, "tokens_per_s_1x2": tokens / b},
           "rows": [{"config": k, "unit": "s", "runs": v, **quantiles(v)} for k, v in times.items()]}
    write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
