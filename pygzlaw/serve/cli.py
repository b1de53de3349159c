"""``pygzlaw serve``: the law service (FastAPI + uvicorn), on 127.0.0.1 unless told otherwise."""
from __future__ import annotations

import argparse
import signal
import socket
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="HTTP service over a directory of fitted laws",
                              description="Serve fitted laws over HTTP: list, predict with intervals, allocate, "
                                          "fit. OpenAPI docs at /docs.")
    p.add_argument("law_dir", help="directory of law JSON files (written by `pygzlaw fit -o`)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-body-bytes", type=int, default=None, help="request size limit (default 1 MiB)")
    p.add_argument("--allow-save", action="store_true",
                   help="let POST /fit with a name write a law file into LAW_DIR (off by default)")
    p.add_argument("--no-save", action="store_true", help=argparse.SUPPRESS)  # the default now
    p.add_argument("--workers", type=int, default=1, help="server processes, each loading the laws (Linux: one SO_REUSEPORT socket each)")
    p.add_argument("--log-level", default="warning")
    p.add_argument("--access-log", action="store_true",
                   help="log every request (off by default: a log line costs more than a predict's routing)")
    p.add_argument("--proxy-headers", action="store_true",
                   help="trust X-Forwarded-For/-Proto from 127.0.0.1 (behind a reverse proxy; off by default: "
                        "the service reads neither, and parsing them cost ~3%% of a request's CPU)")
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
    save = args.allow_save and not args.no_save
    if args.workers == 1:
        app = create_app(args.law_dir, max_body_bytes=limit, allow_fit_save=save)
        _announce(args, save, len(app.state.store.all()[0]))
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log,
                    proxy_headers=args.proxy_headers, http=_http_protocol())
        return 0
    # Several processes need an import string; the settings travel in the environment.
    import os
    from pathlib import Path

    if not Path(args.law_dir).is_dir():
        raise FileNotFoundError(f"{args.law_dir}: law directory does not exist")
    os.environ["PYGZLAW_SERVE_LAW_DIR"] = str(Path(args.law_dir).resolve())
    os.environ["PYGZLAW_SERVE_MAX_BODY"] = str(limit)
    os.environ["PYGZLAW_SERVE_SAVE"] = "1" if save else "0"
    _announce(args, save, sum(1 for p in Path(args.law_dir).glob("*.json")))
    # One BLAS/OpenMP thread per worker unless told otherwise: K workers with a thread per core
    # each would oversubscribe the cores during POST /fit. Workers are spawned, so they read this.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux"):
        return _run_reuseport_workers(args)
    uvicorn.run("pygzlaw.serve.app:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level, access_log=args.access_log,
                proxy_headers=args.proxy_headers, http=_http_protocol())
    return 0


def _run_reuseport_workers(args) -> int:
    """``args.workers`` processes, each with its own listening socket on the port (SO_REUSEPORT).

    The kernel assigns each new connection to one of the sockets when it arrives. With uvicorn's
    one shared socket the first worker to wake accepts a whole burst: 50 connections opened
    together split 15 / 35 between two workers here, and the busier worker set the p99 (9.6 ms
    median latency on its connections, 5.2 ms on the other's). Settings reach the spawned
    workers through the environment (app_from_env).
    """
    import multiprocessing
    import multiprocessing.connection

    # Refuse a taken port here, with a plain bind: SO_REUSEPORT binds would silently share a port
    # with another reuseport server of this user.
    with socket.socket(_family(args.host), socket.SOCK_STREAM) as probe:
        probe.bind((args.host, args.port))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_reuseport_worker, name=f"pygzlaw-serve-{i}",
                         args=(args.host, args.port, args.log_level, args.access_log, args.proxy_headers))
             for i in range(args.workers)]
    for p in procs:
        p.start()
    code = 0

    def stop(signum, frame):       # SIGTERM to this process: stop the workers too (finally below)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        multiprocessing.connection.wait([p.sentinel for p in procs])   # until one exits (error or signal)
        code = next(p.exitcode for p in procs if p.exitcode is not None) or 0
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()          # SIGTERM: uvicorn shuts down gracefully
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    return code


def _announce(args, save: bool, n_laws: int) -> None:
    """One line on stderr: where the service listens and where its docs are."""
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}"
    print(f"pygzlaw serve: {n_laws} law file(s) from {args.law_dir}; listening on {url} "
          f"({args.workers} worker(s)); API docs {url}/docs; POST /fit "
          f"{'may save laws (--allow-save)' if save else 'saves nothing (--allow-save to allow)'}",
          file=sys.stderr, flush=True)
    flagged = Path(args.law_dir).parent / "laws-flagged"
    if n_laws == 0 and flagged.is_dir():
        # a study folder whose fits all failed its identifiability checks
        print(f"pygzlaw serve: no law passed the study's identifiability checks; the flagged "
              f"fits are in {flagged} (see the study's report.md before serving them)",
              file=sys.stderr, flush=True)


def _http_protocol():
    """uvicorn's httptools protocol writing each response in one send() (serve.protocol), else uvicorn's choice."""
    try:
        from pygzlaw.serve.protocol import CoalescingHttpToolsProtocol
    except ImportError:            # httptools missing: uvicorn falls back to h11
        return "auto"
    return CoalescingHttpToolsProtocol


def _family(host: str):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _reuseport_worker(host: str, port: int, log_level: str, access_log: bool, proxy_headers: bool) -> None:
    """One worker process: its own SO_REUSEPORT socket, the app from the environment, uvicorn."""
    import ctypes

    import uvicorn

    from pygzlaw.serve.app import app_from_env

    # Linux: SIGTERM this worker when the supervising process dies, even by SIGKILL
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # 1 = PR_SET_PDEATHSIG
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    config = uvicorn.Config(app_from_env(), host=host, port=port, log_level=log_level, access_log=access_log,
                            proxy_headers=proxy_headers, http=_http_protocol())
    uvicorn.Server(config).run(sockets=[sock])
