"""The executor seam: where runs execute. The study driver only calls this small interface.

    ex = LocalExecutor(workers=2, threads=1)
    ex.submit(run_id, payload)          # payload: JSON-able dict (the run's TrainConfig.to_dict())
    for result in ex.results():         # yields RunResult as runs finish, in completion order
        ...                             # the driver may submit more from inside the loop
    ex.close()

A cluster executor (one run per GPU or per node) implements the same three methods. The
function a worker runs is named by ``run_fn`` ("module:function", taking the payload dict and
returning a JSON-able dict), so the worker needs nothing from the driver but that name.

``LocalExecutor`` keeps K worker processes (spawned, so no torch state is forked), each with its
own pipe and one run at a time. A worker that dies (SIGKILL, OOM) turns its run into a failed
result ("worker died ...") and is replaced; the other workers go on. Workers die with the
driver: PR_SET_PDEATHSIG on Linux, plus a thread that exits when the parent pid changes.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Iterator, Protocol

from pygzlaw._subproc import module_argv

__all__ = ["Executor", "LocalExecutor", "RunResult", "DEFAULT_RUN_FN"]

DEFAULT_RUN_FN = "pygzlaw.study.worker:train_run"


@dataclass
class RunResult:
    """One finished run: ok with the run function's dict, or failed with the error text."""

    run_id: str
    ok: bool
    record: dict | None = None
    error: str | None = None
    wall_s: float = 0.0


class Executor(Protocol):
    def submit(self, run_id: str, payload: dict) -> None: ...

    def results(self) -> Iterator[RunResult]: ...

    def close(self) -> None: ...


