import json

import numpy as np
import pytest
from lawsdata import TRUE_PARAMS

from pygzlaw.laws.allocate import allocate, compute_optimal, frontier_exponents
from pygzlaw.laws.forms import HOFFMANN_PARAMS, ChinchillaParams, chinchilla_loss
from pygzlaw.laws.io import load_law, save_law
from pygzlaw.laws.isoflop import group_by_budget, isoflop_analysis
from pygzlaw.laws.law import ChinchillaLaw


def test_allocation_minimises_loss_on_the_isoflop_line():
    for c in (1e18, 1e21, 5.76e23):
        a = allocate(c, HOFFMANN_PARAMS)
        n = a.n_params * np.logspace(-0.5, 0.5, 2001)
        loss = chinchilla_loss(n, c / (6 * n), HOFFMANN_PARAMS)
        n_best = n[np.argmin(loss)]
        assert n_best == pytest.approx(a.n_params, rel=2e-3)
        assert 6 * a.n_params * a.n_tokens == pytest.approx(c, rel=1e-12)
        assert a.tokens_per_param == pytest.approx(a.n_tokens / a.n_params)
        assert a.loss == pytest.approx(float(chinchilla_loss(a.n_params, a.n_tokens, HOFFMANN_PARAMS)))


def test_hoffmann_gopher_budget():
    # Hoffmann et al. (Table 3, Approach 3): 5.76e23 FLOPs -> about 40B parameters.
    n, d = compute_optimal(5.76e23, HOFFMANN_PARAMS)
    assert 35e9 < n < 45e9


def test_frontier_exponents_and_errors():
    a, b, g = frontier_exponents(HOFFMANN_PARAMS)
    assert a + b == pytest.approx(1.0)
    assert a == pytest.approx(0.28491 / (0.33917 + 0.28491))
    with pytest.raises(ValueError, match="alpha=0 and beta=0.3 must both be > 0"):
        frontier_exponents(ChinchillaParams(E=1, A=1, B=1, alpha=0.0, beta=0.3))
    with pytest.raises(ValueError, match=r"budget_flops\[0\] = -1.0 is not positive"):
        compute_optimal(np.array([-1.0]), HOFFMANN_PARAMS)


def test_law_predict_and_intervals(fitted):
    n = np.array([1e8, 1e9, 1e10])
    d = np.array([1e10, 1e11, 1e12])
    pred = fitted.predict(n, d)
    lo, hi = fitted.predict_interval(n, d)
    assert (lo <= pred).all() and (pred <= hi).all() and (lo < hi).all()
    truth = chinchilla_loss(n, d, TRUE_PARAMS)
    assert ((lo <= truth) & (truth <= hi)).all()
    lo90, hi90 = fitted.predict_interval(n, d, level=0.5)
    assert (hi90 - lo90 < hi - lo).all()
    with pytest.raises(ValueError, match="level=1.5 must be in"):
        fitted.predict_interval(n, d, level=1.5)


def test_allocate_interval_contains_point(fitted):
    a = fitted.allocate(np.array([1e20, 1e22]))
    iv = fitted.allocate_interval(np.array([1e20, 1e22]))
    for k in ("n_params", "n_tokens", "tokens_per_param", "loss"):
        lo, hi = iv[k]
        v = getattr(a, k)
        assert ((lo <= v * (1 + 1e-9)) & (v <= hi * (1 + 1e-9))).all(), k


def test_no_bootstrap_message():
    law = ChinchillaLaw(params=HOFFMANN_PARAMS, name="h")
    with pytest.raises(ValueError, match="has no bootstrap replicates; refit with n_boot > 0"):
        law.predict_interval(1e9, 1e10)


def test_json_round_trip(fitted, tmp_path):
    path = tmp_path / "law.json"
    save_law(fitted, path)
    back = load_law(path)
    assert back.params == fitted.params
    np.testing.assert_array_equal(back.bootstrap, fitted.bootstrap)
    np.testing.assert_array_equal(back.predict_interval(1e9, 1e10), fitted.predict_interval(1e9, 1e10))
    assert back.fit_info == json.loads(json.dumps(fitted.fit_info))
    assert [p.name for p in tmp_path.iterdir()] == ["law.json"]  # no temp files left behind


@pytest.mark.parametrize("mutate, msg", [
    (lambda d: d.pop("format"), "not a pygzlaw law file"),
    (lambda d: d.update(version=99), "law format version 99 unsupported"),
    (lambda d: d.update(kind="weird"), "unknown law kind 'weird'"),
    (lambda d: d["params"].pop("E"), r"missing field\(s\) \['E'\]"),
    (lambda d: d["bootstrap"].update(samples=[[1, 2, 3]]), r"bootstrap.samples has shape \(1, 3\)"),
])
def test_bad_law_files(fitted, tmp_path, mutate, msg):
    d = fitted.to_json_dict()
    mutate(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=msg):
        load_law(p)


def test_invalid_json_names_line(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{\n  "format": "pygzlaw.law",\n  oops\n}')
    with pytest.raises(ValueError, match=r"broken.json:3: invalid JSON"):
        load_law(p)


def test_isoflop_recovers_exponent():
    p = ChinchillaParams(E=1.8, A=480.0, B=2000.0, alpha=0.35, beta=0.37)
    a_true = p.beta / (p.alpha + p.beta)
    n_all, d_all, c_all = [], [], []
    for c in np.logspace(18, 22, 5):
        n_opt, _ = compute_optimal(c, p)
        n = n_opt * np.logspace(-0.4, 0.4, 9)
        n_all.append(n)
        d_all.append(c / (6 * n))
        c_all.append(np.full(n.size, c))
    n, d = np.concatenate(n_all), np.concatenate(d_all)
    res = isoflop_analysis(n, d, chinchilla_loss(n, d, p), budget_flops=np.concatenate(c_all))
    assert res.a == pytest.approx(a_true, abs=0.01)
    assert res.a + res.b == pytest.approx(1.0, abs=1e-9)
    assert len(res.budget_flops) == 5 and not res.skipped


def test_isoflop_errors_and_grouping():
    ids = group_by_budget(np.array([1e18, 1.02e18, 1e19, 1.01e19, 5e19]))
    assert ids.tolist() == [0, 0, 1, 1, 2]
    with pytest.raises(ValueError, match="needs >= 2 budgets"):
        isoflop_analysis(np.array([1e8, 2e8]), np.array([1e9, 5e8]), np.array([3.0, 3.1]))
