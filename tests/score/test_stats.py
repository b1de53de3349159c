"""Statistics: exact summaries, and a KLL-backed sketch that merges and serialises."""
import json

import numpy as np
import pytest
from datasketches import kll_doubles_sketch

from pygzlaw.score.stats import KLL_K, KLL_RANK_ERROR, QUANTILES, RatioSketch, summarize


def test_summarize_matches_numpy():
    v = np.random.default_rng(0).normal(0.4, 0.05, 1001)
    s = summarize(np.append(v, [np.nan, np.inf]))
    assert s["count"] == 1001 and s["nonfinite"] == 2
    assert s["median"] == np.median(v) and s["std"] == v.std(ddof=1) and s["mean"] == v.mean()
    assert s["quantiles"]["0.25"] == np.quantile(v, 0.25)
    h = s["histogram"]
    assert sum(h["counts"]) + h["below"] + h["above"] == 1001
    json.dumps(s, allow_nan=False)


def test_summarize_small_and_empty():
    assert summarize([0.5])["std"] is None
    e = summarize([])
    assert e["count"] == 0 and e["median"] is None


def test_stated_rank_error_is_the_library_value():
    assert KLL_RANK_ERROR == kll_doubles_sketch.get_normalized_rank_error(KLL_K, False)


def test_exact_sketch_equals_summarize_and_merges():
    v = np.random.default_rng(1).random(5000)
    a, b = RatioSketch(), RatioSketch()
    a.update(v[:1234])
    b.update(v[1234:])
    a.merge(b)
    want = summarize(v)
    got = a.summary()
    assert got["quantile_method"] == "exact"
    assert got["median"] == want["median"] and got["quantiles"] == want["quantiles"]
    assert got["std"] == pytest.approx(want["std"], rel=1e-12)
    assert got["histogram"] == want["histogram"]


def test_kll_sketch_within_stated_bound_and_roundtrip():
    rng = np.random.default_rng(2)
    v = rng.beta(5, 8, 300_000)
    parts = []
    for chunk in np.array_split(v, 6):  # six "machines"
        s = RatioSketch(exact_limit=1000)
        s.update(chunk)
        parts.append(RatioSketch.from_dict(json.loads(json.dumps(s.to_dict()))))
    merged = parts[0]
    for p in parts[1:]:
        merged.merge(p)
    got = merged.summary()
    assert got["quantile_method"].startswith("kll") and got["rank_error"] == KLL_RANK_ERROR
    assert got["count"] == v.size
    assert got["mean"] == pytest.approx(v.mean(), rel=1e-12)      # moments stay exact
    assert got["std"] == pytest.approx(v.std(ddof=1), rel=1e-9)
    assert got["min"] == v.min() and got["max"] == v.max()
    sorted_v = np.sort(v)
    for q in QUANTILES:
        rank = np.searchsorted(sorted_v, got["quantiles"][repr(q)]) / v.size
        assert abs(rank - q) <= 2 * KLL_RANK_ERROR  # bound holds at 99% per quantile


def test_sketch_switches_to_kll_past_exact_limit():
    s = RatioSketch(exact_limit=100)
    s.update(np.linspace(0, 1, 60))
    assert s.is_exact
    s.update(np.linspace(0, 1, 60))
    assert not s.is_exact and s.values() is None and s.count == 120


def test_merge_refuses_different_histograms():
    with pytest.raises(ValueError, match="histogram ranges"):
        RatioSketch().merge(RatioSketch(hist_range=(0, 2, 10)))
    with pytest.raises(ValueError, match="not a pygzlaw RatioSketch"):
        RatioSketch.from_dict({"format": "x"})
