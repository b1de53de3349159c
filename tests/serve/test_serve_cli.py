"""``pygzlaw serve`` as a process: one and several workers answer over loopback."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from pygzlaw.laws.forms import ChinchillaParams
from pygzlaw.laws.io import save_law
from pygzlaw.laws.law import ChinchillaLaw

REPO = Path(__file__).resolve().parents[2]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_workers(tmp_path, workers):
    p = ChinchillaParams(E=1.8, A=480.0, B=2000.0, alpha=0.35, beta=0.37)
    boot = np.array(list(p.to_dict().values())) * np.exp(np.random.default_rng(0).normal(0, 0.01, (50, 5)))
    save_law(ChinchillaLaw(params=p, bootstrap=boot), tmp_path / "chin.json")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "pygzlaw", "serve", str(tmp_path), "--port", str(port),
                             "--workers", str(workers), "--log-level", "error"], env=env, cwd=str(REPO),
                            stderr=subprocess.PIPE, text=True)
    kids = []
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=10) as c:   # several connections: both workers get some
            for _ in range(8):
                r = c.post("/laws/chin/predict", json={"n_params": [1e9, 1e10], "n_tokens": 2e10})
                assert r.status_code == 200 and r.json()["lo"][0] <= r.json()["loss"][0] <= r.json()["hi"][0]
            r = c.post("/laws/chin/predict", json={"n_params": -1, "n_tokens": 2e10})
            assert r.status_code == 422 and "n_params" in r.json()["message"]
            # Without --allow-save an HTTP request writes nothing into the law directory.
            pts = [{"N": n, "D": d, "loss": 1.8 + 480 / n ** 0.35 + 2000 / d ** 0.37}
                   for n in (1e7, 1e8, 1e9) for d in (1e9, 1e10, 1e11)]
            r = c.post("/fit", json={"points": pts, "grid": "muennighoff", "name": "posted"})
            assert r.status_code == 403 and "--allow-save" in r.json()["message"]
            assert not (tmp_path / "posted.json").exists()
        if workers > 1 and sys.platform.startswith("linux"):
            kids = [int(x) for x in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
            assert len(kids) >= workers
    finally:
        proc.terminate()
        try:
            err = proc.communicate(timeout=15)[1]
        except subprocess.TimeoutExpired:
            proc.kill()
            err = proc.communicate()[1]
    assert f"listening on http://127.0.0.1:{port} ({workers} worker(s))" in err, err
    assert f"API docs http://127.0.0.1:{port}/docs" in err and "saves nothing" in err
    deadline = time.monotonic() + 15       # the workers leave with the supervisor
    while any(Path(f"/proc/{k}").exists() for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{k}").exists() and "zombie" not in Path(f"/proc/{k}/status").read_text()
                   for k in kids)


def test_serve_rejects_bad_workers(tmp_path):
    from pygzlaw.cli import build_parser

    args = build_parser().parse_args(["serve", str(tmp_path), "--workers", "0"])
    with pytest.raises(ValueError, match="--workers=0"):
        args.func(args)
    args = build_parser().parse_args(["serve", str(tmp_path)])
    assert args.access_log is False and args.proxy_headers is False


def test_announce_points_to_flagged_laws_when_none_passed(tmp_path, capsys):
    import argparse as _argparse

    from pygzlaw.serve import cli as serve_cli
    (tmp_path / "laws").mkdir()
    (tmp_path / "laws-flagged").mkdir()
    args = _argparse.Namespace(host="127.0.0.1", port=8123, workers=1, law_dir=str(tmp_path / "laws"))
    serve_cli._announce(args, False, 0)
    err = capsys.readouterr().err
    assert "0 law file(s)" in err and "no law passed" in err and "laws-flagged" in err
    serve_cli._announce(args, False, 2)
    assert "no law passed" not in capsys.readouterr().err
