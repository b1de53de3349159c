import numpy as np
import pytest

from pygzlaw.laws.data_dependent import DataDependentLaw, Regression, fit_data_dependent, regress_params
from pygzlaw.laws.forms import HOFFMANN_PARAMS, ChinchillaParams, chinchilla_loss
from pygzlaw.laws.io import law_from_dict

HS = np.array([0.2, 0.3, 0.4, 0.5, 0.6])


def true_params(h):
    # alpha falls and beta rises with H; they cross at H = 0.5 (0.45 - 0.3 H = 0.25 + 0.1 H).
    return ChinchillaParams(E=0.5 + 2 * h, A=300 - 200 * h, B=500 - 300 * h, alpha=0.45 - 0.3 * h, beta=0.25 + 0.1 * h)


def make_law(eps=1.0):
    regs = regress_params(HS, [true_params(h) for h in HS])
    return DataDependentLaw(regressions=regs, epsilon=eps, h_range=(0.2, 0.6))


def test_regression_recovers_exact_lines():
    law = make_law()
    r = law.regressions
    assert r["E"].slope == pytest.approx(2.0) and r["E"].intercept == pytest.approx(0.5)
    assert r["alpha"].slope == pytest.approx(-0.3) and r["alpha"].r == pytest.approx(-1.0)
    assert r["beta"].p_value < 1e-6
    for h in (0.25, 0.55):
        assert law.params_at(h).to_dict() == pytest.approx(true_params(h).to_dict())


def test_regression_statistics_match_scipy():
    from scipy.stats import linregress

    rng = np.random.default_rng(0)
    ps = [ChinchillaParams(E=1 + h + rng.normal(0, 0.1), A=300.0, B=400.0, alpha=0.3, beta=0.3 + rng.normal(0, 0.01))
          for h in HS]
    regs = regress_params(HS, ps)
    ref = linregress(HS, [p.E for p in ps])
    assert (regs["E"].slope, regs["E"].r, regs["E"].p_value, regs["E"].stderr) == pytest.approx(
        (ref.slope, ref.rvalue, ref.pvalue, ref.stderr))


def test_epsilon_zero_is_chinchilla_and_mixing_is_linear():
    law = make_law()
    assert law.params_at(0.4, epsilon=0.0) == HOFFMANN_PARAMS
    mid = law.params_at(0.4, epsilon=0.5).to_dict()
    full = law.params_at(0.4).to_dict()
    for k, v in HOFFMANN_PARAMS.to_dict().items():
        assert mid[k] == pytest.approx(0.5 * v + 0.5 * full[k])
    with pytest.raises(ValueError, match=r"epsilon=1.5 must be in \[0, 1\]"):
        law.params_at(0.4, epsilon=1.5)


def test_domain_error_names_h_range():
    law = make_law()
    with pytest.raises(ValueError, match=r"A\(H=2\) = .* <= 0 .* H in \[0.2, 0.6\]"):
        law.params_at(2.0)
    with pytest.raises(ValueError, match="h=-0.1 must be a positive finite gzip ratio"):
        law.params_at(-0.1)


def test_frontier_moves_toward_data_with_harder_data():
    law = make_law()
    tpp = [law.allocate(1e21, h).tokens_per_param for h in (0.2, 0.35, 0.5)]
    # a(H) = beta/(alpha+beta) rises with H here, so the frontier moves toward parameters
    exps = [law.frontier_exponent(h) for h in (0.2, 0.35, 0.5)]
    assert exps == sorted(exps)
    assert tpp == sorted(tpp, reverse=True)


def test_crossing_of_chinchilla_one_to_one_line():
    law = make_law()
    # alpha(H) = beta(H) at H = 0.5, so a(H) = 0.5 there
    assert law.chinchilla_crossing() == [pytest.approx(0.5, abs=1e-8)]
    # budget criterion: where tokens/param at 1e21 FLOPs equals the reference law's
    hs = law.chinchilla_crossing(budget_flops=1e21)
    ref = law.reference
    from pygzlaw.laws.allocate import allocate

    for h in hs:
        assert law.allocate(1e21, h).tokens_per_param == pytest.approx(allocate(1e21, ref).tokens_per_param, rel=1e-6)
    assert hs  # the synthetic family straddles Chinchilla's ratio


