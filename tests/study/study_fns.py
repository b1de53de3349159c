"""Run functions for executor tests, imported by worker processes (PYTHONPATH=tests/study).

``synthetic_run`` returns a record whose loss follows a known Chinchilla law, so the executor,
store and resume logic are tested without training; ``die_run`` SIGKILLs its own worker.
"""
from __future__ import annotations

import os
import signal
import time


def synthetic_run(payload: dict, *, threads: int = 1) -> dict:
    if payload.get("fail"):
        raise ValueError(f"asked to fail: {payload['fail']}")
    time.sleep(payload.get("sleep_s", 0.0))
    n, d = payload["n"], payload["d"]
    return {"n_params": n, "n_params_non_embedding": n // 2, "n_tokens": d, "flops": 6.0 * n * d,
            "train_loss": 1.0 + 400 / n ** 0.5 + 300 / d ** 0.4, "val_loss": 1.0 + 400 / n ** 0.5 + 300 / d ** 0.4,
            "wall_s": 0.0, "tokens_per_s": 1.0, "version": "test", "threads": threads, "pid": os.getpid()}


def die_run(payload: dict, *, threads: int = 1) -> dict:
    if payload.get("die"):
        os.kill(os.getpid(), signal.SIGKILL)
    return synthetic_run(payload, threads=threads)
