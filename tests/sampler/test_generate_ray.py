"""generate --engine ray: one Ray task per shard, byte-identical to the local run, resumable.

One local Ray for the module (2 CPUs, no dashboard, loopback); every wait is bounded.
"""
from __future__ import annotations

import json
import os

import pytest

from pygzlaw.grammar import random_pcfg
from pygzlaw.sampler.dataset import MANIFEST, write_dataset
from pygzlaw.sampler.ray_engine import generate_ray

TIMEOUT_S = 90
# Fields that measure this run (speed, threads), not the dataset.
RUN_FIELDS = ("tokens_per_s", "tokens_per_s_end_to_end", "threads", "n_shards_resumed")


def _files(d):
    return {os.path.relpath(os.path.join(r, f), d): open(os.path.join(r, f), "rb").read()
            for r, _, fs in os.walk(d) for f in fs if f != MANIFEST}


def _manifest(d):
    m = json.loads((d / MANIFEST).read_text())
    m["stats"] = {k: v for k, v in m["stats"].items() if k not in RUN_FIELDS}
    return m


@pytest.mark.parametrize("fmt", ["npy", "bin"])
def test_generate_on_ray_is_byte_identical_and_resumes(local_ray, tmp_path, fmt):
    g = random_pcfg("main-2", 0)
    kw = dict(n_tokens=64 * 250, doc_tokens=64, seed=3, shard_docs=40, fmt=fmt,
              origin={"preset": "main-2", "grammar_seed": 0})
    local = write_dataset(g, str(tmp_path / "local"), threads=2, **kw)
    remote = generate_ray(g, str(tmp_path / "ray"), task_threads=1, timeout_s=TIMEOUT_S, **kw)
    assert remote["stats"]["n_shards"] == local["stats"]["n_shards"] == 7
    files = _files(tmp_path / "local")
    assert len(files) >= 7 and _files(tmp_path / "ray") == files
    assert _manifest(tmp_path / "ray") == _manifest(tmp_path / "local")
    # one shard lost: the rerun regenerates only it, with the same bytes
    victim = remote["manifest"]["shards"][3]["file"]
    os.unlink(tmp_path / "ray" / victim)
    again = generate_ray(g, str(tmp_path / "ray"), task_threads=1, timeout_s=TIMEOUT_S, **kw)
    assert again["n_resumed"] == 6
    assert _files(tmp_path / "ray") == files


def test_generate_cli_engine_ray(local_ray, tmp_path, capsys):
    from pygzlaw.cli import main

    args = ["generate", "--preset", "main-1", "--tokens", "4000", "--doc-tokens", "32",
            "--seed", "1", "--shard-docs", "40", "--quiet", "--json"]
    assert main(args + ["--out", str(tmp_path / "l")]) == 0
    assert main(args + ["--out", str(tmp_path / "r"), "--engine", "ray", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert _files(tmp_path / "r") == _files(tmp_path / "l")
    assert json.loads(out[out.rindex('{\n  "out"'):])["n_shards"] == 4
    # and its shards scan on Ray as locally (PCFG units: one window per document)
    from pygzlaw.scan import scan
    from pygzlaw.scan.ray_engine import scan_ray

    local = scan([str(tmp_path / "l")], progress=False)
    remote = scan_ray([str(tmp_path / "r")], out_dir=str(tmp_path / "scan"), shard_bytes=1,
                      progress=False, timeout_s=TIMEOUT_S)
    assert remote["engine"]["n_shards"] == 4
    assert remote["overall"]["n_windows"] == local["overall"]["n_windows"] == 125
    assert remote["overall"]["stats"]["quantiles"] == local["overall"]["stats"]["quantiles"]


def test_engine_ray_without_ray_names_the_extra(monkeypatch, tmp_path, capsys):
    import sys

    from pygzlaw.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["generate", "--preset", "main-1", "--tokens", "1000", "--doc-tokens", "32",
                 "--out", str(tmp_path / "x"), "--engine", "ray", "--quiet"]) == 2
    assert "pip install 'pygzlaw[ray]'" in capsys.readouterr().err
    with pytest.raises(ImportError, match=r"pygzlaw\[ray\]"):
        generate_ray(random_pcfg("main-1", 0), str(tmp_path / "y"), n_tokens=100)
