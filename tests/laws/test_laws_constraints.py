"""Constrained Chinchilla fits (tie alpha = beta, fix any parameter) and distinct minima (issue 12)."""
import numpy as np
import pytest
from lawsdata import synthetic_runs

from pygzlaw.laws.fit import MINIMA_TOL, Constraint, bootstrap_chinchilla, fit_chinchilla
from pygzlaw.laws.forms import ChinchillaParams, chinchilla_loss
from pygzlaw.laws.law import ChinchillaLaw

TIED = ChinchillaParams(E=1.8, A=480.0, B=2000.0, alpha=0.36, beta=0.36)


@pytest.fixture(scope="module")
def tied_runs():
    n, d, _ = synthetic_runs()
    loss = chinchilla_loss(n, d, TIED) * np.exp(np.random.default_rng(5).normal(0, 0.003, n.size))
    return n, d, loss


def test_tie_alpha_beta(tied_runs):
    res = fit_chinchilla(*tied_runs, grid="muennighoff", tie="alpha=beta")
    assert res.params.alpha == res.params.beta == pytest.approx(0.36, abs=0.01)
    assert res.n_starts == 256                        # 1024 starts projected on alpha = beta, duplicates dropped
    boot = bootstrap_chinchilla(*tied_runs, res, n_boot=10, seed=1)
    assert np.array_equal(boot[:, 3], boot[:, 4])     # replicates keep the tie


def test_fix_e_and_fix_all_base_constants(runs):
    res = fit_chinchilla(*runs, grid="muennighoff", fix={"E": 1.8})
    assert res.params.E == 1.8 and res.params.alpha == pytest.approx(0.35, abs=0.02)
    res = fit_chinchilla(*runs, grid="muennighoff", fix={"E": 1.8, "A": 480.0, "B": 2000.0})
    assert (res.params.E, res.params.A, res.params.B) == pytest.approx((1.8, 480.0, 2000.0), rel=1e-12)
    assert res.params.alpha == pytest.approx(0.35, abs=0.005) and res.params.beta == pytest.approx(0.37, abs=0.005)


def test_tie_with_fixed_exponent_through_one_name(runs):
    res = fit_chinchilla(*runs, grid="muennighoff", tie="alpha=beta", fix={"alpha": 0.36})
    assert res.params.alpha == res.params.beta == 0.36


@pytest.mark.parametrize("kw, msg", [
    ({"fix": {"C": 1.0}}, "fix: unknown parameter 'C'"),
    ({"fix": {"A": -1.0}}, r"fix: A=-1.0 must be a finite number > 0"),
    ({"tie": "A=B"}, "only 'alpha=beta' is supported"),
    ({"tie": "alpha=beta", "fix": {"alpha": 0.3, "beta": 0.4}}, "differ but tie=alpha=beta"),
    ({"fix": {"E": 1.0, "A": 1.0, "B": 1.0, "alpha": 0.3, "beta": 0.3}}, "every parameter is fixed"),
])
def test_bad_constraints_are_named(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Constraint(**kw)


def test_law_records_constraint(tied_runs):
    law = ChinchillaLaw.fit(*tied_runs, grid="muennighoff", tie="alpha=beta", n_boot=10)
    assert law.fit_info["constraint"] == {"tie": "alpha=beta", "fixed": {}}
    assert law.params.alpha == law.params.beta


def test_minima_stay_distinct_after_polishing(runs):
    res = fit_chinchilla(*runs, grid="hoffmann", polish=4)
    m = res.minima
    assert m.shape[0] >= 2 and m.shape[1] == 5
    gaps = np.abs(m[:, None, :] - m[None, :, :]).max(-1)
    assert (gaps[~np.eye(len(m), dtype=bool)] > MINIMA_TOL).all()
    np.testing.assert_allclose(m[0], res.params.to_log(), atol=1e-9)   # the best minimum is the fit
