"""Every law kind through one CLI verb, one JSON shape, predict and the service (issue 12, item 6)."""
import csv
import json

import numpy as np
import pytest

from pygzlaw.cli import main
from pygzlaw.laws.allocate import frontier_exponents
from pygzlaw.laws.family import qqt_error
from pygzlaw.laws.family_law import FamilyLaw, fit_from_file, parse_fix
from pygzlaw.laws.forms import (MUENNIGHOFF_PARAMS, ErrorParams, OvertrainParams, chinchilla_loss, data_constrained_loss,
                                downstream_error, overtrain_loss)
from pygzlaw.laws.io import load_law, save_law

OT = OvertrainParams(E=1.9, a=150.0, b=700.0, eta=0.12)
ERR = ErrorParams(epsilon=0.8, k=1.6, gamma=0.5)
BASE_FIX = ",".join(f"{k}={v!r}" for k, v in MUENNIGHOFF_PARAMS.base.to_dict().items())
QQT = [("best", 1e6, -0.09, 2.7), ("good", 4e6, -0.05, 5.0)]


def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("kinds")
    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(1e7, 4e8, 5), 5)
    m = np.tile([5.0, 10, 20, 80, 320], 5)
    loss = overtrain_loss(6 * n * n * m, m, OT) * np.exp(rng.normal(0, 0.002, n.size))
    out = {"overtrain": _write(d / "ot.csv", ["N", "D", "loss"], zip(n, n * m, loss))}
    lo = np.linspace(2.3, 5.0, 12)
    out["error"] = _write(d / "err.csv", ["loss", "error"],
                          zip(lo, downstream_error(lo, ERR) * np.exp(rng.normal(0, 0.002, lo.size))))
    u = np.full(24, 2e9)
    nn = np.repeat([1e8, 3e8, 1e9], 8)
    dd = np.tile(2e9 * np.array([0.5, 1, 2, 4, 8, 16, 32, 64]), 3)
    ll = data_constrained_loss(nn, dd, u, MUENNIGHOFF_PARAMS) * np.exp(rng.normal(0, 5e-4, nn.size))
    out["data-constrained"] = _write(d / "dc.csv", ["N", "D", "U", "loss"], zip(nn, dd, u, ll))
    rows = []
    for name, size, b, tau in QQT:
        for s in np.geomspace(2e5, 4e7, 8):
            rows.append((name, size, s, float(qqt_error(s, size, 3.0, b, tau, 0.1))))
    out["qqt"] = _write(d / "qqt.csv", ["pool", "pool_size", "n_seen", "error"], rows)
    return out


@pytest.mark.parametrize("kind", ["overtrain", "error", "data-constrained", "qqt"])
def test_cli_fit_every_kind_same_json_shape(kind, files, tmp_path, capsys):
    out = tmp_path / f"{kind}.json"
    extra = {"data-constrained": ["--fix", BASE_FIX], "qqt": ["--fix", "d=0.1"]}.get(kind, [])
    assert main(["fit", str(files[kind]), "--law", kind, "--bootstrap", "8", "--format", "json", "-o", str(out)]
                + extra) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"format", "version", "kind", "name", "params", "fit", "meta", "bootstrap"} <= set(doc)
    assert doc["kind"] == kind.replace("-", "_") and doc["bootstrap"]["n_boot"] == 8
    law = load_law(out)
    assert isinstance(law, FamilyLaw) and law.bootstrap.shape[0] == 8
    assert law.to_json_dict()["params"] == json.loads(out.read_text())["params"]


def test_overtrain_and_error_recover_and_predict(files, tmp_path):
    ot = fit_from_file("overtrain", files["overtrain"], n_boot=20)
    assert ot.params["eta"] == pytest.approx(OT.eta, rel=0.05) and ot.params["E"] == pytest.approx(OT.E, rel=0.02)
    ev = ot.evaluate({"n_params": [1e9, 3e9], "n_tokens": 2e10})
    assert len(ev["loss"]) == 2 and all(lo <= v <= hi for v, lo, hi in
                                          zip(ev["loss"], ev["intervals"]["loss"]["lo"], ev["intervals"]["loss"]["hi"]))
    # over-training laws allocate as Chinchilla with alpha = beta = eta
    a, _, _ = frontier_exponents(OvertrainParams(**ot.params).to_chinchilla())
    assert a == pytest.approx(0.5) and ot.allocate(1e21).tokens_per_param > 0
    er = fit_from_file("error", files["error"])
    assert er.predict(loss=[3.0])[0] == pytest.approx(float(downstream_error(3.0, ERR)), rel=0.01)
    with pytest.raises(ValueError, match=r"needs \['loss'\]; missing \['loss'\]"):
        er.evaluate({"n_params": 1e9})


