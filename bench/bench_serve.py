"""Bench: the law service under 50 concurrent clients on loopback, bounded request count.

Starts ``pygzlaw serve`` in a subprocess on a free 127.0.0.1 port over a temporary directory
with a fitted Chinchilla law (1000 bootstrap replicates, so predict/allocate compute intervals)
and a data-dependent law. The load generator is asyncio with one keep-alive HTTP/1.1
connection per client (closed loop: each client sends its next request when the previous
answer arrives), so latency includes queueing at the server. Requests alternate predict
(with 95% intervals), allocate (with intervals) and allocate-by-H; a few malformed requests
are mixed in to check they get 422, never 5xx.

A second, paced run (each client sends on a fixed schedule, --paced-rps in total) reports the
latency at a load below saturation; it is a row, not the summary.

Usage: python bench/bench_serve.py [--quick] [--json PATH] [--clients 50] [--requests N] [--workers 1]
Summary (closed loop): p99_ms, requests_per_s, errors_5xx (over both runs).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import numpy as np  # noqa: E402
from _harness import write_json  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_laws(law_dir: Path) -> None:
    from pygzlaw.laws.data_dependent import DataDependentLaw, regress_params
    from pygzlaw.laws.forms import ChinchillaParams, chinchilla_loss
    from pygzlaw.laws.io import save_law
    from pygzlaw.laws.law import ChinchillaLaw

    rng = np.random.default_rng(0)
    n = np.repeat(np.logspace(7, 10, 8), 8)
    d = np.tile(np.logspace(8, 12, 8), 8)
    p = ChinchillaParams(E=1.8, A=480.0, B=2000.0, alpha=0.35, beta=0.37)
    loss = chinchilla_loss(n, d, p) * np.exp(rng.normal(0, 0.003, n.size))
    save_law(ChinchillaLaw.fit(n, d, loss, grid="muennighoff", n_boot=1000, seed=0), law_dir / "chin.json")
    hs = [0.2, 0.35, 0.5]
    ps = [ChinchillaParams(E=0.5 + 2 * h, A=300 - 200 * h, B=500 - 300 * h, alpha=0.45 - 0.3 * h,
                           beta=0.25 + 0.1 * h) for h in hs]
    save_law(DataDependentLaw(regressions=regress_params(hs, ps), h_range=(0.2, 0.5)), law_dir / "dd.json")


REQUESTS = [
    ("POST", "/laws/chin/predict", {"n_params": [1e8, 1e9, 1e10], "n_tokens": [2e9, 2e10, 2e11]}),
    ("POST", "/laws/chin/allocate", {"budget_flops": 1e21}),
    ("POST", "/allocate", {"budget_flops": [1e19, 1e21, 1e23], "h": 0.35}),
]
MALFORMED = ("POST", "/laws/chin/predict", {"n_params": -1, "n_tokens": 1e10})


def _encode(method, path, body, port):
    data = json.dumps(body).encode()
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n").encode()
    return head + data


async def _read_response(reader):
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode().partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    body = await reader.readexactly(length)
    return status, body


async def _client(cid, port, n_requests, latencies, statuses, malformed_every, interval_s=0.0):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    next_t = time.perf_counter() + (cid / 50.0) * interval_s   # spread paced clients over one interval
    try:
        for i in range(n_requests):
            if interval_s:
                delay = next_t - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_t += interval_s
            if malformed_every and (cid * n_requests + i) % malformed_every == 0:
                kind, req = "malformed", MALFORMED
            else:
                j = (cid + i) % len(REQUESTS)
                kind, req = REQUESTS[j][1].split("/")[-1] if j < 2 else "allocate_by_h", REQUESTS[j]
            payload = _encode(req[0], req[1], req[2], port)
            t0 = time.perf_counter()
            writer.write(payload)
            await writer.drain()
            status, _ = await _read_response(reader)
            latencies.setdefault(kind, []).append(time.perf_counter() - t0)
            statuses.append((kind, status))
    finally:
        writer.close()


async def _run_load(port, clients, total, malformed_every, interval_s=0.0):
    latencies, statuses = {}, []
    per = total // clients
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(c, port, per, latencies, statuses, malformed_every, interval_s)
                           for c in range(clients)))
    return latencies, statuses, time.perf_counter() - t0


def _pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1e3, q))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3000 requests instead of 20000")
    ap.add_argument("--json", help="write the JSON document here")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=None, help="total requests (bounded load)")
    ap.add_argument("--workers", type=int, default=1, help="server processes")
    ap.add_argument("--paced-rps", type=float, default=250.0,
                    help="offered load of the second, paced run (requests/s over all clients)")
    args = ap.parse_args(argv)
    total = args.requests or (3000 if args.quick else 20000)

    with tempfile.TemporaryDirectory(prefix="pygzlaw-bench-serve-") as tmp:
        law_dir = Path(tmp)
        make_laws(law_dir)
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "pygzlaw", "serve", str(law_dir), "--host", "127.0.0.1",
                                 "--port", str(port), "--log-level", "error", "--workers", str(args.workers)],
                                env=env, cwd=str(REPO))
        try:
            import httpx

            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("server did not start")
                time.sleep(0.1)
            # warm-up: load laws, first numpy paths
            asyncio.run(_run_load(port, 5, 100, 0))
            latencies, statuses, wall = asyncio.run(_run_load(port, args.clients, total, 97))
            paced_total = min(total, int(args.paced_rps * (10 if args.quick else 30)))
            p_lat, p_stat, p_wall = asyncio.run(_run_load(port, args.clients, paced_total, 97,
                                                          interval_s=args.clients / args.paced_rps))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    ok_kinds = [k for k in latencies if k != "malformed"]
    all_ok = [x for k in ok_kinds for x in latencies[k]]
    wrong = sum(1 for k, s in statuses if (k == "malformed") != (s == 422) or (k != "malformed" and s != 200))
    rows = [{"name": f"closed-loop {k}", "count": len(v), "p50_ms": _pct(v, 50), "p90_ms": _pct(v, 90),
             "p99_ms": _pct(v, 99)} for k, v in sorted(latencies.items())]
    p_ok = [x for k in p_lat if k != "malformed" for x in p_lat[k]]
    rows.append({"name": f"paced {args.paced_rps:g} req/s offered", "count": len(p_stat),
                 "achieved_rps": len(p_stat) / p_wall, "p50_ms": _pct(p_ok, 50), "p90_ms": _pct(p_ok, 90),
                 "p99_ms": _pct(p_ok, 99), "errors_5xx": sum(1 for _, s in p_stat if s >= 500)})
    errors_5xx_total = sum(1 for _, s in statuses + p_stat if s >= 500)
    summary = {"p99_ms": round(_pct(all_ok, 99), 2), "requests_per_s": round(len(statuses) / wall, 1),
               "errors_5xx": errors_5xx_total,
               # below saturation: the same 50 clients, paced (latency without queueing)
               "p99_ms_paced": round(_pct(p_ok, 99), 2), "paced_requests_per_s": args.paced_rps}
    write_json(args.json, {"bench": "serve", "clients": args.clients, "workers": args.workers,
                           "requests": len(statuses),
                           "unexpected_status": wrong, "p50_ms": round(_pct(all_ok, 50), 2),
                           "summary": summary, "rows": rows})
    return 0 if errors_5xx_total == 0 and wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
