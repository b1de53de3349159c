"""Summary statistics of gzip ratios: exact in memory, mergeable sketch for streams.

The paper's dataset statistic is the median (with the sample standard deviation) of
per-document ratios (Pandey 2024, section 3). :func:`summarize` computes it exactly
from an array. :class:`RatioSketch` serves streams and shards scanned on different
machines:

* count, mean, sample std, min, max: exact and mergeable (Chan et al.'s pairwise
  update of count/mean/M2);
* histogram on fixed edges: exact counts, mergeable when the edges agree;
* quantiles: exact while the sketch holds at most ``exact_limit`` values (1M by
  default, 8 MB); beyond that from Apache DataSketches' KLL sketch (``k=200``), whose
  a-priori normalized rank error is ``KLL_RANK_ERROR`` = 1.33% at 99% confidence: a
  reported q-quantile has true rank within q +/- 0.0133 of n. KLL compaction is
  randomised, so sketched quantiles can differ between runs within that bound;
  exact quantiles are deterministic. Summaries say which method they used.
"""
from __future__ import annotations

import base64
import math
import zlib
from typing import Iterable

import numpy as np

__all__ = ["QUANTILES", "HIST_RANGE", "KLL_K", "KLL_RANK_ERROR", "summarize", "RatioSketch"]

QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
# Histogram (lo, hi, n_bins): ratios of 1 KB windows live in ~[0.05, 1.05]; 0.01 bins.
HIST_RANGE = (0.0, 1.5, 150)
KLL_K = 200
EXACT_LIMIT = 1 << 20


def _kll_rank_error(k: int) -> float:
    from datasketches import kll_doubles_sketch

    return float(kll_doubles_sketch.get_normalized_rank_error(k, False))


KLL_RANK_ERROR = 0.013294757464848584  # _kll_rank_error(200), checked in the tests


def _finite(values) -> tuple[np.ndarray, int]:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    ok = np.isfinite(v)
    n_bad = int(v.shape[0] - ok.sum())
    return (v if n_bad == 0 else v[ok]), n_bad


def _histogram(v: np.ndarray, hist_range) -> tuple[np.ndarray, int, int]:
    lo, hi, n_bins = hist_range
    counts, _ = np.histogram(v, bins=n_bins, range=(lo, hi))
    # np.histogram puts hi into the last bin; everything outside is counted apart.
    below = int((v < lo).sum())
    above = int((v > hi).sum())
    return counts.astype(np.int64), below, above


def summarize(ratios, *, quantiles: Iterable[float] = QUANTILES, hist_range=HIST_RANGE) -> dict:
    """Exact statistics of a ratio array (NaN/inf are counted apart and excluded).

    Args:
        ratios: float array of any shape (flattened).
        quantiles: probabilities in [0, 1] (linear interpolation, numpy's default).
        hist_range: (lo, hi, n_bins) of the fixed-edge histogram.

    Returns:
        dict with count, nonfinite, mean, median, std (sample, ddof=1; None below 2
        values), min, max, quantiles {"0.5": ...}, histogram, quantile_method="exact".
    """
    v, n_bad = _finite(ratios)
    n = int(v.shape[0])
    qs = [float(q) for q in quantiles]
    counts, below, above = _histogram(v, hist_range)
    out = {
        "count": n,
        "nonfinite": n_bad,
        "mean": float(v.mean()) if n else None,
        "median": float(np.median(v)) if n else None,
        "std": float(v.std(ddof=1)) if n > 1 else None,
        "min": float(v.min()) if n else None,
        "max": float(v.max()) if n else None,
        "quantiles": {repr(q): (float(np.quantile(v, q)) if n else None) for q in qs},
        "histogram": _hist_dict(counts, below, above, hist_range),
        "quantile_method": "exact",
        "rank_error": 0.0,
    }
    return out


def _hist_dict(counts, below, above, hist_range) -> dict:
    lo, hi, n_bins = hist_range
    return {"lo": lo, "hi": hi, "n_bins": n_bins, "counts": [int(c) for c in counts],
            "below": below, "above": above}


