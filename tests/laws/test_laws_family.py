import math

import numpy as np
import pytest

from pygzlaw.laws.family import (GADRE_GRID, Pool, best_filtering_level, combine_pools, fit_error_law, fit_overtrain,
                                 fit_qqt, qqt_error)
from pygzlaw.laws.forms import ErrorParams, OvertrainParams, downstream_error, overtrain_loss


def test_gadre_grid_is_128_starts():
    assert GADRE_GRID.shape == (128, 4)
    assert sorted(set(GADRE_GRID[:, 3])) == [0.05, 0.15]
    assert sorted(set(GADRE_GRID[:, 0])) == [0, 1, 2, 10]


def test_overtrain_fit_recovers_params_and_extrapolates():
    true = OvertrainParams(E=1.8, a=200.0, b=350.0, eta=0.13)
    rng = np.random.default_rng(0)
    n = np.array([10.6e6, 78.9e6, 153.7e6, 411.6e6, 10.6e6, 40e6, 20e6])
    m = np.array([20, 20, 20, 20, 320, 80, 160], dtype=np.float64)
    c = 6 * n * (m * n)
    loss = overtrain_loss(c, m, true) * np.exp(rng.normal(0, 0.001, n.size))
    fit = fit_overtrain(c, m, loss)
    assert fit.n_ok > 0 and fit.n_starts == 128
    assert fit.params.eta == pytest.approx(0.13, rel=0.1)
    # extrapolate to 6.9B at M = 20 and 1.4B at M = 640
    for n_big, m_big in ((6.9e9, 20.0), (1.4e9, 640.0)):
        c_big = 6 * n_big * n_big * m_big
        assert overtrain_loss(c_big, m_big, fit.params) == pytest.approx(overtrain_loss(c_big, m_big, true), rel=0.01)


def test_overtrain_fit_needs_points():
    with pytest.raises(ValueError, match="too few points to fit the over-training law: got 3"):
        fit_overtrain(np.array([1e18, 1e19, 1e20]), np.array([20.0, 20, 20]), np.array([3.0, 2.9, 2.8]))


def test_error_law_recovery():
    true = ErrorParams(epsilon=0.76, k=1.3, gamma=0.9)
    loss = np.linspace(2.3, 5.5, 12)
    fit = fit_error_law(loss, downstream_error(loss, true))
    assert fit.params.to_dict() == pytest.approx(true.to_dict(), rel=1e-4)


def test_qqt_single_epoch_is_base_law():
    a, b, d = 2.0, -0.1, 0.05
    n = np.array([1e5, 5e5, 1e6])
    y = qqt_error(n, 1e7, a, b, 3.0, d)
    np.testing.assert_allclose(y, (a * n / 1e5) ** b + d, rtol=1e-12)


def test_qqt_repetition_decays_utility():
    a, b, d, pool = 2.0, -0.1, 0.05, 1e6
    y_fresh = qqt_error(4e6, 1e9, a, b, 3.0, d)          # never repeats
    y_rep = qqt_error(4e6, pool, a, b, 3.0, d)           # 4 epochs of a 1e6 pool
    y_rep_fast = qqt_error(4e6, pool, a, b, 1.0, d)      # shorter half-life: worse
    y_first = qqt_error(pool, pool, a, b, 3.0, d)
    assert y_fresh < y_rep < y_first
    assert y_rep < y_rep_fast
    # closed form for 2 epochs: y(P) * 2^(b * 0.5^(1/tau))
    y2 = qqt_error(2 * pool, pool, a, b, 3.0, d)
    assert y2 == pytest.approx(((a * pool / 1e5) ** b + d) * 2 ** (b * 0.5 ** (1 / 3.0)))


def test_combine_one_pool_is_itself():
    p = Pool("q", 1e6, -0.1, 3.0)
    size, b_fn = combine_pools([p])
    assert size == 1e6
    for n in (5e5, 3e6, 7e6):
        assert qqt_error(n, size, 2.0, 0.0, 1.0, 0.05, b_of_epoch=b_fn) == pytest.approx(
            qqt_error(n, 1e6, 2.0, -0.1, 3.0, 0.05))
    # Theorem 1: two pools -> half-life p * tau, mean utility
    _, b2 = combine_pools([p, Pool("r", 1e6, -0.06, 2.0)])
    e = np.array([0.0, 1.0, 4.0])
    np.testing.assert_allclose(b2(e), 0.5 * (-0.1 * 0.5 ** (e / 6.0) - 0.06 * 0.5 ** (e / 4.0)))


