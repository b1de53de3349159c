"""percentile_interval is np.quantile (method "linear"), bit for bit."""
import numpy as np
import pytest

from pygzlaw.laws.intervals import percentile_interval


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.95, 0.99, 0.3137])
def test_equals_numpy_quantile(seed, level):
    rng = np.random.default_rng(seed)
    for n in (1, 2, 3, 17, 1000, 1001):
        x = rng.normal(size=(n, 3)) * 10 ** rng.uniform(-3, 3)
        q = (1 - level) / 2
        want = np.quantile(x, [q, 1 - q], axis=0)
        got = percentile_interval(x, level)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_axis_argument():
    x = np.random.default_rng(0).normal(size=(4, 500, 2))
    q = (1 - 0.95) / 2
    want = np.quantile(x, [q, 1 - q], axis=1)
    lo, hi = percentile_interval(x, 0.95, axis=1)
    np.testing.assert_array_equal(lo, want[0])
    np.testing.assert_array_equal(hi, want[1])


def test_many_replicates_take_the_partition_branch():
    x = np.random.default_rng(3).normal(size=(2, 20001))
    q = (1 - 0.95) / 2
    want = np.quantile(x, [q, 1 - q], axis=-1)
    np.testing.assert_array_equal(percentile_interval(x, 0.95, axis=-1), want)


def test_replicates_on_the_last_axis_and_monotone_transform():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 1000))
    q = (1 - 0.9) / 2
    want = np.quantile(np.exp(x), [q, 1 - q], axis=-1)
    lo, hi = percentile_interval(x, 0.9, axis=-1, monotone=np.exp)   # exp of the order statistics only
    np.testing.assert_array_equal(lo, want[0])
    np.testing.assert_array_equal(hi, want[1])


def test_law_intervals_equal_quantiles_of_all_replicates():
    """ChinchillaLaw's interval shortcuts (replicates last, exp after selection) against the plain
    recipe: every replicate's value, then np.quantile."""
    from pygzlaw.laws.forms import ChinchillaParams
    from pygzlaw.laws.law import ChinchillaLaw

    rng = np.random.default_rng(2)
    p = ChinchillaParams(E=1.8, A=480.0, B=2000.0, alpha=0.35, beta=0.37)
    law = ChinchillaLaw(params=p, bootstrap=np.array(list(p.to_dict().values())) * np.exp(
        rng.normal(0, 0.02, size=(999, 5))))
    e, a, b, al, be = law.bootstrap.T
    n, d = 10 ** rng.uniform(6, 12, 5), 10 ** rng.uniform(7, 13, 5)
    for level in (0.95, 0.8):
        qs = [(1 - level) / 2, (1 + level) / 2]
        samples = e[:, None] + np.exp(np.log(a)[:, None] - al[:, None] * np.log(n)) \
            + np.exp(np.log(b)[:, None] - be[:, None] * np.log(d))
        np.testing.assert_array_equal(law.predict_interval(n, d, level=level), np.quantile(samples, qs, axis=0))
        c = 10 ** rng.uniform(18, 24, 4)
        s = al + be
        log_g = (np.log(al) + np.log(a) - np.log(be) - np.log(b)) / s
        log_c = np.log(c / 6.0)
        log_n = log_g[:, None] + (be / s)[:, None] * log_c
        log_d = -log_g[:, None] + (al / s)[:, None] * log_c
        loss = e[:, None] + np.exp(np.log(a)[:, None] - al[:, None] * log_n) \
            + np.exp(np.log(b)[:, None] - be[:, None] * log_d)
        got = law.allocate_interval(c, level=level)
        for k, v in {"n_params": np.exp(log_n), "n_tokens": np.exp(log_d), "tokens_per_param": np.exp(log_d - log_n),
                     "loss": loss}.items():
            np.testing.assert_array_equal(got[k], np.quantile(v, qs, axis=0), err_msg=k)


def test_replicate_se_is_the_sample_std_without_overflow():
    import statistics
    import warnings

    from pygzlaw.laws.intervals import replicate_se

    rng = np.random.default_rng(0)
    x = rng.lognormal(size=(200, 3))
    np.testing.assert_allclose(replicate_se(x), x.std(axis=0, ddof=1), rtol=1e-12)
    # A of an unidentified fit: replicates over 300 decades; squaring them overflows float64
    heavy = np.array([1e-5, 3.0, 2e300, 7e299, 1e250])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        se = float(replicate_se(heavy))
    assert np.isfinite(se)
    assert se == pytest.approx(statistics.stdev(heavy), rel=1e-12)   # exact-arithmetic stdev
    assert np.isnan(replicate_se(np.ones((1, 4)))).all()             # one replicate: no se
