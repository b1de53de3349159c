import numpy as np
import pytest
from lawsdata import TRUE_PARAMS, synthetic_runs

from pygzlaw.laws.diagnostics import flag_outliers, holdout_by_compute, leave_one_out
from pygzlaw.laws.fit import fit_chinchilla


def test_leave_one_out_matches_individual_refits(runs):
    res = fit_chinchilla(*runs, grid="muennighoff")
    loo = leave_one_out(*runs, res)
    assert loo["params"].shape == (64, 5)
    # errors at the level of the 0.3% noise
    assert 0.001 < loo["median_abs_rel_error"] < 0.006
    # one refit done the slow way agrees
    keep = np.arange(64) != 10
    single = fit_chinchilla(runs[0][keep], runs[1][keep], runs[2][keep], grid="muennighoff").params
    np.testing.assert_allclose(loo["params"][10], list(single.to_dict().values()), rtol=2e-3)


def test_holdout_extrapolation_small_on_clean_law():
    n, d, loss = synthetic_runs(sigma=0.001)
    rep = holdout_by_compute(n, d, loss, train_max_flops=1e20)
    assert rep.n_train > 20 and rep.n_test > 5
    assert rep.median_abs_rel_error < 0.01
    assert (rep.test_flops > 1e20).all()
    with pytest.raises(ValueError, match="nothing is held out"):
        holdout_by_compute(n, d, loss, train_max_flops=1e40)


def test_flag_outliers_finds_injected_point():
    n, d, loss = synthetic_runs()
    loss = loss.copy()
    loss[5] *= 1.10
    mask = flag_outliers(n, d, loss, TRUE_PARAMS)
    assert mask[5] and mask.sum() <= 2
