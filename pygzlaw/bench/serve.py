"""Bench: the law service under 50 concurrent clients on loopback, bounded request count.

Starts ``pygzlaw serve --workers 2`` in a subprocess on a free 127.0.0.1 port over a temporary
directory with a fitted Chinchilla law (1000 bootstrap replicates, so predict/allocate compute
intervals) and a data-dependent law. The load generator is this script's own: 2 processes
(uvloop) sharing 50 keep-alive HTTP/1.1 connections, each a closed loop (send the next request
when the whole answer has arrived: status line, Content-Length, body; every 16th body is decoded
as JSON), so latency includes queueing at the server. Requests rotate predict (3 points, 95%
intervals), allocate (one budget, intervals) and allocate-by-H (3 budgets), with values drawn
from a fixed seed (500 bodies per kind) so no answer cache could help; every 97th is malformed
and must get 422. Load generator and server share the machine's cores (2 here): the JSON records
the CPU each side spent per request, and how much other processes used meanwhile.

A second, paced run (each client sends on a fixed schedule, --paced-rps in total) reports the
latency below saturation; it is a row, not the summary. If ``wrk`` is on PATH an optional row
runs it too (predict only; the summary never comes from it).

Usage: pygzlaw bench serve [--quick] [--json PATH] [--clients 50] [--client-procs 2]
       [--requests N] [--workers 2] [--no-wrk]
Summary (closed loop): p99_ms, requests_per_s, errors_5xx (over both runs).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the directory holding pygzlaw/ (a clone, or site-packages)

import numpy as np  # noqa: E402
from pygzlaw._subproc import module_argv  # noqa: E402
from pygzlaw.bench._harness import write_json  # noqa: E402


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


KINDS = ("predict", "allocate", "allocate_by_h", "malformed")
MALFORMED = ("/laws/chin/predict", {"n_params": -1, "n_tokens": 1e10})


def request_bodies(n_per_kind: int, seed: int = 0) -> dict:
    """Fixed-seed request bodies per kind: the shapes of the earlier fixed requests (3 points, one
    budget, 3 budgets at one H) with values drawn afresh, so no cache of answers could help."""
    rng = np.random.default_rng(seed)
    out = {"predict": [], "allocate": [], "allocate_by_h": [], "malformed": [MALFORMED]}
    for _ in range(n_per_kind):
        n = 10 ** rng.uniform(7, 11, 3)
        out["predict"].append(("/laws/chin/predict", {"n_params": n.tolist(),
                                                      "n_tokens": (n * 10 ** rng.uniform(0.5, 2.5, 3)).tolist()}))
        out["allocate"].append(("/laws/chin/allocate", {"budget_flops": float(10 ** rng.uniform(18, 24))}))
        out["allocate_by_h"].append(("/allocate", {"budget_flops": np.sort(10 ** rng.uniform(18, 24, 3)).tolist(),
                                                   "h": round(float(rng.uniform(0.2, 0.5)), 4)}))
    return out


def _encode(path, body, port) -> bytes:
    data = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    return head + data


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request in flight: send, read the whole answer
    (status line, Content-Length, body), record, send the next one. Parsing is only what a client
    must do to find the end of the answer; every 16th body is decoded to check it is JSON."""

    def __init__(self, schedule, interval_s, t_first, done):
        self.schedule = schedule          # [(kind index, encoded request)]
        self.interval_s = interval_s      # 0: closed loop; else send at t_first + i * interval_s
        self.next_t = t_first
        self.done = done
        self.i = 0
        self.buf = b""
        self.need = -1
        self.t_sent = 0.0
        self.records = []                 # (kind index, seconds, status)
        self.bad_json = 0
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport):
        self.tr = transport

    def start(self):
        self._send_when_due()

    def _send_when_due(self):
        if self.i == len(self.schedule):
            self.tr.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        if self.interval_s:
            delay = self.next_t - time.perf_counter()
            self.next_t += self.interval_s
            if delay > 0:
                self.loop.call_later(delay, self._send)
                return
        self._send()

    def _send(self):
        self.t_sent = time.perf_counter()
        self.tr.write(self.schedule[self.i][1])

    def data_received(self, data):
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            k = head.find(b"\r\ncontent-length:")
            if k < 0:
                raise ConnectionError("answer without Content-Length")
            e = head.find(b"\r\n", k + 2)
            self.need = end + 4 + int(head[k + 17:e if e > 0 else len(head)])
        if len(self.buf) < self.need:
            return
        t = time.perf_counter() - self.t_sent
        status = int(self.buf[9:12])
        if self.i % 16 == 0:
            try:
                json.loads(self.buf[self.buf.find(b"\r\n\r\n") + 4:self.need])
            except ValueError:
                self.bad_json += 1
        self.records.append((self.schedule[self.i][0], t, status))
        self.buf, self.need = self.buf[self.need:], -1
        self.i += 1
        self._send_when_due()

    def connection_lost(self, exc):
        if not self.done.done():
            if self.i == len(self.schedule):
                self.done.set_result(None)
            else:
                self.done.set_exception(ConnectionError(f"connection lost after {self.i} answers: {exc}"))


