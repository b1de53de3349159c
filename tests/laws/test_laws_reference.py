"""Differential tests: the batched fitter against the slow references in pygzlaw.laws.reference."""
import numpy as np
import pytest

from pygzlaw.laws.fit import HuberLSE, _huber_1d, fit_chinchilla, make_grid
from pygzlaw.laws.reference import fit_chinchilla_reference, huber_objective_reference


def test_objectives_agree(runs):
    log_n, log_d, log_l = (np.log(v) for v in runs)
    x = make_grid("hoffmann")[::211]
    f_batch, g_batch = HuberLSE(log_n, log_d, log_l, 1e-3)(x)
    for i, xi in enumerate(x):
        ref = huber_objective_reference(xi, *runs)
        assert f_batch[i] == pytest.approx(ref, rel=1e-12)
        f1, g1 = _huber_1d(xi, log_n, log_d, log_l, 1e-3)
        assert f1 == pytest.approx(ref, rel=1e-12)
        np.testing.assert_allclose(g1, g_batch[i], rtol=1e-9, atol=1e-300)


def test_batched_fit_at_least_as_good_as_reference(runs):
    grid = make_grid("muennighoff")[::64]                      # 16 starts keep the slow reference quick
    ref_params, ref_f = fit_chinchilla_reference(*runs, grid=grid)
    ours = fit_chinchilla(*runs, grid=grid)
    assert ours.objective <= ref_f * (1 + 1e-9)
    for k, v in ref_params.to_dict().items():
        assert getattr(ours.params, k) == pytest.approx(v, rel=0.02), k