class RatioSketch:
    """Streaming, mergeable, serialisable summary of ratios (see the module docstring).

    Args:
        k: KLL accuracy parameter (200: 1.33% normalized rank error, 99% confidence).
        exact_limit: keep every value (exact quantiles) up to this many; 0 = never.
        hist_range: (lo, hi, n_bins); sketches merge only with equal ranges.
    """

    def __init__(self, k: int = KLL_K, exact_limit: int = EXACT_LIMIT, hist_range=HIST_RANGE):
        from datasketches import kll_doubles_sketch

        if k < 8:
            raise ValueError(f"k={k} is too small; KLL needs k >= 8 (200 is the default)")
        self.k = int(k)
        self.exact_limit = int(exact_limit)
        self.hist_range = (float(hist_range[0]), float(hist_range[1]), int(hist_range[2]))
        self._kll = kll_doubles_sketch(self.k)
        self.count = 0
        self.nonfinite = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self._hist = np.zeros(self.hist_range[2], dtype=np.int64)
        self._below = 0
        self._above = 0
        self._exact: list[np.ndarray] | None = [] if self.exact_limit > 0 else None

    @property
    def rank_error(self) -> float:
        """0 while exact, else KLL's a-priori normalized rank error (99% confidence)."""
        return 0.0 if self.is_exact else _kll_rank_error(self.k)

    @property
    def is_exact(self) -> bool:
        return self._exact is not None

    def update(self, values) -> None:
        """Add a batch of ratios (any shape; NaN/inf are counted in ``nonfinite`` only)."""
        v, n_bad = _finite(values)
        self.nonfinite += n_bad
        n = int(v.shape[0])
        if n == 0:
            return
        self._merge_moments(n, float(v.mean()), float(((v - v.mean()) ** 2).sum()),
                            float(v.min()), float(v.max()))
        counts, below, above = _histogram(v, self.hist_range)
        self._hist += counts
        self._below += below
        self._above += above
        self._kll.update(v)
        if self._exact is not None:
            if self.count <= self.exact_limit:
                self._exact.append(v.copy())
            else:
                self._exact = None

    def _merge_moments(self, n: int, mean: float, m2: float, vmin: float, vmax: float) -> None:
        tot = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / tot
        self.m2 += m2 + delta * delta * self.count * n / tot
        self.count = tot
        self.min = min(self.min, vmin)
        self.max = max(self.max, vmax)

    def merge(self, other: "RatioSketch") -> "RatioSketch":
        """Fold another sketch in (in place; returns self)."""
        if other.hist_range != self.hist_range:
            raise ValueError(f"cannot merge sketches with histogram ranges {self.hist_range} "
                             f"and {other.hist_range}")
        if other.k != self.k:
            raise ValueError(f"cannot merge KLL sketches with k={self.k} and k={other.k}")
        self.nonfinite += other.nonfinite
        if other.count:
            self._merge_moments(other.count, other.mean, other.m2, other.min, other.max)
        self._hist += other._hist
        self._below += other._below
        self._above += other._above
        self._kll.merge(other._kll)
        if self._exact is not None and other._exact is not None and self.count <= self.exact_limit:
            self._exact.extend(other._exact)
        else:
            self._exact = None
        return self

    def values(self) -> np.ndarray | None:
        """All values seen (float64, in update order) while exact, else None."""
        if self._exact is None:
            return None
        return np.concatenate(self._exact) if self._exact else np.zeros(0)

    def summary(self, quantiles: Iterable[float] = QUANTILES) -> dict:
        """Statistics dict (same keys as :func:`summarize`)."""
        qs = [float(q) for q in quantiles]
        n = self.count
        if self.is_exact:
            out = summarize(self.values(), quantiles=qs, hist_range=self.hist_range)
            out["nonfinite"] = self.nonfinite
            return out
        return {
            "count": n,
            "nonfinite": self.nonfinite,
            "mean": self.mean if n else None,
            "median": float(self._kll.get_quantile(0.5)) if n else None,
            "std": math.sqrt(self.m2 / (n - 1)) if n > 1 else None,
            "min": self.min if n else None,
            "max": self.max if n else None,
            "quantiles": {repr(q): (float(self._kll.get_quantile(q)) if n else None) for q in qs},
            "histogram": _hist_dict(self._hist, self._below, self._above, self.hist_range),
            "quantile_method": f"kll(k={self.k})",
            "rank_error": self.rank_error,
        }

    def to_dict(self) -> dict:
        """JSON-serialisable state (the KLL sketch and exact values as base64)."""
        exact = None
        if self._exact is not None:
            exact = base64.b64encode(zlib.compress(self.values().astype("<f8").tobytes(), 6)).decode()
        return {
            "format": "pygzlaw.RatioSketch/1", "k": self.k, "exact_limit": self.exact_limit,
            "hist_range": list(self.hist_range), "count": self.count,
            "nonfinite": self.nonfinite, "mean": self.mean, "m2": self.m2,
            "min": self.min if self.count else None, "max": self.max if self.count else None,
            "hist_counts": self._hist.tolist(), "below": self._below, "above": self._above,
            "kll": base64.b64encode(self._kll.serialize()).decode(), "exact": exact,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "RatioSketch":
        """Inverse of :meth:`to_dict`."""
        from datasketches import kll_doubles_sketch

        if d.get("format") != "pygzlaw.RatioSketch/1":
            raise ValueError(f"not a pygzlaw RatioSketch (format={d.get('format')!r})")
        s = cls(k=d["k"], exact_limit=d["exact_limit"], hist_range=tuple(d["hist_range"]))
        s.count = int(d["count"])
        s.nonfinite = int(d["nonfinite"])
        s.mean = float(d["mean"])
        s.m2 = float(d["m2"])
        s.min = math.inf if d["min"] is None else float(d["min"])
        s.max = -math.inf if d["max"] is None else float(d["max"])
        s._hist = np.asarray(d["hist_counts"], dtype=np.int64)
        s._below = int(d["below"])
        s._above = int(d["above"])
        s._kll = kll_doubles_sketch.deserialize(base64.b64decode(d["kll"]))
        if d["exact"] is None:
            s._exact = None
        else:
            raw = zlib.decompress(base64.b64decode(d["exact"]))
            s._exact = [np.frombuffer(raw, dtype="<f8").astype(np.float64)]
        return s
