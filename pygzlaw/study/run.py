"""The study driver: plan the grid, measure H, run what is not done, then analyse and report.

Resuming is the normal path: the plan is recomputed from the config, every run is identified by
the hash of its training config (``store.run_id_of``), and only runs that are not 'done' are
executed. The driver holds an exclusive ``flock`` on ``<out>/.study.lock`` while it runs; the
kernel drops it when the driver dies (even by SIGKILL), so a later driver that gets the lock
knows any 'running' rows are orphans and retries them.
"""
from __future__ import annotations

import fcntl
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

from pygzlaw.study.config import StudyConfig, grammar_source
from pygzlaw.study.executor import DEFAULT_RUN_FN, LocalExecutor
from pygzlaw.study.store import RunStore, run_id_of

__all__ = ["reproduce", "plan_runs", "measure_h", "StudyOutcome", "study_lock"]

H_DOC_TOKENS = 256   # the paper's documents: H is a property of the grammar, not of the training context


@dataclass
class StudyOutcome:
    """What ``reproduce`` did: runs per status, how many ran now, wall time, the report folder."""

    out: str
    db: str
    n_runs: int
    n_done: int
    n_failed: int
    n_ran: int
    n_skipped: int
    wall_s: float
    report: str | None


@contextmanager
def study_lock(out: str):
    """Exclusive lock on <out>/.study.lock for the driver's lifetime.

    Raises:
        ValueError: another live driver holds it (names the folder).
    """
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, ".study.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip()
            raise ValueError(f"{out}: another study driver (pid {other or '?'}) is running in this folder; wait "
                             "for it or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def _grammar_object(g, out):
    from pygzlaw.grammar import GrammarSpec, load, random_pcfg

    if g.preset:
        return random_pcfg(g.preset, g.seed)
    if g.file:
        return load(g.file)
    from pygzlaw.grammar import save

    grammar = random_pcfg(GrammarSpec(*(g.spec[k] for k in ("nonterminals", "terminals", "rhs_max_options",
                                                              "rhs_max_len"))), g.seed)
    path = grammar_source(g, out)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        save(grammar, path)
    return grammar


def measure_h(grammar, *, n_docs: int = 1000, seed: int = 1234, separator: str = "reserve") -> tuple:
    """H by the paper's definition (Pandey 2024, Sec. 3) with the exact scorer.

    Samples n_docs documents of 256 tokens (document d from (grammar, seed, d)), writes each as
    4-byte big-endian int32 ids, gzips at level 9 (byte-identical to gzip.GzipFile) and takes the
    median of compressed/raw bytes.

    Returns:
        (H median, sample std, vocab_size).
    """
    import numpy as np

    from pygzlaw.sampler import Sampler
    from pygzlaw.score import score_tokens

    s = Sampler(grammar, H_DOC_TOKENS, seed=seed, separator=separator, threads=-1)
    buf = np.empty((n_docs, H_DOC_TOKENS), dtype=s.dtype)
    s.fill(buf, first_doc=0)
    r = score_tokens(buf, threads=-1).ratio
    return float(np.median(r)), float(np.std(r, ddof=1)) if n_docs > 1 else 0.0, int(s.vocab_size)


def plan_runs(cfg: StudyConfig) -> list[dict]:
    """Every run of the grid: grammar x model x tokens, with its TrainConfig dict and run_id.

    A preset grammar is named by (preset, seed) in the config. A grammar file is named there by its
    path, so its content's sha256 joins the identity (an edited file gives new runs, never stale
    ones); a spec grammar's knobs and seed do (its TrainConfig names the exported file).
    """
    import hashlib

    runs = []
    for g in cfg.grammars:
        content = None
        if g.file:
            with open(g.file, "rb") as f:
                content = hashlib.sha256(f.read()).hexdigest()
        elif g.spec:   # random_pcfg(spec, seed) is the same grammar on every platform
            content = "spec:" + ",".join(f"{k}={v}" for k, v in sorted(g.spec.items())) + f";seed={g.seed}"
        for m in cfg.models:
            for t in cfg.tokens:
                tc = cfg.train_config(g, m, t).to_dict()
                ident = tc if content is None else {**tc, "grammar_content": content}
                runs.append({"run_id": run_id_of(ident), "config": tc, "grammar": g.name,
                             "grammar_spec": g.spec_dict(), "grammar_seed": g.seed, "model": m, "D": t})
    return runs


def worker_gpus(n: int, visible: str | None = None) -> list[str]:
    """CUDA_VISIBLE_DEVICES value for each of ``n`` GPU workers: the i-th GPU the driver may
    use, so a driver started with CUDA_VISIBLE_DEVICES=4,5 puts its workers on GPUs 4 and 5,
    not 0 and 1. ``visible`` defaults to the environment's CUDA_VISIBLE_DEVICES.

    Raises:
        ValueError: fewer visible GPUs than ``n`` (names both and the fix).
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    if not visible or not visible.strip():
        return [str(i) for i in range(n)]
    ids = [v.strip() for v in visible.split(",") if v.strip()]
    if len(ids) < n:
        raise ValueError(f"gpus={n} but CUDA_VISIBLE_DEVICES={visible!r} shows {len(ids)} GPU(s); "
                         f"lower --gpus to {len(ids)} or widen CUDA_VISIBLE_DEVICES")
    return ids[:n]


def run_cost(run: dict, vocab_size: int | None) -> float | None:
    """A run's expected work for the progress line's time left: model FLOPs, the trainer's
    train_flops_per_token(model) x D (PaLM's count), resolved with the grammar's vocabulary.
    Runs whose model cannot be resolved here count as the mean of the others (None)."""
    from pygzlaw.model.config import model_config, train_flops_per_token

    cfg = run["config"]
    try:
        mcfg = model_config(cfg["model"], int(vocab_size), int(cfg.get("seq_len", 256)))
    except (TypeError, ValueError, KeyError):
        return None
    return float(train_flops_per_token(mcfg)) * float(run["D"])


def _time_left_s(finished: list[tuple[float, float]], in_flight: list[float], queued: list[float],
                 slots: int) -> float:
    """Seconds left: each run's time is modelled as a + b·cost (a: per-run start-up, b: seconds
    per FLOP), fitted by least squares to the finished runs' (cost, wall seconds); runs in
    flight count as half done; ``slots`` runs go at once. With fewer than 3 finished runs, or a
    fit that gives a negative a or b, every run counts as the mean finished one (the first
    runs hold a process start-up that a seconds-per-FLOP rate would spread over the grid)."""
    import numpy as np

    if not finished:
        return 0.0
    c = np.array([x for x, _ in finished], dtype=float)
    w = np.array([y for _, y in finished], dtype=float)
    a, b = float(w.mean()), 0.0
    if len(finished) >= 3 and np.ptp(c) > 0:
        (a_fit, b_fit), *_ = np.linalg.lstsq(np.c_[np.ones_like(c), c], w, rcond=None)
        if a_fit >= 0 and b_fit >= 0:
            a, b = float(a_fit), float(b_fit)
    left = sum(a + b * x for x in queued) + 0.5 * sum(a + b * x for x in in_flight)
    return left / max(slots, 1)


def _fmt_s(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def reproduce(cfg: StudyConfig, *, run_fn: str = DEFAULT_RUN_FN, progress: bool = True, report: bool = True,
              executor=None, log=None) -> StudyOutcome:
    """Run the study end to end: H per grammar, the runs not yet done, analysis and the report.

    Args:
        cfg: a validated StudyConfig (see pygzlaw.study.config).
        run_fn: "module:function" the workers call per run (the trainer by default).
        progress: print one line per finished run (done/total, loss, time left) to stderr.
        report: analyse and write the report folder after the runs.
        executor: an Executor to use instead of LocalExecutor(cfg.workers, threads=cfg.threads_per_worker).
        log: callable(str) for progress lines (default: print to stderr).

    Returns:
        StudyOutcome.

    Raises:
        ValueError: another driver holds the study folder, or the database is not a run store.
    """
    t_start = time.perf_counter()
    say = log or (lambda s: print(s, file=sys.stderr, flush=True))
    if not progress:
        say = lambda s: None  # noqa: E731
    with study_lock(cfg.out):
        store = RunStore(cfg.db_path)
        try:
            store.set_meta("config", cfg.to_dict())
            seed = int(cfg.train.get("data_seed", 1234))
            sep = cfg.train.get("separator", "reserve")
            # How H is computed here (zlib flavour and version, ...): H measured under another
            # zlib is measured again, so the store's H values share one provenance.
            from pygzlaw.provenance import gzip_provenance

            prov = gzip_provenance()
            same_zlib = store.get_meta("gzip_provenance") == prov
            for g in cfg.grammars:
                grammar = _grammar_object(g, cfg.out)
                old = store.grammar(g.name)
                if (old and old["spec"] == g.spec_dict() and old["h_docs"] == cfg.analysis.h_docs
                        and old["H_median"] is not None and same_zlib):
                    continue
                h, h_std, vocab = measure_h(grammar, n_docs=cfg.analysis.h_docs, seed=seed, separator=sep)
                store.upsert_grammar(g.name, g.spec_dict(), g.seed, vocab_size=vocab, h_median=h, h_std=h_std,
                                     h_docs=cfg.analysis.h_docs, seq_len=H_DOC_TOKENS)
                say(f"grammar {g.name}: H = {h:.4f} (std {h_std:.4f}, {cfg.analysis.h_docs} docs), vocab {vocab}")
            store.set_meta("gzip_provenance", prov)
            plan = plan_runs(cfg)
            store.add_runs(plan)
            ids = [r["run_id"] for r in plan]
            store.set_meta("plan", ids)   # the report analyses these runs only
            n_orphans = store.reset_interrupted()
            if n_orphans:
                say(f"{n_orphans} run(s) left 'running' by a stopped driver: retrying them")
            rows = {r["run_id"]: r for r in store.runs(run_ids=ids)}
            todo = [r for r in plan if rows[r["run_id"]]["status"] != "done"]
            n_skip = len(plan) - len(todo)
            say(f"study {cfg.name}: {len(plan)} runs ({n_skip} already done, {len(todo)} to run) on "
                f"{cfg.workers} worker(s) x {cfg.threads_per_worker} thread(s); database {cfg.db_path}")
            n_ran = _execute(cfg, store, todo, n_total=len(plan), n_done0=n_skip, run_fn=run_fn,
                             executor=executor, say=say)
            final = store.runs(run_ids=ids)
            n_done = sum(r["status"] == "done" for r in final)
            n_failed = sum(r["status"] == "failed" for r in final)
            report_dir = None
            if report:
                from pygzlaw.study.report import build_report

                t0 = time.perf_counter()
                report_dir = build_report(cfg.out, store=store, config=cfg)
                say(f"analysis and report: {time.perf_counter() - t0:.1f} s -> {report_dir}/report.md")
        finally:
            store.close()
    wall = time.perf_counter() - t_start
    say(f"study {cfg.name}: {n_done}/{len(plan)} runs done, {n_failed} failed, {n_ran} run now; "
        f"wall {_fmt_s(wall)}")
    return StudyOutcome(cfg.out, cfg.db_path, len(plan), n_done, n_failed, n_ran, n_skip, wall, report_dir)


def _execute(cfg, store, todo, *, n_total, n_done0, run_fn, executor, say) -> int:
    if not todo:
        return 0
    own = executor is None
    ex = LocalExecutor(cfg.workers, threads=cfg.threads_per_worker, run_fn=run_fn,
                       log_dir=os.path.join(cfg.out, "logs") if cfg.gpus else None,
                       gpus=worker_gpus(cfg.gpus) if cfg.gpus else None) if own else executor
    slots = getattr(ex, "workers", cfg.workers)
    queue = list(todo)
    finished = n_done0  # every finished run counts in [k/total], failed or done
    n_ran = 0
    label = {r["run_id"]: f"{r['grammar']} {r['model']} D={r['D']}" for r in todo}
    # time left weighs the runs by their FLOPs (plus a start-up cost each): the largest come
    # last in a grid's order, so a count of runs left would promise far too little
    vocab = {g: (store.grammar(g) or {}).get("vocab_size") for g in {r["grammar"] for r in todo}}
    cost = {r["run_id"]: run_cost(r, vocab[r["grammar"]]) for r in todo}
    known = [c for c in cost.values() if c]
    mean_cost = sum(known) / len(known) if known else 1.0
    cost = {k: c or mean_cost for k, c in cost.items()}
    in_flight, finished_costs = set(), []   # run ids; (cost, wall seconds) of finished runs
    t0 = time.perf_counter()

    def submit_next():
        r = queue.pop(0)
        in_flight.add(r["run_id"])
        store.mark_running(r["run_id"])
        ex.submit(r["run_id"], r["config"])

    try:
        # Only K runs are ever submitted at once, so 'running' in the store means in flight.
        for _ in range(min(slots, len(queue))):
            submit_next()
        for res in ex.results():
            n_ran += 1
            finished += 1
            in_flight.discard(res.run_id)
            finished_costs.append((cost.get(res.run_id, mean_cost), res.wall_s))
            if res.ok:
                store.mark_done(res.run_id, res.record)
                msg = f"val loss {res.record.get('val_loss', float('nan')):.4f}"
            else:
                store.mark_failed(res.run_id, res.error or "unknown error")
                msg = "FAILED: " + (res.error or "").splitlines()[0][:200]
            if queue:
                submit_next()
            elapsed = time.perf_counter() - t0
            eta = _time_left_s(finished_costs, [cost[k] for k in in_flight],
                               [cost[r["run_id"]] for r in queue], slots)
            say(f"[{finished}/{n_total}] {label.get(res.run_id, res.run_id)}: {msg} ({res.wall_s:.1f} s); "
                f"elapsed {_fmt_s(elapsed)}, about {_fmt_s(eta)} left")
    finally:
        if own:
            ex.close()
    return n_ran