async def _run_conns(port, schedules, interval_s, t_start):
    loop = asyncio.get_running_loop()
    conns = []
    for c, sched in enumerate(schedules):
        done = loop.create_future()
        # paced clients are spread over one interval so their sends do not coincide
        _, proto = await loop.create_connection(
            lambda: _Conn(sched, interval_s, t_start + (c / len(schedules)) * interval_s, done), "127.0.0.1", port)
        conns.append(proto)
    while time.perf_counter() < t_start:   # all processes connected: start together
        await asyncio.sleep(min(0.01, max(0.0, t_start - time.perf_counter())))
    for proto in conns:
        proto.next_t = max(proto.next_t, time.perf_counter())
        proto.start()
    await asyncio.gather(*(p.done for p in conns))
    return conns


def _proc_cpu_s(pid: int):
    """CPU seconds (user + system) of process pid and its descendants (uvicorn workers); None off Linux."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        kids = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except (OSError, ValueError, IndexError):
        return None
    for k in kids:
        total += _proc_cpu_s(k) or 0.0
    return total


def _machine_busy_s():
    """Busy CPU seconds of the whole machine so far (all cores, from /proc/stat); None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")   # all but idle and iowait


def _load_process(args):
    """One load-generator process: its share of the connections, on uvloop when available."""
    port, schedules, interval_s, t_start = args
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    cpu0 = time.process_time()
    conns = asyncio.run(_run_conns(port, schedules, interval_s, t_start))
    cpu = time.process_time() - cpu0
    recs = [r for p in conns for r in p.records]
    return (np.array([r[0] for r in recs], np.int8), np.array([r[1] for r in recs]),
            np.array([r[2] for r in recs], np.int16), sum(p.bad_json for p in conns), time.perf_counter(), cpu)


def run_load(pool, port, bodies, clients, total, *, malformed_every=97, interval_s=0.0, seed=0, server_pid=None):
    """``clients`` keep-alive connections over the pool's processes, ``total // clients`` requests each.

    Requests rotate predict / allocate / allocate-by-H with drawn bodies; every malformed_every-th
    is malformed (must get 422). Returns (kind index, latency s, status) arrays, bad JSON count,
    wall s, and CPU seconds {"client", "server"} spent (server: None off Linux).
    """
    rng = np.random.default_rng(seed)
    enc = {k: [_encode(p, b, port) for p, b in v] for k, v in bodies.items()}
    per = total // clients
    schedules = []
    for c in range(clients):
        sched = []
        for i in range(per):
            if malformed_every and (c * per + i) % malformed_every == 0:
                j = 3
            else:
                j = (c + i) % 3
            reqs = enc[KINDS[j]]
            sched.append((j, reqs[int(rng.integers(len(reqs)))]))
        schedules.append(sched)
    n_proc = pool._processes
    t_start = time.perf_counter() + 0.5 + 0.02 * clients    # time for every process to connect
    srv0, busy0 = (_proc_cpu_s(server_pid) if server_pid else None), _machine_busy_s()
    parts = pool.map(_load_process, [(port, schedules[p::n_proc], interval_s, t_start) for p in range(n_proc)])
    srv1, busy1 = (_proc_cpu_s(server_pid) if server_pid else None), _machine_busy_s()
    kind = np.concatenate([p[0] for p in parts])
    lat = np.concatenate([p[1] for p in parts])
    status = np.concatenate([p[2] for p in parts])
    wall = max(p[4] for p in parts) - t_start
    cpu = {"client": sum(p[5] for p in parts), "server": None if srv0 is None or srv1 is None else srv1 - srv0,
           "machine": None if busy0 is None or busy1 is None else busy1 - busy0}
    return kind, lat, status, sum(p[3] for p in parts), wall, cpu


