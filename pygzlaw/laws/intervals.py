"""Percentile intervals of bootstrap samples, cheap enough for per-request use."""
from __future__ import annotations

import numpy as np

__all__ = ["percentile_interval"]


def percentile_interval(samples, level: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) percentile interval of ``samples`` along ``axis``.

    Equals ``np.quantile(samples, [q, 1 - q], axis=axis)`` with q = (1 - level) / 2
    (method "linear", bit for bit; tested) but uses one ``np.partition``: ~45 us
    instead of ~105 us for 1000 replicates, which is most of a predict request.

    Args:
        samples: float array, replicates along ``axis``.
        level: coverage in (0, 1), e.g. 0.95.

    Returns:
        (lo, hi): float64 arrays of the remaining shape (0-d for 1-D input).
    """
    x = np.moveaxis(np.asarray(samples, dtype=np.float64), axis, 0)
    n = x.shape[0]
    q_lo = (1 - level) / 2
    h = np.array([q_lo, 1 - q_lo]) * (n - 1)          # numpy's virtual indices
    prev = np.floor(h).astype(np.intp)
    nxt = np.minimum(prev + 1, n - 1)
    part = np.partition(x, np.unique(np.concatenate([prev, nxt])), axis=0)
    out = []
    for j in range(2):
        a, b, t = part[prev[j]], part[nxt[j]], h[j] - prev[j]
        d = b - a
        # numpy's _lerp: interpolate from the nearer end, for monotonicity
        out.append(b - d * (1 - t) if t >= 0.5 else a + d * t)
    return out[0], out[1]
