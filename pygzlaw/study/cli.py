"""``pygzlaw reproduce`` (run the study), ``pygzlaw runs`` (list/export runs), ``pygzlaw report`` (rebuild)."""
from __future__ import annotations

import os
import sys

from pygzlaw._argtypes import positive_int as _positive_int
from pygzlaw.study.config import SCALE_NAMES


def register(subparsers) -> None:
    """Add ``reproduce``, ``runs`` and ``report`` to the ``pygzlaw`` command line."""
    p = subparsers.add_parser(
        "reproduce", help="run the paper's study: grammars -> H -> training grid -> laws -> report",
        description="Run the whole study: H per grammar, a grid of training runs (model size x data amount) "
                    "per grammar, a Chinchilla law per grammar, the parameters regressed on H, the data-dependent "
                    "law and the frontier, then write the report folder. Rerunning resumes: finished runs are "
                    "skipped, failed or interrupted ones are retried.")
    p.add_argument("--scale", choices=SCALE_NAMES, default=None,
                   help="named scale (default tiny, or the config file's [study] scale): tiny = about 3 minutes on 2 "
                        "CPU cores, small = 61M tokens (~1-2 h on 2 cores, estimated), paper = 6 x 6 x 6 for GPUs")
    p.add_argument("--config", metavar="FILE", help="study TOML file (its keys override the scale's)")
    p.add_argument("--out", metavar="DIR", help="study folder: database, report, laws (default study-<scale>)")
    p.add_argument("--db", metavar="FILE", help="run store path (default <out>/runs.sqlite)")
    p.add_argument("--workers", "-K", type=_positive_int, help="K runs at once (default: the scale's, 2 for tiny)")
    p.add_argument("--threads-per-worker", type=_positive_int, help="torch threads per worker (default 1)")
    p.add_argument("--gpus", type=_positive_int, help="one worker per GPU on this machine (worker i sees GPU i)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="where the runs go: local = K worker processes on this machine (default); ray = one Ray "
                        "task per run (needs the pygzlaw[ray] extra; --threads-per-worker CPUs a run, or one GPU "
                        "with --gpus); the database and the report stay with this driver")
    p.add_argument("--address", metavar="ADDR",
                   help="--engine ray: Ray cluster to join, e.g. auto or ray://host:10001 (default: RAY_ADDRESS, "
                        "else a new local Ray)")
    p.add_argument("--no-report", action="store_true", help="only run; build the report later with pygzlaw report")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_reproduce)

    r = subparsers.add_parser("runs", help="list, filter or export the runs of a study database",
                              description="List the runs of a study (one line each), filtered by status, grammar "
                                          "or model; --export writes them as CSV or JSON.")
    _db_args(r)
    r.add_argument("--status", choices=("pending", "running", "done", "failed"), action="append",
                   help="only runs with this status (repeatable)")
    r.add_argument("--grammar", action="append", help="only runs of this grammar label (repeatable)")
    r.add_argument("--model", action="append", help="only runs of this model size name (repeatable)")
    r.add_argument("--export", metavar="FILE", help="write the selected runs to FILE (.csv or .json)")
    r.add_argument("--json", action="store_true", help="print the selected runs as JSON")
    r.set_defaults(func=cmd_runs)

    rep = subparsers.add_parser("report", help="rebuild a study's report from its database",
                                description="Re-analyse the runs in the study database and rewrite report.md, "
                                            "figures/, laws/, runs.csv and analysis.json in the study folder.")
    _db_args(rep)
    rep.set_defaults(func=cmd_report)


def _db_args(p) -> None:
    p.add_argument("--out", metavar="DIR", default=None, help="study folder (default study-tiny)")
    p.add_argument("--db", metavar="FILE", help="database (default <out>/runs.sqlite)")


def _db_path(args) -> str:
    return args.db or os.path.join(args.out or "study-tiny", "runs.sqlite")


