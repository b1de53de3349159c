"""Run functions for executor tests, imported by worker processes (PYTHONPATH=tests/study).

``synthetic_run`` returns a record whose loss follows a known Chinchilla law, so the executor,
store and resume logic are tested without training; ``die_run`` SIGKILLs its own worker.
"""
from __future__ import annotations

import functools
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


# Known per-grammar laws for law_run: x(H) linear in H, as the paper's data-dependent law assumes.
def true_params(h: float) -> dict:
    return {"E": 0.3 + 2.0 * h, "A": 300.0 - 200.0 * h, "B": 500.0 + 400.0 * h, "alpha": 0.6 - 0.5 * h,
            "beta": 0.3 + 0.4 * h}


@functools.lru_cache(maxsize=None)
def _grammar_facts(name: str, grammar_seed: int, data_seed: int) -> tuple:
    """(H over 200 documents as the study measures it, vocab size), once per worker and grammar."""
    from pygzlaw.grammar import random_pcfg
    from pygzlaw.study.run import measure_h

    h, _, vocab = measure_h(random_pcfg(name, grammar_seed), n_docs=200, seed=data_seed)
    return h, vocab


def law_run(payload: dict, *, threads: int = 1) -> dict:
    """A 'run' whose validation loss is exactly a known Chinchilla law of the grammar's H (no training)."""
    from pygzlaw.model import count_params, model_config

    h, vocab = _grammar_facts(payload["grammar"], payload["grammar_seed"], payload["data_seed"])
    n = count_params(model_config(payload["model"], vocab, payload["seq_len"]))
    p = true_params(h)
    d = payload["n_tokens"]
    loss = p["E"] + p["A"] / n.total ** p["alpha"] + p["B"] / d ** p["beta"]
    return {"n_params": n.total, "n_params_non_embedding": n.non_embedding, "n_tokens": d, "flops": 6.0 * n.total * d,
            "train_loss": loss, "val_loss": loss, "wall_s": 0.0, "tokens_per_s": 0.0, "version": "law_run"}