def _datasets(eps=1.0, sigma=0.003, seed=0):
    rng = np.random.default_rng(seed)
    law = make_law()
    out = []
    n = np.array([4.2e6, 8.8e6, 20.3e6, 59e6, 275.3e6, 1.39e9])
    d = np.array([1e5, 1e6, 5e6, 2e7, 5e7, 1e8])
    nn, dd = (a.ravel() for a in np.meshgrid(n, d, indexing="ij"))
    for i, h in enumerate(HS):
        loss = chinchilla_loss(nn, dd, law.params_at(h, epsilon=eps)) * np.exp(rng.normal(0, sigma, nn.size))
        out.append({"name": f"ds{i}", "h": float(h), "n_params": nn, "n_tokens": dd, "loss": loss})
    return out


def test_fit_epsilon_recovers_weight():
    law = make_law()
    runs = [(ds["h"], ds["n_params"], ds["n_tokens"], ds["loss"]) for ds in _datasets(eps=0.6)]
    assert law.fit_epsilon(runs) == pytest.approx(0.6, abs=0.03)
    assert law.epsilon == pytest.approx(0.6, abs=0.03)


def test_fit_data_dependent_end_to_end_and_json():
    law = fit_data_dependent(_datasets(sigma=0.001), grid="muennighoff", name="dd")
    assert law.regressions["E"].slope == pytest.approx(2.0, rel=0.15)
    assert law.regressions["alpha"].slope == pytest.approx(-0.3, rel=0.2)
    assert law.h_range == (0.2, 0.6) and len(law.datasets) == 5
    back = law_from_dict(law.to_json_dict())
    assert isinstance(back, DataDependentLaw)
    assert back.predict(1e9, 1e10, 0.45) == pytest.approx(law.predict(1e9, 1e10, 0.45), rel=1e-12)
    assert Regression.from_dict(law.regressions["B"].to_dict()) == law.regressions["B"]


def test_regression_needs_three_datasets():
    with pytest.raises(ValueError, match="needs >= 3 datasets, got 2"):
        regress_params([0.3, 0.4], [HOFFMANN_PARAMS, HOFFMANN_PARAMS])
    with pytest.raises(ValueError, match="same H"):
        regress_params([0.3, 0.3, 0.3], [HOFFMANN_PARAMS] * 3)


def test_data_dependent_bootstrap_intervals():
    from pygzlaw.laws.data_dependent import _regress_replicates

    # exact per-replicate regression
    rng = np.random.default_rng(2)
    boots = rng.normal(1.0, 0.1, size=(5, 7, 5))
    coef = _regress_replicates(HS, boots)
    from scipy.stats import linregress

    ref = linregress(HS, boots[:, 3, 1])
    assert coef[3, 1, 0] == pytest.approx(ref.slope) and coef[3, 1, 1] == pytest.approx(ref.intercept)
    # end to end: intervals contain the point prediction and the truth
    law = fit_data_dependent(_datasets(sigma=0.003), grid="muennighoff", n_boot=40, seed=3)
    assert law.bootstrap.shape == (40, 5, 2)
    n, d = np.array([1e8, 1e9]), np.array([1e7, 1e8])
    lo, hi = law.predict_interval(n, d, 0.45)
    pred = law.predict(n, d, 0.45)
    truth = chinchilla_loss(n, d, make_law().params_at(0.45))
    assert ((lo <= pred) & (pred <= hi)).all()
    # the middle of the grid (N=1e9, D=1e8): covered for 6 of 6 data seeds; the corner N=1e8,
    # D=1e7 for 5 of 6 (this seed is the miss), as expected of 95% intervals from 40 replicates
    assert lo[1] <= truth[1] <= hi[1]
    assert (hi - lo < 0.02 * pred).all()
    back = law_from_dict(law.to_json_dict())
    np.testing.assert_array_equal(back.bootstrap, law.bootstrap)
    with pytest.raises(ValueError, match="has no bootstrap replicates"):
        make_law().predict_interval(n, d, 0.45)
