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


def test_unknown_benchmark_and_every_benchmark_in_the_package():
    with pytest.raises(ValueError, match="unknown; choose one of sampler, scorer, fit, serve, "
                                         "trainer, kernels"):
        run("nope")
    assert set(available()) == {"sampler", "scorer", "fit", "serve", "trainer", "kernels"}
    for name, module in BENCHES.items():   # no file of a clone's bench/ is needed
        assert module == f"pygzlaw.bench.{name}"
        assert os.path.isfile(os.path.join(REPO, "pygzlaw", "bench", f"{name}.py"))


def test_bench_help_imports_no_torch_and_trainer_help_runs_from_any_directory(tmp_path):
    code = ("import sys\nfrom pygzlaw.cli import main\ntry:\n    main(['bench', '--help'])\n"
            "except SystemExit:\n    pass\nprint('TORCH', 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)
    assert r.returncode == 0 and "trainer, kernels" in r.stdout and "TORCH False" in r.stdout
    for name, flag in (("trainer", "--threads"), ("kernels", "--op")):
        r = subprocess.run([sys.executable, "-m", "pygzlaw", "bench", name, "--quick", "--help"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert r.returncode == 0 and flag in r.stdout, r.stderr


def test_missing_torch_names_the_install(monkeypatch):
    import builtins

    import pygzlaw.bench as b

    real_import = builtins.__import__

    def no_torch(name, *a, **k):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *a, **k)

    monkeypatch.delitem(sys.modules, "pygzlaw.bench.kernels", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(ValueError, match=r"'kernels' needs torch.*pip install 'pygzlaw\[cpu\]'"):
        b.run("kernels", ["--help"])


def test_trainer_bench_loops_agree_from_the_package():
    """The bench's two loops (plain eager, pygzlaw's trainer) on 2 tiny steps: same losses."""
    from pygzlaw.bench.trainer import TrainConfig, plain_loop, trainer_run

    cfg = TrainConfig(model="w32", grammar="vocab300-3", n_tokens=2 * 2 * 32, batch_docs=2,
                      seq_len=32, lr=1e-3, val_docs=2, device="cpu", threads=1, progress=False,
                      h_docs=0, kernels="torch")
    base_tps, base_losses, base_steps = plain_loop(cfg)
    ours_tps, wait, ours_losses, ours_steps, compiled = trainer_run(cfg)
    assert len(base_losses) == len(ours_losses) == 2 and base_tps > 0 and ours_tps > 0
    assert len(base_steps) == len(ours_steps) == 2 and min(base_steps + ours_steps) > 0
    assert compiled is False                      # 2 tiny steps: auto stays eager
    assert max(abs(x - y) for x, y in zip(base_losses, ours_losses)) < 1e-5
    assert 0 <= wait <= 1


def test_steady_state_skips_the_first_steps():
    from pygzlaw.bench.trainer import steady_tokens_per_s

    assert steady_tokens_per_s([30.0, 1.0, 0.5, 0.5], 100, 2) == pytest.approx(200.0)


def test_kernels_memory_probe_runs_from_the_package():
    """The CPU memory probe starts ``python -m pygzlaw.bench.kernels`` (no clone script) and
    reads back its peak: the unfused cross-entropy holds at least the (M, V) fp32 logits."""
    from pygzlaw.bench.kernels import _cpu_peak_mib

    unfused = _cpu_peak_mib("unfused", 512, 16, 32001)
    assert unfused >= 512 * 32001 * 4 / 2**20
