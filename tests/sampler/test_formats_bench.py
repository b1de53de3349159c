"""pygzlaw bench: the benchmarks run from the package, and bench/ scripts are thin callers
of the same functions (issue 11, item 4)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pygzlaw.bench import BENCHES, available, run
from pygzlaw.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bench_sampler_from_the_cli_writes_ratios_and_json(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["bench", "sampler", "--quick", "--json", str(out), "--", "--presets", "main-1",
                 "--shard-docs", "512"]) == 0
    doc = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert "write --format bin" in printed and '"bin_vs_npy_write"' in printed
    s = doc["summary"]
    assert s["presets"] == ["main-1"] and s["speedup_vs_pcfg_median"] > 1
    assert s["bin_vs_npy_write"] > 0 and set(s["format_write_tokens_per_s"]) >= {"npy", "bin",
                                                                                 "parquet"}
    assert doc["timestamp_utc"] and doc["machine"]["commit"] and len(doc["machine"]["commit"]) == 40
    rows = {r["params"].get("format"): r for r in doc["rows"] if r["bench"] == "generate.write_shard"}
    assert rows["npy"]["ratio"] == 1.0 and rows["bin"]["params"]["n_docs"] == 512


def test_scripts_are_thin_callers_of_the_package():
    for name in BENCHES:
        text = open(os.path.join(REPO, "bench", f"bench_{name}.py")).read()
        assert f"from pygzlaw.bench.{name} import main" in text and len(text.splitlines()) < 20
    r = subprocess.run([sys.executable, os.path.join(REPO, "bench", "bench_fit.py"), "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--quick" in r.stdout


def test_unknown_and_clone_only_benchmarks(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="unknown; choose one of sampler, scorer"):
        run("nope")
    assert set(available()) >= {"sampler", "scorer", "fit", "serve", "trainer", "kernels"}
    import pygzlaw.bench as b

    monkeypatch.setattr(b, "_ROOT", str(tmp_path))  # as if installed without a clone
    assert "trainer" not in available()
    with pytest.raises(ValueError, match="clone's bench/bench_trainer.py"):
        run("trainer", ["--quick"])