def _wrk_row(port, quick):
    """Optional: the C load generator wrk (if on PATH), predict only, 50 connections, one thread."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    body = json.dumps({"n_params": [1e8, 1e9, 1e10], "n_tokens": [2e9, 2e10, 2e11]})
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f'wrk.method = "POST"\nwrk.body = \'{body}\'\nwrk.headers["Content-Type"] = "application/json"\n')
    try:
        out = subprocess.run([wrk, "-t1", "-c50", f"-d{3 if quick else 8}s", "--latency", "-s", f.name,
                              f"http://127.0.0.1:{port}/laws/chin/predict"], capture_output=True, text=True,
                             timeout=60).stdout
    finally:
        os.unlink(f.name)
    row = {"name": "wrk -t1 -c50 predict (optional, not the summary)"}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            row["requests_per_s"] = float(parts[1])
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            v = parts[1]
            ms = float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1e3 if v.endswith("us") else float(v[:-1]) * 1e3
            row[f"p{parts[0][:-1]}_ms"] = ms
    return row


def _pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1e3, q))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="6000 requests instead of 40000")
    ap.add_argument("--json", help="write the JSON document here")
    ap.add_argument("--clients", type=int, default=50, help="concurrent keep-alive connections")
    ap.add_argument("--client-procs", type=int, default=2, help="load-generator processes sharing the clients")
    ap.add_argument("--requests", type=int, default=None, help="total requests of the closed loop (bounded load)")
    ap.add_argument("--workers", type=int, default=2, help="server processes (pygzlaw serve --workers)")
    ap.add_argument("--paced-rps", type=float, default=250.0,
                    help="offered load of the second, paced run (requests/s over all clients)")
    ap.add_argument("--no-wrk", action="store_true", help="skip the optional wrk row even if wrk is on PATH")
    ap.add_argument("--server-root", default=str(ROOT),
                    help="run the server from this checkout (before/after comparisons with the same load)")
    args = ap.parse_args(argv)
    total = args.requests or (6000 if args.quick else 40000)
    bodies = request_bodies(500)

    with tempfile.TemporaryDirectory(prefix="pygzlaw-bench-serve-") as tmp:
        law_dir = Path(tmp)
        make_laws(law_dir)
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": args.server_root + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(module_argv("pygzlaw", "serve", str(law_dir), "--host", "127.0.0.1",
                                             "--port", str(port), "--log-level", "error",
                                             "--workers", str(args.workers)),
                                env=env, cwd=args.server_root)
        pool = multiprocessing.get_context("spawn").Pool(args.client_procs)
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
            # warm-up: first numpy paths, every worker's laws and connections
            run_load(pool, port, bodies, args.clients, 20 * args.clients, seed=99)
            kind, lat, status, bad_json, wall, cpu = run_load(pool, port, bodies, args.clients, total, seed=1,
                                                              server_pid=proc.pid)
            paced_total = min(total, int(args.paced_rps * (10 if args.quick else 30)))
            p_kind, p_lat, p_status, p_bad, p_wall, _ = run_load(
                pool, port, bodies, args.clients, paced_total, interval_s=args.clients / args.paced_rps, seed=2)
            wrk = None if args.no_wrk else _wrk_row(port, args.quick)
        finally:
            pool.terminate()
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def wrong(k, s):
        return int((((k == 3) & (s != 422)) | ((k != 3) & (s != 200))).sum())

    ok = kind != 3
    rows = [{"name": f"closed-loop {KINDS[j]}", "count": int((kind == j).sum()), "p50_ms": _pct(lat[kind == j], 50),
             "p90_ms": _pct(lat[kind == j], 90), "p99_ms": _pct(lat[kind == j], 99)} for j in range(4)]
    p_ok = p_lat[p_kind != 3]
    rows.append({"name": f"paced {args.paced_rps:g} req/s offered", "count": len(p_status),
                 "achieved_rps": len(p_status) / p_wall, "p50_ms": _pct(p_ok, 50), "p90_ms": _pct(p_ok, 90),
                 "p99_ms": _pct(p_ok, 99), "errors_5xx": int((p_status >= 500).sum())})
    if wrk:
        rows.append(wrk)
    errors_5xx_total = int((status >= 500).sum() + (p_status >= 500).sum())
    unexpected = wrong(kind, status) + wrong(p_kind, p_status)
    summary = {"p99_ms": round(_pct(lat[ok], 99), 2), "requests_per_s": round(len(status) / wall, 1),
               "errors_5xx": errors_5xx_total,
               # below saturation: the same 50 clients, paced (latency without queueing)
               "p99_ms_paced": round(_pct(p_ok, 99), 2), "paced_requests_per_s": args.paced_rps}
    write_json(args.json, {"bench": "serve", "clients": args.clients, "client_procs": args.client_procs,
                           "workers": args.workers, "requests": len(status), "unexpected_status": unexpected,
                           "bad_json": bad_json + p_bad, "p50_ms": round(_pct(lat[ok], 50), 2),
                           # CPU per closed-loop request: where the 2 cores go (server: all workers)
                           "client_cpu_us_per_request": round(cpu["client"] / len(status) * 1e6, 1),
                           "server_cpu_us_per_request": None if cpu["server"] is None
                           else round(cpu["server"] / len(status) * 1e6, 1),
                           # cores' worth of CPU other processes used during the closed loop (a
                           # shared machine: a run with much here measured a busier machine)
                           "other_cpu_cores": None if cpu["server"] is None or cpu["machine"] is None
                           else round(max(0.0, cpu["machine"] - cpu["server"] - cpu["client"]) / wall, 2),
                           "summary": summary, "rows": rows})
    return 0 if errors_5xx_total == 0 and unexpected == 0 and bad_json + p_bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