def test_data_constrained_kind(files):
    law = fit_from_file("data-constrained", files["data-constrained"], fix=parse_fix([BASE_FIX]))
    assert law.params["rd_star"] == pytest.approx(MUENNIGHOFF_PARAMS.rd_star, rel=0.15)
    assert law.fit_info["base"] == "fixed (--fix)" and "identifiability" in law.fit_info
    y = law.predict(n_params=1e9, n_tokens=1.6e10, unique_tokens=2e9)
    assert y[0] == pytest.approx(float(data_constrained_loss(1e9, 1.6e10, 2e9, MUENNIGHOFF_PARAMS)), rel=0.005)


def test_qqt_kind_predicts_by_pool(files):
    law = fit_from_file("qqt", files["qqt"], fix={"d": 0.1}, n_boot=5)
    for p, (name, size, b, tau) in zip(law.params["pools"], QQT):
        assert p["name"] == name and p["b"] == pytest.approx(b, rel=0.02) and p["tau"] == pytest.approx(tau, rel=0.02)
    y = law.predict(pool=["good"], n_seen=[1e7])
    assert y[0] == pytest.approx(float(qqt_error(1e7, 4e6, 3.0, -0.05, 5.0, 0.1)), rel=1e-3)
    with pytest.raises(ValueError, match="pool 'nope' is not in law"):
        law.predict(pool="nope", n_seen=1e6)
    assert "best:tau" in law.fit_info["intervals"]


def test_isoflop_kind(tmp_path):
    rng = np.random.default_rng(2)
    p = MUENNIGHOFF_PARAMS.base
    rows = []
    for c in np.geomspace(1e18, 1e21, 5):
        for n in np.geomspace(1e7, 3e9, 14):
            d = c / (6 * n)
            if 1 <= d / n <= 2000:
                rows.append((n, d, float(chinchilla_loss(n, d, p)) * np.exp(rng.normal(0, 1e-4))))
    path = _write(tmp_path / "iso.csv", ["N", "D", "loss"], rows)
    law = fit_from_file("isoflop", path, n_boot=30)
    assert law.params["a"] == pytest.approx(0.5, abs=0.03)             # alpha = beta: a = 0.5
    ev = law.evaluate({"budget_flops": [1e21]})
    assert ev["n_params"][0] * ev["n_tokens"][0] * 6 == pytest.approx(1e21, rel=0.1)
    with pytest.raises(ValueError, match="has no loss-based allocation"):
        law.allocate(1e21)


@pytest.mark.parametrize("argv, msg", [
    (["--law", "error", "--tie", "alpha=beta"], "--tie does not apply to --law error"),
    (["--law", "qqt"], "--fix d=VALUE"),
    (["--law", "qqt", "--fix", "a=2"], "--law qqt holds only d"),
    (["--law", "overtrain", "--fix", "E"], r"--fix 'E': expected NAME=VALUE"),
    (["--law", "data-constrained", "--base", "x.json", "--fix", "E=1"], None),
])
def test_cli_options_that_do_not_apply_are_named(argv, msg, files, capsys):
    kind = argv[1]
    rc = main(["fit", str(files[kind])] + argv)
    err = capsys.readouterr().err
    assert rc != 0 and "error:" in err
    if msg:
        import re
        assert re.search(msg, err), err


