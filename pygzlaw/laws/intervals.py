"""Percentile intervals of bootstrap samples, cheap enough for per-request use."""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["percentile_interval", "replicate_se"]


def replicate_se(samples, axis: int = 0) -> np.ndarray:
    """Standard error from bootstrap replicates: their sample standard deviation (ddof 1).

    Computed on the replicates divided by their largest magnitude, so that heavy-tailed
    replicates (A or B of a poorly identified fit spread over many decades, up to ~1e300) give
    a finite number instead of overflowing the squares.

    Args:
        samples: float array, replicates along ``axis`` (finite).

    Returns:
        float64 array of the remaining shape; NaN where there are fewer than 2 replicates.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.shape[axis] < 2:
        return np.full(np.delete(x.shape, axis), np.nan)
    scale = np.max(np.abs(x), axis=axis, keepdims=True)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return (x / scale).std(axis=axis, ddof=1) * np.squeeze(scale, axis)


def percentile_interval(samples, level: float, axis: int = 0, monotone=None) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) percentile interval of ``samples`` along ``axis``.

    Equals ``np.quantile(samples, [q, 1 - q], axis=axis)`` with q = (1 - level) / 2
    (method "linear", bit for bit; tested) but sorts once (np.partition beyond 20000
    replicates): ~20 us instead of ~105 us for 1000 replicates x 3 points.

    Args:
        samples: float array, replicates along ``axis``.
        level: coverage in (0, 1), e.g. 0.95.
        monotone: optional non-decreasing elementwise function f (e.g. np.exp): the interval of
            f(samples), computed by applying f to the few order statistics only (sorting f(x)
            and x give the same order, so the values are those of f applied first).

    Returns:
        (lo, hi): float64 arrays of the remaining shape (0-d for 1-D input).
    """
    # Select along the last axis: contiguous when the caller keeps replicates last (law.py
    # does), and the order statistics, hence the result, do not depend on the layout.
    x = np.asarray(samples, dtype=np.float64)
    if axis not in (-1, x.ndim - 1):
        x = np.moveaxis(x, axis, -1)
    prev, nxt, frac, kth = _plan(x.shape[-1], float(level))
    # A full sort beats np.partition with 4 kth here: numpy sorts float64 with AVX2 (x86-simd-sort)
    # but partitions with several kth by scalar introselect (1000 values: ~7 vs ~13 us). Either
    # puts the same order statistics at the kth positions.
    part = np.sort(x, axis=-1) if x.shape[-1] <= _SORT_MAX else np.partition(x, kth, axis=-1)
    out = []
    for j in range(2):
        a, b, t = part[..., prev[j]], part[..., nxt[j]], frac[j]
        if monotone is not None:
            a, b = monotone(a), monotone(b)
        d = b - a
        # numpy's _lerp: interpolate from the nearer end, for monotonicity
        out.append(b - d * (1 - t) if t >= 0.5 else a + d * t)
    return out[0], out[1]


_SORT_MAX = 20000                  # replicates; beyond this O(n) selection wins over O(n log n) sorting


@functools.lru_cache(maxsize=64)
def _plan(n: int, level: float):
    """Order-statistic indices and weights for n replicates at ``level``: the same for every
    request against one law, and ~40 us of small numpy calls (np.unique most) to derive."""
    q_lo = (1 - level) / 2
    h = np.array([q_lo, 1 - q_lo]) * (n - 1)          # numpy's virtual indices
    prev = np.floor(h).astype(np.intp)
    nxt = np.minimum(prev + 1, n - 1)
    kth = np.unique(np.concatenate([prev, nxt]))
    kth.flags.writeable = False                        # shared between calls
    return (tuple(int(i) for i in prev), tuple(int(i) for i in nxt),
            tuple(float(h[j] - prev[j]) for j in range(2)), kth)
