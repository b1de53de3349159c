"""Study runs on a Ray cluster: the executor seam (``pygzlaw.study.executor``) as Ray tasks.

    from pygzlaw.study.ray_executor import RayExecutor
    ex = RayExecutor(num_cpus=1, address="auto")        # or num_gpus=1: one run per GPU
    run_study(cfg, executor=ex)                         # the SQLite store stays with the driver

One run is one Ray task declaring the resources it needs (``num_cpus``, or ``num_gpus=1``:
Ray then sets ``CUDA_VISIBLE_DEVICES`` so the run sees its GPU as cuda:0). The task imports the
run function by name (``run_fn``, "module:function", as the local workers do) and returns its
JSON-able record; only that record travels back. Results come back in completion order.

Failures read as the local executor's: an exception in the run is a failed result with its
traceback (never retried: the driver decides); a worker or node that dies is retried by Ray
``max_retries`` times, then reported as "worker died ...".
"""
from __future__ import annotations

import json
import time
from typing import Iterator

from pygzlaw.study.executor import DEFAULT_RUN_FN, RunResult, _json_default

__all__ = ["RayExecutor"]


def _run_task(run_fn: str, threads: int, payload: dict) -> dict:
    """Body of one Ray task: call run_fn(payload, threads=threads); never raises."""
    import importlib
    import traceback

    t0 = time.perf_counter()
    try:
        mod, _, name = run_fn.partition(":")
        rec = getattr(importlib.import_module(mod), name)(payload, threads=threads)
        # JSON round trip: the record reads exactly as one from a local worker's pipe
        res = {"ok": True, "record": json.loads(json.dumps(rec, default=_json_default))}
    except Exception as exc:  # a failed run is a result, as in the local worker
        res = {"ok": False,
               "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"}
    res["wall_s"] = time.perf_counter() - t0
    return res


class RayExecutor:
    """Runs as Ray tasks, any number at once (as many as the cluster's resources allow).

    Args:
        num_cpus: CPUs each run declares; also its torch threads (``threads=`` of run_fn).
        num_gpus: GPUs each run declares (0 or 1 for one run per GPU).
        run_fn: "module:function" called as fn(payload, threads=num_cpus) -> dict.
        address: Ray cluster to join; None = RAY_ADDRESS, else a new local Ray (dashboard
            off), shut down by close(). Ignored when Ray is already initialized.
        max_retries: Ray reruns of a run whose worker or node died (default 1).
        workers: runs the study driver keeps in flight at once (its ``slots``); None = what
            the cluster holds now: its CPUs // num_cpus (or GPUs // num_gpus), at least 1.
        poll_s: longest wait inside results() between checks (it returns as runs finish).
        run_timeout_s: a run still unfinished this long after its submission is cancelled
            (its worker killed) and reported failed; None = no limit.

    Raises:
        ImportError: Ray is not installed (names the extra to install).
        ValueError: num_cpus < 0, num_gpus < 0 or max_retries < 0.
    """

    def __init__(self, *, num_cpus: int = 1, num_gpus: float = 0, run_fn: str = DEFAULT_RUN_FN,
                 address: str | None = None, max_retries: int = 1, workers: int | None = None,
                 poll_s: float = 1.0, run_timeout_s: float | None = None):
        from pygzlaw.scan.ray_engine import require_ray

        if num_cpus < 0 or num_gpus < 0 or max_retries < 0:
            raise ValueError(f"num_cpus={num_cpus}, num_gpus={num_gpus}, max_retries={max_retries}"
                             " must all be >= 0")
        ray = require_ray("RayExecutor (study runs on Ray)")
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
            self._started = True
        self.num_cpus, self.num_gpus, self.run_fn = num_cpus, num_gpus, run_fn
        self.threads = max(1, int(num_cpus))
        self.poll_s = poll_s
        self.run_timeout_s = run_timeout_s
        if workers is None:
            res = ray.cluster_resources()
            workers = (int(res.get("GPU", 0) // num_gpus) if num_gpus
                       else int(res.get("CPU", 1) // max(num_cpus, 1)))
        self.workers = max(1, int(workers))
        self._task = ray.remote(_run_task).options(num_cpus=num_cpus, num_gpus=num_gpus,
                                                   max_retries=max_retries)
        self._inflight: dict = {}  # ObjectRef -> (run_id, t_submit)
        self._closed = False

    def submit(self, run_id: str, payload: dict) -> None:
        if self._closed:
            raise RuntimeError("executor is closed")
        ref = self._task.remote(self.run_fn, self.threads, payload)
        self._inflight[ref] = (run_id, time.perf_counter())

    @property
    def n_pending(self) -> int:
        """Runs submitted and not yet reported."""
        return len(self._inflight)

    def results(self) -> Iterator[RunResult]:
        """Yield results as runs finish until none is in flight (submitting inside is fine)."""
        ray = self._ray
        while self._inflight:
            ready, _ = ray.wait(list(self._inflight), num_returns=1, timeout=self.poll_s)
            for ref in ready:
                run_id, t0 = self._inflight.pop(ref)
                try:
                    d = ray.get(ref)
                except ray.exceptions.RayError as exc:  # worker/node died after all retries
                    yield RunResult(run_id, False, None, f"worker died while running {run_id} "
                                    f"({type(exc).__name__}: {str(exc)[:500]})",
                                    time.perf_counter() - t0)
                    continue
                yield RunResult(run_id, d["ok"], d.get("record"), d.get("error"), d["wall_s"])
            if self.run_timeout_s is not None:
                now = time.perf_counter()
                for ref, (run_id, t0) in list(self._inflight.items()):
                    if now - t0 > self.run_timeout_s:
                        ray.cancel(ref, force=True)
                        del self._inflight[ref]
                        yield RunResult(run_id, False, None, f"run {run_id} timed out after "
                                        f"{self.run_timeout_s} s (run_timeout_s); cancelled",
                                        now - t0)

    def close(self) -> None:
        """Cancel runs still in flight; shut down a Ray this executor started."""
        self._closed = True
        for ref in list(self._inflight):
            self._ray.cancel(ref, force=True)
        self._inflight.clear()
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
            self._started = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
