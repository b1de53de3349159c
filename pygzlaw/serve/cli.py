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
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    import uvicorn

    from pygzlaw.serve.app import MAX_BODY_BYTES, create_app

    if not 0 < args.port < 65536:
        raise ValueError(f"--port={args.port} must be in 1..65535")
    limit = MAX_BODY_BYTES if args.max_body_bytes is None else args.max_body_bytes
    if limit <= 0:
        raise ValueError(f"--max-body-bytes={limit} must be > 0")
    app = create_app(args.law_dir, max_body_bytes=limit, allow_fit_save=not args.no_save)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
