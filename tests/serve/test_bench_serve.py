"""bench/bench_serve.py end to end at a tiny size: its own load generator against a real server."""
import importlib
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _bench(monkeypatch):
    # importable by name: the load generator's spawned processes import it again
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    return importlib.import_module("bench_serve")


def test_bench_serve_tiny(tmp_path, monkeypatch):
    mod = _bench(monkeypatch)
    out = tmp_path / "serve.json"
    rc = mod.main(["--quick", "--requests", "300", "--clients", "10", "--client-procs", "1", "--workers", "1",
                   "--paced-rps", "600", "--no-wrk", "--json", str(out)])
    doc = json.loads(out.read_text())
    assert rc == 0 and doc["unexpected_status"] == 0 and doc["bad_json"] == 0
    assert doc["requests"] == 300 and doc["summary"]["errors_5xx"] == 0
    assert doc["summary"]["p99_ms"] > 0 and doc["summary"]["requests_per_s"] > 0
    assert {r["name"] for r in doc["rows"]} >= {"closed-loop predict", "closed-loop allocate",
                                                 "closed-loop allocate_by_h", "closed-loop malformed"}


def test_request_bodies_vary_and_are_valid(monkeypatch):
    mod = _bench(monkeypatch)
    bodies = mod.request_bodies(50)
    for kind in ("predict", "allocate", "allocate_by_h"):
        assert len({json.dumps(b) for _, b in bodies[kind]}) == 50      # no two alike
    from pygzlaw.serve.fast import parse_allocate, parse_predict
    for _, b in bodies["predict"]:
        parse_predict(b)
    for _, b in bodies["allocate"]:
        parse_allocate(b)
    for _, b in bodies["allocate_by_h"]:
        parse_allocate(b, by_h=True)
