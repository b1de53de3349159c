import numpy as np
import pytest
from lawsdata import NOISE_SIGMA, TRUE_PARAMS, synthetic_runs

from pygzlaw.laws.fit import (ConvergenceError, HuberLSE, bootstrap_chinchilla, fit_chinchilla, lbfgs_batched,
                              make_grid)


def test_grids_are_the_published_ones():
    h = make_grid("hoffmann")
    assert h.shape == (4500, 5)
    assert sorted(set(h[:, 0])) == [0, 5, 10, 15, 20, 25]          # a = log A
    assert sorted(set(h[:, 2])) == [-1, -0.5, 0, 0.5, 1]           # e = log E
    assert sorted(set(h[:, 3])) == [0, 0.5, 1, 1.5, 2]             # alpha
    m = make_grid("muennighoff")
    assert m.shape == (1024, 5)
    np.testing.assert_allclose(sorted(set(m[:, 1])), [0, 4, 8, 12])
    np.testing.assert_allclose(sorted(set(m[:, 4])), [0, 1 / 3, 2 / 3, 1])
    with pytest.raises(ValueError, match="grid='nope' is unknown"):
        make_grid("nope")
    with pytest.raises(ValueError, match=r"grid has shape \(3, 4\)"):
        make_grid(np.zeros((3, 4)))


def test_objective_gradient_matches_finite_differences(runs):
    log_n, log_d, log_l = (np.log(v) for v in runs)
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.uniform(4, 8, 6), rng.uniform(5, 9, 6), rng.uniform(0.3, 0.8, 6),
                         rng.uniform(0.2, 0.5, 6), rng.uniform(0.2, 0.5, 6)])
    w = rng.integers(0, 3, size=(6, log_n.size)).astype(np.float64)
    for weights in (None, w):
        obj = HuberLSE(log_n, log_d, log_l, 1e-3, weights)
        f, g = obj(x, np.arange(6))
        # direct evaluation of the summed Huber loss
        pred = np.logaddexp(np.logaddexp(x[:, :1] - x[:, 3:4] * log_n, x[:, 1:2] - x[:, 4:5] * log_d), x[:, 2:3])
        r = pred - log_l
        hub = np.where(np.abs(r) <= 1e-3, 0.5 * r * r, 1e-3 * (np.abs(r) - 0.5e-3))
        np.testing.assert_allclose(f, (hub * (1 if weights is None else weights)).sum(1), rtol=1e-10)
        for j in range(5):
            step = np.zeros(5)
            step[j] = 1e-7
            num = (obj(x + step, np.arange(6))[0] - obj(x - step, np.arange(6))[0]) / 2e-7
            np.testing.assert_allclose(g[:, j], num, rtol=1e-4, atol=1e-9)


def test_float32_objective_close_to_float64(runs):
    log_n, log_d, log_l = (np.log(v) for v in runs)
    x = make_grid("muennighoff")[::37]
    f64, _ = HuberLSE(log_n, log_d, log_l, 1e-3)(x)
    f32, _ = HuberLSE(log_n, log_d, log_l, 1e-3, dtype=np.float32)(x)
    np.testing.assert_allclose(f32, f64, rtol=1e-4)


def test_batched_lbfgs_matches_scipy_per_start(runs):
    from scipy.optimize import minimize

    log_n, log_d, log_l = (np.log(v) for v in runs)
    obj = HuberLSE(log_n, log_d, log_l, 1e-3)
    x0 = make_grid("muennighoff")[::97]
    xb, fb, status, _ = lbfgs_batched(obj, x0, max_iter=3000)
    f_scipy = [minimize(lambda v: tuple(a[0] for a in obj(v[None, :])), x, jac=True, method="L-BFGS-B").fun
               for x in x0]
    # Starts may end in different local minima than scipy's (the problem is not convex); the best
    # start, which is what the fit keeps, must be at least as good.
    assert fb.min() <= min(f_scipy) * (1 + 1e-6)
    assert np.isin(status, (1, 2)).mean() >= 0.9


