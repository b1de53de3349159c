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