def cmd_reproduce(args) -> int:
    from pygzlaw.study.config import load_config
    from pygzlaw.study.run import reproduce

    if args.address is not None and args.engine != "ray":
        raise ValueError("--address needs --engine ray")
    overrides = {"out": args.out, "db": args.db, "workers": args.workers,
                 "threads_per_worker": args.threads_per_worker, "gpus": args.gpus}
    cfg = load_config(args.config, scale=args.scale, **overrides)
    if args.config and args.scale and cfg.scale != args.scale:
        raise ValueError(f"--scale {args.scale} disagrees with {args.config}'s study.scale = {cfg.scale!r}; "
                         "drop one of them")
    if args.out is None and args.config is None and args.scale is not None:
        cfg.out = f"study-{args.scale}"
    executor = None
    if args.engine == "ray":
        from pygzlaw.study.ray_executor import RayExecutor

        try:
            # One task per run: threads_per_worker CPUs (or one GPU); in flight: --workers if given, else what
            # the cluster holds.
            executor = RayExecutor(num_cpus=cfg.threads_per_worker, num_gpus=1 if cfg.gpus else 0,
                                   address=args.address, workers=args.workers)
        except ImportError as exc:
            print(f"pygzlaw reproduce: error: {exc}", file=sys.stderr)
            return 2
    try:
        outcome = reproduce(cfg, progress=not args.quiet, report=not args.no_report, executor=executor)
    finally:
        if executor is not None:
            executor.close()
    if outcome.report:
        print(f"report: {os.path.join(outcome.report, 'report.md')}")
        laws = os.path.join(outcome.report, "laws")
        if any(f.endswith(".json") for f in os.listdir(laws)):
            print(f"serve the laws: pygzlaw serve {laws}")
        else:
            print(f"no fitted law passed the identifiability checks (see the report); the flagged fits are in "
                  f"{os.path.join(outcome.report, 'laws-flagged')}")
    if outcome.n_failed:
        print(f"pygzlaw reproduce: {outcome.n_failed} run(s) failed; `pygzlaw runs --out {cfg.out} --status failed` "
              "shows the errors, and rerunning retries them", file=sys.stderr)
        return 1
    return 0


def cmd_runs(args) -> int:
    import json

    from pygzlaw.study import export_runs, list_runs

    db = _db_path(args)
    if args.export:
        n = export_runs(db, args.export, status=args.status, grammar=args.grammar, model=args.model)
        print(f"wrote {n} runs to {args.export}", file=sys.stderr)
        return 0
    rows = list_runs(db, status=args.status, grammar=args.grammar, model=args.model)
    if not rows and not args.json:
        filters = [f"--{k} {v}" for k, vs in (("status", args.status), ("grammar", args.grammar),
                                              ("model", args.model)) for v in (vs if isinstance(vs, list) else [vs])
                   if v is not None]
        what = "match " + " ".join(filters) if filters else "are recorded"
        print(f"no runs {what} in {db}", file=sys.stderr)
        return 0
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'run_id':16}  {'grammar':10} {'H':>6}  {'model':8} {'N':>9} {'D':>10}  {'status':8} {'val_loss':>8} "
          f"{'wall_s':>7}")
    for r in rows:
        h = f"{r['H_median']:.3f}" if r["H_median"] is not None else "-"
        loss = f"{r['val_loss']:.4f}" if r["val_loss"] is not None else "-"
        wall = f"{r['wall_s']:.1f}" if r["wall_s"] is not None else "-"
        n = f"{r['N']:,}" if r["N"] else "-"
        line = (f"{r['run_id']:16}  {r['grammar']:10} {h:>6}  {r['model']:8} {n:>9} {r['D']:>10,}  {r['status']:8} "
                f"{loss:>8} {wall:>7}")
        if r["status"] == "failed" and r["error"]:
            line += "  " + r["error"].splitlines()[0][:120]
        print(line)
    counts = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"{len(rows)} runs: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())), file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    from pygzlaw.study.report import build_report

    out = args.out or (os.path.dirname(args.db) if args.db else "study-tiny")
    build_report(out, db=_db_path(args))
    print(f"report: {os.path.join(out, 'report.md')}")
    return 0