@pytest.mark.parametrize("name, rel_tol", [("E", 0.02), ("A", 0.15), ("B", 0.15), ("alpha", 0.03), ("beta", 0.03)])
def test_recovers_known_params(fitted, name, rel_tol):
    # 64 runs, 0.3% log-normal noise (seed 0): the estimate lies within rel_tol of the truth ...
    est = getattr(fitted.params, name)
    assert est == pytest.approx(getattr(TRUE_PARAMS, name), rel=rel_tol)
    # ... and the 95% bootstrap interval covers the truth
    iv = fitted.param_intervals(level=0.95)[name]
    assert iv["lo"] <= getattr(TRUE_PARAMS, name) <= iv["hi"]


def test_fit_result_fields(runs):
    res = fit_chinchilla(*runs, grid=make_grid("muennighoff")[::8])
    assert res.n_starts == 128 and res.grid == "custom" and res.converged
    assert 0 < res.n_converged <= 128
    assert res.minima.shape[1] == 5 and res.objective > 0
    assert res.n_points == 64 and res.huber_delta == 1e-3


def test_noise_free_fit_is_exact():
    runs = synthetic_runs(sigma=0.0)
    res = fit_chinchilla(*runs, grid="muennighoff")
    for k, v in TRUE_PARAMS.to_dict().items():
        assert getattr(res.params, k) == pytest.approx(v, rel=1e-4), k
    assert res.objective < 1e-12


def test_too_few_points():
    with pytest.raises(ValueError, match="too few points to fit the Chinchilla law: got 5, need at least 6"):
        fit_chinchilla(np.ones(5) * 1e8, np.ones(5) * 1e9, np.ones(5) * 3.0)


@pytest.mark.parametrize("field, value, msg", [
    ("n_params", np.float32, r"n_params has dtype float32"),
    ("loss", -1.0, r"loss\[2\] = -1.0 is not positive"),
    ("n_tokens", np.nan, r"n_tokens\[2\] = nan is not finite"),
])
def test_bad_input(runs, field, value, msg):
    data = dict(zip(("n_params", "n_tokens", "loss"), (v.copy() for v in runs)))
    if value is np.float32:
        data[field] = data[field].astype(np.float32)
    else:
        data[field][2] = value
    with pytest.raises(ValueError, match=msg):
        fit_chinchilla(data["n_params"], data["n_tokens"], data["loss"], grid="muennighoff")


def test_length_mismatch(runs):
    with pytest.raises(ValueError, match=r"n_params \(64\), n_tokens \(63\) and loss \(64\)"):
        fit_chinchilla(runs[0], runs[1][:-1], runs[2])


def test_non_converged_fit_raises(runs):
    with pytest.raises(ConvergenceError, match="did not converge"):
        fit_chinchilla(*runs, grid=make_grid("hoffmann")[:3], max_iter=2, polish=0)
    res = fit_chinchilla(*runs, grid=make_grid("hoffmann")[:3], max_iter=2, polish=0, require_convergence=False)
    assert not res.converged


def test_bootstrap_is_deterministic(runs, fitted):
    from pygzlaw.laws.fit import FitResult

    res = FitResult(params=fitted.params, objective=0.0, n_starts=1, n_converged=1, best_start=0, seconds=0.0,
                    n_points=64, huber_delta=1e-3, grid="custom", converged=True,
                    minima=fitted.params.to_log()[None, :])
    a = bootstrap_chinchilla(*runs, res, n_boot=20, seed=11)
    b = bootstrap_chinchilla(*runs, res, n_boot=20, seed=11)
    c = bootstrap_chinchilla(*runs, res, n_boot=20, seed=12)
    assert a.shape == (20, 5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bootstrap_spread_matches_noise_level(fitted):
    # Repeat the experiment with fresh noise: the bootstrap SE of alpha should match the spread
    # of refits across independent noise draws within a factor of 2.
    refits = []
    for seed in range(1, 9):
        runs = synthetic_runs(seed=seed)
        refits.append(fit_chinchilla(*runs, grid=fitted.params.to_log()[None, :] + np.zeros((1, 5))).params.alpha)
    sd_refit = np.std(refits, ddof=1)
    se_boot = fitted.param_intervals()["alpha"]["se"]
    assert 0.5 < se_boot / sd_refit < 2.0, (se_boot, sd_refit, NOISE_SIGMA)
