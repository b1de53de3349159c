"""``pygzlaw serve``: the law service (FastAPI + uvicorn), on 127.0.0.1 unless told otherwise."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="HTTP service over a directory of fitted laws",
                              description="Serve fitted laws over HTTP: list, predict with intervals, allocate, "
                                          "fit. OpenAPI docs at /docs.")
    p.add_argument("law_dir", help="directory of law JSON files (written by `pygzlaw fit -o`)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-body-bytes", type=int, default=None, help="request size limit (default 1 MiB)")
    p.add_argument("--no-save", action="store_true", help="POST /fit may not write law files")
    p.add_argument("--workers", type=int, default=1, help="server processes (uvicorn workers); each loads the laws")
    p.add_argument("--log-level", default="warning")
    p.add_argument("--access-log", action="store_true",
                   help="log every request (off by default: a log line costs more than a predict's routing)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    import uvicorn

    from pygzlaw.serve.app import MAX_BODY_BYTES, create_app

    if not 0 < args.port < 65536:
        raise ValueError(f"--port={args.port} must be in 1..65535")
    limit = MAX_BODY_BYTES if args.max_body_bytes is None else args.max_body_bytes
    if limit <= 0:
        raise ValueError(f"--max-body-bytes={limit} must be > 0")
    if args.workers < 1:
        raise ValueError(f"--workers={args.workers} must be >= 1")
    if args.workers == 1:
        app = create_app(args.law_dir, max_body_bytes=limit, allow_fit_save=not args.no_save)
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log)
        return 0
    # Several processes need an import string; the settings travel in the environment.
    import os
    from pathlib import Path

    if not Path(args.law_dir).is_dir():
        raise FileNotFoundError(f"{args.law_dir}: law directory does not exist")
    os.environ["PYGZLAW_SERVE_LAW_DIR"] = str(Path(args.law_dir).resolve())
    os.environ["PYGZLAW_SERVE_MAX_BODY"] = str(limit)
    os.environ["PYGZLAW_SERVE_SAVE"] = "0" if args.no_save else "1"
    # One BLAS/OpenMP thread per worker unless told otherwise: K workers with a thread per core
    # each would oversubscribe the cores during POST /fit. Workers are spawned, so they read this.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    uvicorn.run("pygzlaw.serve.app:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level, access_log=args.access_log)
    return 0