def _die_with_parent(parent_pid: int) -> None:
    """Exit when the driver dies: PR_SET_PDEATHSIG (Linux) plus a parent-pid watch thread."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except OSError:
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


def worker_main(argv=None) -> int:
    """Worker process: ``python -m pygzlaw.study.worker RUN_FN THREADS PARENT_PID RESULT_FD``.

    Reads one JSON task per line on stdin ({"run_id", "payload"}), writes one JSON result per line
    to RESULT_FD ({"run_id", "ok", "record" | "error", "wall_s"}). A plain subprocess (not
    multiprocessing) so the driver's __main__ is never re-imported in the worker.
    """
    run_fn, threads, parent_pid, result_fd = (argv or sys.argv[1:])[:4]
    threads, parent_pid, result_fd = int(threads), int(parent_pid), int(result_fd)
    _die_with_parent(parent_pid)
    out = os.fdopen(result_fd, "w", buffering=1)
    mod, _, name = run_fn.partition(":")
    fn = getattr(importlib.import_module(mod), name)
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        t0 = time.perf_counter()
        try:
            rec = fn(task["payload"], threads=threads)
            res = {"run_id": task["run_id"], "ok": True, "record": rec}
        except BaseException as exc:  # report every failure of a run; the worker lives on
            res = {"run_id": task["run_id"], "ok": False,
                   "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"}
        res["wall_s"] = time.perf_counter() - t0
        out.write(json.dumps(res, default=_json_default) + "\n")
        out.flush()
    return 0


def _json_default(o):
    try:
        return float(o)
    except (TypeError, ValueError):
        return str(o)


class _Worker:
    """One worker subprocess: its Popen, the task pipe (its stdin) and the result pipe."""

    def __init__(self, run_fn: str, threads: int, log_path: str | None, gpu: str | None = None):
        rfd, wfd = os.pipe()
        env = dict(os.environ)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu     # this worker sees one GPU, as cuda:0
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        self.log = open(log_path, "ab") if log_path else None
        try:
            self.proc = subprocess.Popen(
                module_argv("pygzlaw.study.worker", run_fn, str(threads), str(os.getpid()), str(wfd)),
                stdin=subprocess.PIPE, stdout=self.log or sys.stderr, stderr=self.log or sys.stderr,
                pass_fds=(wfd,), env=env, close_fds=True)
        finally:
            os.close(wfd)
        self.results = os.fdopen(rfd, "rb")
        self.busy = None          # (run_id, t_start) while a run is in flight

    def fileno(self) -> int:
        return self.results.fileno()

    def send(self, run_id: str, payload: dict) -> None:
        self.proc.stdin.write((json.dumps({"run_id": run_id, "payload": payload}) + "\n").encode())
        self.proc.stdin.flush()
        self.busy = (run_id, time.perf_counter())

    def stop(self, *, kill: bool) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=0 if kill else 5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.results.close()
        if self.log:
            self.log.close()


class LocalExecutor:
    """K runs at once in K worker subprocesses on this machine.

    Args:
        workers: K, processes (each runs one run at a time).
        threads: torch threads per worker. On 2 cores, 2 workers x 1 thread beat 1 worker x 2
            threads for tiny models (ARCHITECTURE.md, "Study").
        run_fn: "module:function" each worker calls as fn(payload, threads=threads) -> dict.
        log_dir: folder for worker-<i>.log (the workers' stdout and stderr); None = the driver's stderr.
        gpus: None, or one CUDA_VISIBLE_DEVICES value per worker (worker i sees only gpus[i]):
            one run per GPU on a multi-GPU machine.
    """

    def __init__(self, workers: int = 2, *, threads: int = 1, run_fn: str = DEFAULT_RUN_FN,
                 log_dir: str | None = None, gpus: list | None = None):
        if workers < 1:
            raise ValueError(f"workers={workers} must be >= 1")
        if gpus is not None and len(gpus) != workers:
            raise ValueError(f"gpus has {len(gpus)} entries for {workers} workers; give one per worker")
        self.workers, self.threads, self.run_fn, self.log_dir = workers, threads, run_fn, log_dir
        self.gpus = None if gpus is None else [str(g) for g in gpus]
        self._queue: deque = deque()
        self._slots: list = [None] * workers
        self._closed = False

    def _worker(self, i: int) -> _Worker:
        if self._slots[i] is None:
            log = None
            if self.log_dir:
                os.makedirs(self.log_dir, exist_ok=True)
                log = os.path.join(self.log_dir, f"worker-{i}.log")
            self._slots[i] = _Worker(self.run_fn, self.threads, log, None if self.gpus is None else self.gpus[i])
        return self._slots[i]

    def submit(self, run_id: str, payload: dict) -> None:
        if self._closed:
            raise RuntimeError("executor is closed")
        self._queue.append((run_id, payload))
        self._dispatch()

    def _dispatch(self) -> None:
        for i in range(self.workers):
            if not self._queue:
                return
            if self._slots[i] is None or self._slots[i].busy is None:
                w = self._worker(i)
                run_id, payload = self._queue.popleft()
                try:
                    w.send(run_id, payload)
                except (BrokenPipeError, OSError):   # the worker died between runs: restart it once
                    w.stop(kill=True)
                    self._slots[i] = None
                    self._worker(i).send(run_id, payload)

    @property
    def n_pending(self) -> int:
        """Runs submitted and not yet reported (queued or in flight)."""
        return len(self._queue) + sum(w is not None and w.busy is not None for w in self._slots)

    def results(self) -> Iterator[RunResult]:
        """Yield results until nothing is queued or in flight (submitting inside the loop is fine)."""
        while self.n_pending:
            self._dispatch()
            busy = [w for w in self._slots if w is not None and w.busy is not None]
            for w in wait(busy, timeout=1.0):
                i = self._slots.index(w)
                run_id, t0 = w.busy
                line = w.results.readline()
                if not line:                        # EOF: the worker process is gone
                    w.stop(kill=True)
                    self._slots[i] = None
                    res = RunResult(run_id, False, None, f"worker died (exit code {w.proc.returncode}) while "
                                    f"running {run_id}", time.perf_counter() - t0)
                else:
                    d = json.loads(line)
                    res = RunResult(d["run_id"], d["ok"], d.get("record"), d.get("error"), d.get("wall_s", 0.0))
                    w.busy = None
                yield res
                self._dispatch()

    def close(self) -> None:
        """Stop the workers (queued runs are dropped; in-flight ones are killed)."""
        self._closed = True
        self._queue.clear()
        for i, w in enumerate(self._slots):
            if w is not None:
                w.stop(kill=w.busy is not None)
                self._slots[i] = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
