"""Follow-ups a new user hit: every run setting checked at config load, count strings in the TOML,
the progress counter counting failures, `pygzlaw runs` with no match, and the log-regressed L(N, D, H)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pygzlaw.study.config import load_config, scale_config

# ------------------------------------------------------------------ 1, 2: config load


BAD = [
    ('[grid]\nmodels = ["w8", "w15"]\n', r"grid\.models\[1\]='w15' is not a model size.*multiple of 8.*gpt-4m"),
    ('[grid]\nmodels = ["w8", "gpt-5m"]\n', r"grid\.models\[1\]='gpt-5m' is not a model size.*valid: gpt-4m"),
    ('[grid]\nmodels = ["w0"]\n', r"grid\.models\[0\]='w0'"),
    ('[grid]\ntokens = ["16K", "lots"]\n', r"grid\.tokens\[1\]='lots': .*is not a count"),
    ('[grid]\ntokens = ["16K", "0.5"]\n', r"grid\.tokens\[1\]='0\.5': .*whole number >= 1"),
    ('[grid]\ntokens = [1.5]\n', r"grid\.tokens\[0\]=1\.5 must be an integer or a count string"),
    ('[grid]\ntokens = ["64K", 64000]\n', r"grid\.tokens=.*duplicates"),
    ('[analysis]\nregress = "quadratic"\n', r"analysis\.regress='quadratic' must be \"linear\".*\"log\""),
    ('[[grammars]]\nnonterminals = 3\nterminals = 3000000000\nrhs_max_options = 2\nrhs_max_len = 2\n',
     r"grammars\[0\] spec knobs .*int32"),
    ('[train]\ndevice = "tpu"\n', r"train: .*device='tpu'"),
    ('[train]\nkernels = "cuda"\n', r"train: .*kernels='cuda'"),
    ('[train]\nthreads = 4\n', r"train\.threads is set per worker by the study; use study\.threads_per_worker"),
]


@pytest.mark.parametrize("text,pattern", BAD)
def test_every_run_setting_is_checked_at_load(tmp_path, text, pattern):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ValueError, match=pattern) as info:
        load_config(p)
    assert str(p) in str(info.value)


def test_unreadable_grammar_file_fails_at_load_naming_the_key(tmp_path):
    g = tmp_path / "broken.json"
    g.write_text('{"not": "a grammar"}')
    p = tmp_path / "s.toml"
    p.write_text(f'[[grammars]]\nfile = "{g}"\n')
    with pytest.raises(ValueError, match=r"grammars\[0\]\.file=.*broken\.json.* is not a readable grammar"):
        load_config(p)


def test_count_strings_in_toml_parse_as_the_cli_does(tmp_path):
    from pygzlaw._argtypes import parse_count

    p = tmp_path / "s.toml"
    p.write_text('[grid]\nmodels = ["w8", "w16", "gpt-4m"]\ntokens = ["64K", "1e5", 200000, "1_000_000"]\n')
    cfg = load_config(p)
    assert cfg.tokens == [parse_count("64K"), 100_000, 200_000, 1_000_000]
    assert all(type(t) is int for t in cfg.tokens)
    assert cfg.models == ["w8", "w16", "gpt-4m"] and cfg.analysis.regress == "linear"
    # the API takes them too
    assert scale_config("tiny", tokens=["2M", 4096]).tokens == [2_000_000, 4096]


# ------------------------------------------------------------------ 3: progress counter


class _Store:
    def __init__(self):
        self.status = {}

    def mark_running(self, rid):
        self.status[rid] = "running"

    def mark_done(self, rid, record):
        self.status[rid] = "done"

    def mark_failed(self, rid, error):
        self.status[rid] = "failed"

    def grammar(self, name):  # no vocabulary known: time left counts runs equally
        return None


class _Executor:
    """Results in submission order; runs whose id starts with 'bad' fail."""
    workers = 2

    def __init__(self):
        self.q = []

    def submit(self, rid, config):
        self.q.append(rid)

    def results(self):
        from pygzlaw.study.executor import RunResult

        while self.q:
            rid = self.q.pop(0)
            ok = not rid.startswith("bad")
            yield RunResult(run_id=rid, ok=ok, record={"val_loss": 1.0} if ok else None,
                            error=None if ok else "ValueError: boom", wall_s=0.1)

    def close(self):
        pass


def test_progress_counts_every_finished_run_failed_or_done():
    from pygzlaw.study.run import _execute

    cfg = scale_config("tiny")
    todo = [{"run_id": rid, "config": {}, "grammar": "g", "model": "w8", "D": 10} for rid in ("bad1", "bad2", "ok1")]
    lines, store = [], _Store()
    n = _execute(cfg, store, todo, n_total=4, n_done0=1, run_fn="x:y", executor=_Executor(), say=lines.append)
    assert n == 3
    assert [ln.split("]")[0] + "]" for ln in lines] == ["[2/4]", "[3/4]", "[4/4]"]
    assert "FAILED" in lines[0] and "FAILED" in lines[1] and "val loss" in lines[2]
    assert store.status == {"bad1": "failed", "bad2": "failed", "ok1": "done"}


# ------------------------------------------------------------------ 4: runs with no match


def test_runs_with_no_match_says_so(tmp_path, capsys):
    from pygzlaw.cli import main
    from pygzlaw.study.store import RunStore, run_id_of

    db = tmp_path / "s" / "runs.sqlite"
    cfg = {"model": "w8", "grammar": "g", "n_tokens": 10}
    with RunStore(db) as st:
        st.add_runs([{"run_id": run_id_of(cfg), "config": cfg, "grammar": "g", "grammar_spec": {"preset": "g"},
                      "grammar_seed": 0, "model": "w8", "D": 10}])
    assert main(["runs", "--db", str(db), "--status", "failed"]) == 0
    out = capsys.readouterr()
    assert out.out == "" and f"no runs match --status failed in {db}" in out.err
    assert "0 runs" not in out.err
    assert main(["runs", "--db", str(db), "--status", "pending"]) == 0
    assert "1 runs: 1 pending" in capsys.readouterr().err


# ------------------------------------------------------------------ 5: regress = linear | log

# Three grammars whose A falls steeply and unevenly with H: the linear A(H) goes negative before the
# highest H, the log one stays positive. E, alpha, beta are linear in H.
TRUE = {0.2: dict(E=1.0, A=2000.0, B=400.0, alpha=0.5, beta=0.35),
        0.3: dict(E=1.2, A=30.0, B=500.0, alpha=0.45, beta=0.4),
        0.8: dict(E=2.2, A=25.0, B=900.0, alpha=0.2, beta=0.65)}


def _rows():
    runs, grammars = [], []
    for i, (h, p) in enumerate(TRUE.items()):
        name = f"g{i}"
        grammars.append({"name": name, "H_median": h, "H_std": 0.01, "vocab_size": 100})
        for n in (3e3, 1e4, 3e4, 1e5):
            for d in (1e4, 3e4, 1e5, 3e5):
                loss = p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]
                runs.append({"status": "done", "grammar": name, "N": int(n), "D": int(d), "val_loss": loss})
    return runs, grammars


@pytest.fixture(scope="module")
def analyses():
    from pygzlaw.study.analysis import analyze

    runs, grammars = _rows()
    return {r: analyze(runs, grammars, n_boot=12, seed=0, regress=r) for r in ("linear", "log")}


def test_linear_is_the_default_and_its_undefined_h_range_is_named(analyses):
    from pygzlaw.study.analysis import analyze

    lin = analyses["linear"]
    assert lin.regress == "linear" and lin.dd_law.regress == "linear"
    assert all(r.scale == "linear" for r in lin.regressions.values())
    lo, hi = lin.dd_law.domain()
    assert hi < 0.8 and len(lin.undefined_h) == 1
    assert lin.undefined_h[0] == pytest.approx((hi, 0.8))
    # hi is where the regressed A(H) (or E, B) reaches 0
    assert min(lin.regressions[k](hi + 1e-9) for k in ("E", "A", "B")) <= 1e-6
    assert f"{hi:.4g}" in lin.domain_note and 'regress = "log"' in lin.domain_note
    runs, grammars = _rows()
    default = analyze(runs, grammars, n_boot=0)
    assert default.regress == "linear" and default.undefined_h == lin.undefined_h


def test_log_regression_keeps_the_law_defined_and_its_bootstrap_is_log_scale(analyses):
    from pygzlaw.laws import regress_replicates

    lg = analyses["log"]
    assert lg.regress == "log" and lg.dd_law.regress == "log"
    assert lg.regressions["A"].scale == "log" and lg.regressions["E"].scale == "linear"
    assert lg.undefined_h == [] and lg.domain_note is None
    hs = np.array([0.2, 0.3, 0.8])
    log_a = np.log([g.law.params.A for g in lg.grammars])
    assert lg.regressions["A"].slope == pytest.approx(np.polyfit(hs, log_a, 1)[0], rel=1e-9)
    boots = [g.law.bootstrap for g in lg.grammars]
    n_min = min(len(b) for b in boots)
    want = regress_replicates(hs, np.stack([b[:n_min] for b in boots]), regress="log")
    np.testing.assert_allclose(lg.dd_law.bootstrap, want)
    # the replicates' A intercepts are on the log scale (the linear law's are not)
    assert abs(np.median(lg.dd_law.bootstrap[:, 1, 1]) - lg.regressions["A"].intercept) < 1.0
    assert math.isfinite(float(lg.dd_law.predict(1e4, 1e5, 0.8)))


def test_each_record_carries_its_n_and_d_range(analyses):
    for a in analyses.values():
        for rec in a.dd_law.datasets:
            assert rec["range"] == {"n_params": [3000.0, 100000.0], "n_tokens": [10000.0, 300000.0]}
        assert a.dd_law.fitted_range == {"n_params": [3000.0, 100000.0], "n_tokens": [10000.0, 300000.0]}


@pytest.mark.parametrize("regress", ["linear", "log"])
def test_report_says_which_regression_and_where_undefined(tmp_path, regress):
    import json

    from pygzlaw.study.report import build_report
    from pygzlaw.study.store import RunStore, run_id_of

    runs, grammars = _rows()
    db = tmp_path / "runs.sqlite"
    with RunStore(db) as st:
        for g in grammars:
            st.upsert_grammar(g["name"], {"preset": g["name"], "seed": 0}, 0, vocab_size=100, h_median=g["H_median"],
                              h_std=0.01, h_docs=100, seq_len=256)
        rows = []
        for r in runs:
            cfg = {"model": f"n{r['N']}", "grammar": r["grammar"], "n_tokens": r["D"]}
            rows.append({"run_id": run_id_of(cfg), "config": cfg, "grammar": r["grammar"],
                         "grammar_spec": {"preset": r["grammar"], "seed": 0}, "grammar_seed": 0,
                         "model": cfg["model"], "D": r["D"], "loss": r["val_loss"], "N": r["N"]})
        st.add_runs(rows)
        for r in rows:
            st.mark_running(r["run_id"])
            st.mark_done(r["run_id"], {"n_params": r["N"], "n_params_non_embedding": r["N"] // 2,
                                       "n_tokens": r["D"], "flops": 6.0 * r["N"] * r["D"], "train_loss": r["loss"],
                                       "val_loss": r["loss"], "wall_s": 1.0, "tokens_per_s": 1.0, "version": "t"})
        st.set_meta("config", {"analysis": {"n_boot": 8, "seed": 0, "level": 0.95, "grid": "hoffmann",
                                            "regress": regress}})
    build_report(str(tmp_path), db=str(db))
    text = (tmp_path / "report.md").read_text()
    summary = json.loads((tmp_path / "analysis.json").read_text())
    assert f"Regression: **{regress}**" in text and summary["regress"] == regress
    if regress == "linear":
        assert "**Undefined inside the fitted H range:**" in text and summary["undefined_h"]
        assert f"{summary['undefined_h'][0][0]:.4g}, 0.8]" in text
    else:
        assert "Undefined inside" not in text and summary["undefined_h"] == []
        assert "| log A |" in text and "| log B |" in text