def test_best_filtering_level_depends_on_budget():
    pools = [Pool("top", 1e6, -0.12, 1.5), Pool("mid", 4e6, -0.07, 3.0), Pool("low", 3e7, -0.03, 5.0)]
    small = best_filtering_level(pools, 1e6, a=2.0, d=0.05)
    large = best_filtering_level(pools, 2e8, a=2.0, d=0.05)
    assert small["best_k"] == 1                      # small budget: keep only the best data
    assert large["best_k"] > small["best_k"]         # large budget: repeating the best pool stops paying
    assert len(large["errors"]) == 3
    with pytest.raises(ValueError, match="budget_samples=0 must be a positive finite number"):
        best_filtering_level(pools, 0, a=2.0, d=0.05)


def test_fit_qqt_recovers_grid_values():
    a, d = 2.0, 0.05
    truth = [("p1", 1e6, -0.1, 2.5), ("p2", 3e6, -0.05, 5.0)]
    curves = []
    for name, size, b, tau in truth:
        n = np.array([2e5, 1e6, 2e6, 4e6, 8e6, 1.6e7])
        curves.append({"name": name, "pool_size": size, "n_seen": n, "error": qqt_error(n, size, a, b, tau, d)})
    fit = fit_qqt(curves, d=d, a_grid=[1.0, 2.0, 4.0], b_grid=np.round(np.arange(-0.5, 0.0, 0.005), 3)[:-1],
                  tau_grid=np.arange(1.0, 10.01, 0.5), polish=False)
    assert fit.a == 2.0
    for pool, (_, _, b, tau) in zip(fit.pools, truth):
        assert pool.b == pytest.approx(b, abs=1e-9) and pool.tau == pytest.approx(tau)
    assert fit.sse < 1e-20
    assert math.isfinite(fit.sse)


# Off-grid parameters in the range Goyal et al. report for CLIP-score pools (b of a few hundredths,
# half-lives of a few epochs), evaluated from below one epoch to many epochs of each pool.
QQT_TRUTH = [("top10", 1e6, -0.093, 2.7), ("top20", 3e6, -0.061, 4.3), ("top30", 1e7, -0.037, 6.6)]
QQT_A, QQT_D = 3.3, 0.1


def _qqt_rows():
    rows = []
    for name, size, b, tau in QQT_TRUTH:
        for n in np.geomspace(2e5, 8e7, 10):
            rows.append((name, size, float(n), float(qqt_error(n, size, QQT_A, b, tau, QQT_D))))
    return rows


def _check_recovery(fit, rel=0.02):
    assert fit.a == pytest.approx(QQT_A, rel=rel)
    for pool, (name, size, b, tau) in zip(fit.pools, QQT_TRUTH):
        assert pool.name == name and pool.n_samples == size
        assert pool.b == pytest.approx(b, rel=rel) and pool.tau == pytest.approx(tau, rel=rel)


def test_fit_qqt_default_grids_recover_off_grid_parameters():
    rows = _qqt_rows()
    cols = list(zip(*rows))
    fit = fit_qqt({"pool": cols[0], "pool_size": cols[1], "n_seen": cols[2], "error": cols[3]}, d=QQT_D)
    _check_recovery(fit)
    assert fit.sse <= fit.grid_sse and fit.converged and fit.at_bound == []
    # the plain grid search (the published procedure) is off by far more than 2%
    grid_only = fit_qqt({"pool": cols[0], "pool_size": cols[1], "n_seen": cols[2], "error": cols[3]}, d=QQT_D,
                        polish=False)
    assert max(abs(p.tau / t[3] - 1) for p, t in zip(grid_only.pools, QQT_TRUTH)) > 0.02


def test_fit_qqt_reads_csv_with_bom_and_crlf(tmp_path):
    path = tmp_path / "curves.csv"
    lines = ["pool,pool_size,n_seen,error"] + [f"{r[0]},{r[1]!r},{r[2]!r},{r[3]!r}" for r in _qqt_rows()]
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    fit = fit_qqt(path, d=QQT_D)
    _check_recovery(fit)
    assert fit.to_dict()["pools"][0]["name"] == "top10"


def test_qqt_inputs_are_checked(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("pool,pool_size,n_seen\np,1e6,1e5\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['error'\]"):
        fit_qqt(bad, d=0.1)
    bad.write_text("pool,pool_size,n_seen,error\np,1e6,1e5,0.5\np,1e6,x,0.4\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: n_seen='x' is not a number"):
        fit_qqt(bad, d=0.1)
    with pytest.raises(ValueError, match=r"pool 'p' has 2 different pool_size"):
        fit_qqt({"pool": ["p", "p"], "pool_size": [1e6, 2e6], "n_seen": [1e5, 2e5], "error": [0.5, 0.4]}, d=0.1)
    with pytest.raises(ValueError, match="curves\\[0\\] lacks 'error'"):
        fit_qqt([{"name": "p", "pool_size": 1e6, "n_seen": [1e5]}], d=0.1)
