import math

import numpy as np
import pytest

from pygzlaw.laws.forms import (HOFFMANN_PARAMS, MUENNIGHOFF_PARAMS, ChinchillaParams, DataConstrainedParams,
                                ErrorParams, OvertrainParams, chinchilla_log_loss, chinchilla_loss,
                                data_constrained_loss, downstream_error, effective_params, effective_tokens,
                                overtrain_loss)


def test_chinchilla_matches_direct_formula():
    p = HOFFMANN_PARAMS
    n = np.array([1e6, 7e10, 1e12])
    d = np.array([1e8, 1.4e12, 1e15])
    direct = p.E + p.A / n ** p.alpha + p.B / d ** p.beta
    np.testing.assert_allclose(chinchilla_loss(n, d, p), direct, rtol=1e-13)
    np.testing.assert_allclose(chinchilla_log_loss(n, d, p), np.log(direct), rtol=1e-13)


def test_no_overflow_for_extreme_exponents():
    p = ChinchillaParams(E=1.0, A=1e300, B=1.0, alpha=0.0, beta=50.0)
    out = chinchilla_log_loss(np.array([10.0]), np.array([1e10]), p)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_float32_input_raises(dtype):
    with pytest.raises(ValueError, match=r"n_params has dtype float(32|16); pass float64"):
        chinchilla_loss(np.array([1e4], dtype=dtype), np.array([1e10]), HOFFMANN_PARAMS)


@pytest.mark.parametrize("bad, msg", [(0.0, r"n_tokens\[1\] = 0.0 is not positive"),
                                      (-5.0, r"n_tokens\[1\] = -5.0 is not positive"),
                                      (np.nan, r"n_tokens\[1\] = nan is not finite"),
                                      (np.inf, r"n_tokens\[1\] = inf is not finite")])
def test_bad_values_named(bad, msg):
    with pytest.raises(ValueError, match=msg):
        chinchilla_loss(np.array([1e9, 1e9]), np.array([1e10, bad]), HOFFMANN_PARAMS)


def test_params_validation_and_round_trip():
    d = HOFFMANN_PARAMS.to_dict()
    assert ChinchillaParams.from_dict(d) == HOFFMANN_PARAMS
    with pytest.raises(ValueError, match="A = -1.0 must be > 0"):
        ChinchillaParams(E=1.0, A=-1.0, B=1.0, alpha=0.3, beta=0.3)
    with pytest.raises(ValueError, match=r"missing field\(s\) \['beta'\]"):
        ChinchillaParams.from_dict({k: v for k, v in d.items() if k != "beta"})
    with pytest.raises(ValueError, match="must be a finite number"):
        ChinchillaParams(E=1.0, A=1.0, B=1.0, alpha=float("nan"), beta=0.3)
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['gamma'\]"):
        ChinchillaParams.from_dict({**d, "gamma": 1.0})
    with pytest.raises(Exception):
        HOFFMANN_PARAMS.E = 2.0  # frozen


def test_log_round_trip():
    x = HOFFMANN_PARAMS.to_log()
    assert ChinchillaParams.from_log(x).to_dict() == pytest.approx(HOFFMANN_PARAMS.to_dict(), rel=1e-14)


def test_overtrain_equals_chinchilla_form():
    p = OvertrainParams(E=1.7, a=150.0, b=250.0, eta=0.12)
    n = np.array([1e7, 4e8, 7e9])
    d = np.array([2e8, 8e9, 1.4e11]) * np.array([1.0, 16.0, 1.0])
    c, m = 6 * n * d, d / n
    np.testing.assert_allclose(overtrain_loss(c, m, p), chinchilla_loss(n, d, p.to_chinchilla()), rtol=1e-12)


def test_downstream_error_formula():
    p = ErrorParams(epsilon=0.76, k=1.3, gamma=0.9)
    assert downstream_error(np.array([3.0]), p)[0] == pytest.approx(0.76 - 1.3 * math.exp(-2.7))


def test_effective_tokens_limits():
    u = 1e9
    np.testing.assert_allclose(effective_tokens(np.array([5e8, 1e9]), u, 15.388), [5e8, 1e9])
    # saturates at U_D (1 + R_D*), reaches ~63% of the extra at R_D = R_D*
    big = effective_tokens(np.array([1e14]), u, 15.388)[0]
    assert big == pytest.approx(u * (1 + 15.388), rel=1e-9)
    mid = effective_tokens(np.array([u * (1 + 15.388)]), u, 15.388)[0]
    assert (mid - u) / (u * 15.388) == pytest.approx(1 - math.exp(-1), rel=1e-12)
    # each repeated epoch is worth less than the one before
    d = u * np.arange(1, 10, dtype=np.float64)
    gains = np.diff(effective_tokens(d, u, 15.388))
    assert (np.diff(gains) < 0).all()


def test_data_constrained_reduces_to_chinchilla_without_repetition():
    p = MUENNIGHOFF_PARAMS
    n = np.array([1e8])
    d = np.array([2e9])
    # plenty of unique data and a small model: N' = N, D' = D
    np.testing.assert_allclose(data_constrained_loss(n, d, np.array([1e12]), p), chinchilla_loss(n, d, p.base),
                               rtol=1e-12)
    np.testing.assert_allclose(effective_params(n, np.array([1e12]), p), n, rtol=1e-12)
    # repetition makes loss worse than the same tokens unique
    assert data_constrained_loss(n, np.array([4e10]), np.array([1e9]), p)[0] > chinchilla_loss(n, 4e10, p.base)[0]
    assert isinstance(DataConstrainedParams.from_dict(p.to_dict()), DataConstrainedParams)
