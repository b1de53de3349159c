"""Fit diagnostics: leave-one-out and held-out-extrapolation errors, outlier flags."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pygzlaw.laws.fit import FitResult, _prepare, fit_chinchilla, refit_weighted
from pygzlaw.laws.forms import ChinchillaParams, as_float64, chinchilla_loss

__all__ = ["leave_one_out", "holdout_by_compute", "HoldoutReport", "flag_outliers"]


def leave_one_out(n_params, n_tokens, loss, fit: FitResult, *, n_warm=4) -> dict:
    """Leave-one-out refits, all batched (point i gets weight 0 in refit i), warm-started from fit.

    Args:
        n_params, n_tokens, loss: (n,) runs as given to fit_chinchilla.
        fit: the full-data fit.
        n_warm: warm starts per refit.

    Returns:
        {"params": (n, 5) (E, A, B, alpha, beta) per refit, "rel_error": (n,) relative error of the
        left-out point's prediction, "median_abs_rel_error", "max_abs_rel_error"}.
    """
    log_n, log_d, log_l = _prepare(n_params, n_tokens, loss)
    n = log_n.size
    weights = np.ones((n, n))
    np.fill_diagonal(weights, 0.0)
    params = refit_weighted(log_n, log_d, log_l, fit, weights, n_warm=n_warm)
    e, a, b, al, be = params.T
    pred = e + np.exp(np.log(a) - al * log_n) + np.exp(np.log(b) - be * log_d)
    rel = pred / np.exp(log_l) - 1.0
    return {"params": params, "rel_error": rel, "median_abs_rel_error": float(np.median(np.abs(rel))),
            "max_abs_rel_error": float(np.max(np.abs(rel)))}


@dataclass
class HoldoutReport:
    """Fit on runs with C <= train_max_flops, then predict the larger runs.

    Attributes:
        params: the fit on the small runs.
        n_train, n_test: run counts.
        rel_error: (n_test,) relative prediction errors (pred / observed - 1) on the held-out runs.
        test_flops: (n_test,) their compute (FLOPs).
    """

    params: ChinchillaParams
    n_train: int
    n_test: int
    rel_error: np.ndarray
    test_flops: np.ndarray

    @property
    def median_abs_rel_error(self) -> float:
        return float(np.median(np.abs(self.rel_error)))


def holdout_by_compute(n_params, n_tokens, loss, *, train_max_flops, grid="muennighoff",
                       huber_delta=1e-3) -> HoldoutReport:
    """Extrapolation check: fit runs with 6ND <= train_max_flops, report errors on the rest.

    Raises:
        ValueError: no held-out runs, or too few training runs.
    """
    n = as_float64("n_params", n_params).ravel()
    d = as_float64("n_tokens", n_tokens).ravel()
    l_ = as_float64("loss", loss).ravel()
    c = 6.0 * n * d
    train = c <= train_max_flops
    if train.all():
        raise ValueError(f"train_max_flops={train_max_flops:g} keeps every run for training; nothing is held out")
    res = fit_chinchilla(n[train], d[train], l_[train], grid=grid, huber_delta=huber_delta)
    test = ~train
    rel = chinchilla_loss(n[test], d[test], res.params) / l_[test] - 1.0
    return HoldoutReport(res.params, int(train.sum()), int(test.sum()), rel, c[test])


def flag_outliers(n_params, n_tokens, loss, params: ChinchillaParams, *, z=3.5) -> np.ndarray:
    """Runs whose log residual is more than z robust standard deviations (1.4826 MAD) from the median.

    Returns:
        (n,) bool mask, True for outliers.
    """
    r = np.log(as_float64("loss", loss)) - np.log(chinchilla_loss(n_params, n_tokens, params))
    med = np.median(r)
    mad = 1.4826 * np.median(np.abs(r - med))
    if mad == 0:
        return np.abs(r - med) > 0
    return np.abs(r - med) > z * mad
