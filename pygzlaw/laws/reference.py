"""Slow, obviously correct references for the laws stage (tests compare the fast paths to these).

- ``huber_objective_reference``: the Approach-3 objective for one parameter vector, written
  straight from the formula with np.logaddexp (no shifting tricks, no buffers, no batching).
- ``fit_chinchilla_reference``: the published procedure, one scipy L-BFGS-B call per start
  (numerical gradients, scipy's defaults), best start kept.
"""
from __future__ import annotations

import numpy as np

from pygzlaw.laws.fit import make_grid
from pygzlaw.laws.forms import ChinchillaParams, as_float64

__all__ = ["huber_objective_reference", "fit_chinchilla_reference"]


def huber_objective_reference(x, n_params, n_tokens, loss, delta=1e-3) -> float:
    """sum_i Huber_delta(LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i), x = (a, b, e, alpha, beta)."""
    a, b, e, alpha, beta = (float(v) for v in x)
    log_n, log_d, log_l = np.log(n_params), np.log(n_tokens), np.log(loss)
    pred = np.logaddexp(np.logaddexp(a - alpha * log_n, b - beta * log_d), e)
    r = pred - log_l
    return float(np.sum(np.where(np.abs(r) <= delta, 0.5 * r ** 2, delta * (np.abs(r) - 0.5 * delta))))


def fit_chinchilla_reference(n_params, n_tokens, loss, *, grid="muennighoff", huber_delta=1e-3):
    """Per-start scipy L-BFGS-B (finite-difference gradients), best start kept.

    Returns:
        (ChinchillaParams, objective).
    """
    from scipy.optimize import minimize

    from pygzlaw.laws._threads import one_blas_thread

    n_params = as_float64("n_params", n_params)
    n_tokens = as_float64("n_tokens", n_tokens)
    loss = as_float64("loss", loss)
    best_x, best_f = None, np.inf
    for x0 in make_grid(grid):
        with np.errstate(all="ignore"), one_blas_thread():
            res = minimize(huber_objective_reference, x0, args=(n_params, n_tokens, loss, huber_delta),
                           method="L-BFGS-B")
        if np.isfinite(res.fun) and res.fun < best_f:
            best_x, best_f = res.x, float(res.fun)
    if best_x is None:
        raise ValueError("no start gave a finite objective")
    return ChinchillaParams.from_log(best_x), best_f