def test_cli_predict_and_allocate_family(files, tmp_path, capsys):
    law = tmp_path / "dc.json"
    assert main(["fit", str(files["data-constrained"]), "--law", "data-constrained", "--fix", BASE_FIX,
                 "-o", str(law)]) == 0
    capsys.readouterr()
    assert main(["predict", "--law", str(law), "--n-params", "1e9", "--n-tokens", "1.6e10", "--unique-tokens", "2e9",
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "data_constrained" and len(out["loss"]) == 1
    assert main(["predict", "--law", str(law), "--n-params", "1e9", "--n-tokens", "1e10"]) != 0
    assert "give --n-params, --n-tokens, --unique-tokens" in capsys.readouterr().err
    assert main(["allocate", "--law", str(law), "--compute", "1e21"]) == 0


def laws_ot_range(path):
    from pygzlaw.laws.io import load_law
    from pygzlaw.laws.report import _fitted_range

    rng = _fitted_range(load_law(path))
    return rng["n_params"][0] if rng else None


def test_service_lists_and_evaluates_family_laws(files, tmp_path):
    from fastapi.testclient import TestClient

    from pygzlaw.serve.app import create_app

    d = tmp_path / "laws"
    d.mkdir()
    save_law(fit_from_file("overtrain", files["overtrain"], name="ot"), d / "ot.json")
    save_law(fit_from_file("qqt", files["qqt"], fix={"d": 0.1}), d / "qqt.json")
    with TestClient(create_app(d)) as c:
        laws = {x["name"]: x for x in c.get("/laws").json()["laws"]}
        assert laws["ot"]["kind"] == "overtrain" and laws["qqt"]["kind"] == "qqt"
        r = c.post("/laws/qqt/evaluate", json={"inputs": {"pool": ["best"], "n_seen": [1e6]}})
        assert r.status_code == 200 and len(r.json()["error"]) == 1
        r = c.post("/laws/ot/predict", json={"n_params": 1e9, "n_tokens": 2e10})
        assert r.status_code == 200 and r.json()["loss"][0] > 1.9
        # the CLI's extrapolation warnings, on predict and evaluate alike
        lo_n = laws_ot_range(d / "ot.json")
        assert r.json()["warnings"] == [] or lo_n is None
        for path, body in (("/laws/ot/predict", {"n_params": 1e16, "n_tokens": 2e10}),
                           ("/laws/ot/evaluate", {"inputs": {"n_params": [1e9, 1e16], "n_tokens": 2e10}})):
            r = c.post(path, json=body)
            assert r.status_code == 200, r.text
            w = r.json()["warnings"]
            assert len(w) == 1 and "N=1e+16" in w[0] and "extrapolating far" in w[0], w
        r = c.post("/laws/qqt/predict", json={"n_params": 1e9, "n_tokens": 2e10})
        assert r.status_code == 422 and "/evaluate" in r.json()["message"]
        r = c.post("/laws/qqt/evaluate", json={"inputs": {"pool": "best"}})
        assert r.status_code == 422 and "missing ['n_seen']" in r.json()["message"]


def test_cli_chinchilla_tie_and_fix(tmp_path, capsys):
    from lawsdata import synthetic_runs

    n, d, loss = synthetic_runs()
    path = _write(tmp_path / "runs.csv", ["N", "D", "loss"], zip(n, d, loss))
    out = tmp_path / "law.json"
    assert main(["fit", str(path), "--grid", "muennighoff", "--tie", "alpha=beta", "--fix", "E=1.8", "-o", str(out),
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["params"]["E"] == 1.8 and doc["params"]["alpha"] == doc["params"]["beta"]
    assert load_law(out).fit_info["constraint"] == {"tie": "alpha=beta", "fixed": {"E": 1.8}}
    assert main(["fit", str(path), "--fix", "C=1"]) != 0
    assert "fix: unknown parameter 'C'" in capsys.readouterr().err
    assert main(["fit", str(path), "--grid", "default"]) != 0
    assert "--grid default applies to --law data-constrained" in capsys.readouterr().err


def test_cli_isoflop_law_and_predict(tmp_path, capsys):
    p = MUENNIGHOFF_PARAMS.base
    rows = [(n, c / (6 * n), float(chinchilla_loss(n, c / (6 * n), p)))
            for c in np.geomspace(1e18, 1e21, 4) for n in np.geomspace(1e7, 3e9, 14) if 1 <= c / (6 * n * n) <= 2000]
    path = _write(tmp_path / "iso.csv", ["N", "D", "loss"], rows)
    out = tmp_path / "iso.json"
    assert main(["fit", str(path), "--law", "isoflop", "--bootstrap", "20", "-o", str(out)]) == 0
    assert "95% intervals: a" in capsys.readouterr().out
    assert main(["predict", "--law", str(out), "--compute", "1e21", "--format", "json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["kind"] == "isoflop" and ev["n_params"][0] > 1e9


def test_cli_predict_warns_past_the_fitted_runs_for_family_laws(files, tmp_path, capsys):
    """Over-training and data-constrained laws keep their runs' N, D range, so predict warns
    as it does for Chinchilla laws (10x outside)."""
    law = tmp_path / "ot.json"
    assert main(["fit", str(files["overtrain"]), "--law", "overtrain", "-o", str(law)]) == 0
    capsys.readouterr()
    assert main(["predict", "--law", str(law), "--n-params", "1e9", "--n-tokens", "2e10"]) == 0
    assert "extrapolating" not in capsys.readouterr().err
    assert main(["predict", "--law", str(law), "--n-params", "1e16", "--n-tokens", "2e10"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "N=1e+16" in err and "extrapolating far" in err
    dc = tmp_path / "dc.json"
    assert main(["fit", str(files["data-constrained"]), "--law", "data-constrained", "--fix", BASE_FIX,
                 "-o", str(dc)]) == 0
    capsys.readouterr()
    assert main(["predict", "--law", str(dc), "--n-params", "1e9", "--n-tokens", "1e18",
                 "--unique-tokens", "2e9"]) == 0
    assert "D 1e+18 is" in capsys.readouterr().err
