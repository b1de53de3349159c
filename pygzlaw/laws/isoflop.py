"""IsoFLOP analysis (Hoffmann et al. 2022, Approach 2), as the literature does it.

For each compute budget, find the loss minimum along N, then fit N_opt = k_N C^a and
D_opt = k_D C^b across budgets.

One parabola through a whole IsoFLOP curve is biased when the curve is asymmetric in log N (real
curves rise faster on the small-N side). So, per budget:

- ``method="window"`` (default): a parabola in log N through the runs within ``window`` (natural
  log units of N, default 0.75, ~a factor 2.1 each way) of the lowest-loss run, widened to the 3
  nearest runs when the window holds fewer;
- ``method="interp"``: non-parametric: a shape-preserving cubic (PCHIP) through log loss against
  log N, minimised on the sampled range;
- ``method="parabola"``: the single parabola through all runs (the biased classic, kept to compare).

Uncertainty per budget comes from a bootstrap over that budget's runs; the power laws are fitted by
weighted least squares (weights 1 / bootstrap variance of log N_opt, log D_opt) and their exponents
get percentile intervals from refitting on each bootstrap replicate's optima.

D_opt comes from the runs' own D: log D is interpolated in log N along each curve at the optimum
(D = C / (6 N) only if the runs were trained that way), so b is measured, not set to 1 - a.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pygzlaw.laws.forms import as_float64

__all__ = ["IsoflopResult", "isoflop_analysis", "group_by_budget", "curve_minimum", "ISOFLOP_METHODS"]

ISOFLOP_METHODS = ("window", "interp", "parabola")


@dataclass
class IsoflopResult:
    """Per-budget optima and the fitted power laws.

    Attributes:
        budget_flops: (k,) budgets with a usable minimum (FLOPs).
        n_opt, d_opt, loss_opt: (k,) optimal parameters, tokens and loss at each budget.
        n_opt_se, d_opt_se: (k,) bootstrap sd of log N_opt and log D_opt (NaN without bootstrap).
        a, n_coef: N_opt = n_coef * C^a.
        b, d_coef: D_opt = d_coef * C^b.
        a_interval, b_interval: (lo, hi) percentile bootstrap intervals of a and b (None without bootstrap).
        skipped: budgets dropped, with the reason.
        method, window, n_boot, level: how it was computed.
    """

    budget_flops: np.ndarray
    n_opt: np.ndarray
    d_opt: np.ndarray
    loss_opt: np.ndarray
    a: float
    n_coef: float
    b: float
    d_coef: float
    skipped: list
    n_opt_se: np.ndarray = field(default=None, repr=False)
    d_opt_se: np.ndarray = field(default=None, repr=False)
    a_interval: tuple | None = None
    b_interval: tuple | None = None
    method: str = "window"
    window: float = 0.75
    n_boot: int = 0
    level: float = 0.95

    def to_dict(self) -> dict:
        def lst(v):
            return None if v is None else [None if not np.isfinite(x) else float(x) for x in v]
        return {"budget_flops": self.budget_flops.tolist(), "n_opt": self.n_opt.tolist(),
                "d_opt": self.d_opt.tolist(), "loss_opt": self.loss_opt.tolist(), "a": self.a,
                "n_coef": self.n_coef, "b": self.b, "d_coef": self.d_coef, "skipped": self.skipped,
                "n_opt_se_log": lst(self.n_opt_se), "d_opt_se_log": lst(self.d_opt_se),
                "a_interval": None if self.a_interval is None else list(self.a_interval),
                "b_interval": None if self.b_interval is None else list(self.b_interval),
                "method": self.method, "window": self.window, "n_boot": self.n_boot, "level": self.level}


def group_by_budget(budget_flops, *, rel_tol: float = 0.05) -> np.ndarray:
    """Integer group ids: budgets within rel_tol (relative, in log space) of a group's first budget.

    Args:
        budget_flops: (n,) FLOPs per run.
        rel_tol: tolerance as |log C - log C_group| <= log(1 + rel_tol).

    Returns:
        (n,) int64 group ids, numbered in increasing budget order.
    """
    c = as_float64("budget_flops", budget_flops).ravel()
    order = np.argsort(c, kind="stable")
    ids = np.empty(c.size, dtype=np.int64)
    tol = np.log1p(rel_tol)
    gid, anchor = -1, -np.inf
    for i in order:
        lc = np.log(c[i])
        if lc - anchor > tol:
            gid += 1
            anchor = lc
        ids[i] = gid
    return ids


def curve_minimum(log_n, loss, *, method="window", window=0.75):
    """Minimum of one IsoFLOP curve along log N.

    Args:
        log_n: (m,) log parameters of the curve's runs (m >= 3, at least 3 distinct).
        loss: (m,) loss of each run.
        method: "window", "interp" or "parabola" (module docstring).
        window: half-width in log N of the window around the lowest-loss run (method "window").

    Returns:
        (x_opt, loss_opt) with x_opt = log N_opt, or None when the curve has no interior minimum
        (a parabola opening downward, or a minimum more than 1 (log units) outside the sampled N).
    """
    order = np.argsort(log_n, kind="stable")
    x, y = log_n[order], loss[order]
    ux = np.unique(x)
    if ux.size < 3:
        return None
    if method == "interp":
        from scipy.interpolate import PchipInterpolator

        # duplicate N: average their log loss (PCHIP needs increasing x)
        ly = np.array([np.log(y[x == v]).mean() for v in ux])
        f = PchipInterpolator(ux, ly)
        xs = np.linspace(ux[0], ux[-1], 512)
        j = int(np.argmin(f(xs)))
        lo, hi = xs[max(j - 1, 0)], xs[min(j + 1, xs.size - 1)]
        from scipy.optimize import minimize_scalar

        r = minimize_scalar(lambda t: float(f(t)), bounds=(lo, hi), method="bounded", options={"xatol": 1e-9})
        return float(r.x), float(np.exp(r.fun))
    if method == "window":
        x_best = x[int(np.argmin(y))]
        m = np.abs(x - x_best) <= window
        if np.unique(x[m]).size < 3:                 # widen to the 3 nearest distinct N
            near = ux[np.argsort(np.abs(ux - x_best), kind="stable")[:3]]
            m = np.isin(x, near)
        x, y = x[m], y[m]
    elif method != "parabola":
        raise ValueError(f"method={method!r} must be one of {ISOFLOP_METHODS}")
    x0 = x.mean()                                    # centred: polyfit is well conditioned
    q2, q1, q0 = np.polyfit(x - x0, y, 2)
    if not q2 > 0:
        return None
    t = -q1 / (2 * q2)
    if not (x.min() - 1.0 <= t + x0 <= x.max() + 1.0):
        return None
    return float(t + x0), float(q0 + q1 * t + q2 * t * t)


def _log_d_at(x_opt, log_n, log_d):
    """log D at log N = x_opt along one curve: linear interpolation in (log N, log D), extrapolating
    the end segments (the runs' own tokens, not C / 6N)."""
    order = np.argsort(log_n, kind="stable")
    x, y = log_n[order], log_d[order]
    ux = np.unique(x)
    uy = np.array([y[x == v].mean() for v in ux])
    if x_opt <= ux[0]:
        i = 0
    elif x_opt >= ux[-1]:
        i = ux.size - 2
    else:
        i = int(np.searchsorted(ux, x_opt) - 1)
    s = (uy[i + 1] - uy[i]) / (ux[i + 1] - ux[i])
    return float(uy[i] + s * (x_opt - ux[i]))


def _wls(x, y, w):
    """Weighted least squares y = s x + c; returns (s, c)."""
    W = np.sum(w)
    xm, ym = np.sum(w * x) / W, np.sum(w * y) / W
    s = np.sum(w * (x - xm) * (y - ym)) / np.sum(w * (x - xm) ** 2)
    return float(s), float(ym - s * xm)


def isoflop_analysis(n_params, n_tokens, loss, *, budget_flops=None, rel_tol=0.05, flops_per_token_param=6.0,
                     method="window", window=0.75, n_boot=200, seed=0, level=0.95) -> IsoflopResult:
    """Approach 2: the minimum of each IsoFLOP curve, then weighted power laws across budgets.

    Args:
        n_params, n_tokens, loss: (n,) runs (parameters, tokens, nats/token).
        budget_flops: optional (n,) FLOPs per run; default flops_per_token_param * N * D.
        rel_tol: runs whose budgets agree within this relative tolerance form one IsoFLOP curve.
        flops_per_token_param: 6 for C = 6ND (only used when budget_flops is not given).
        method: "window" (default), "interp" or "parabola" (module docstring).
        window: half-width in log N of the window (method "window").
        n_boot: bootstrap replicates over each budget's runs (0 = none: unweighted fits, no intervals).
        seed: bootstrap seed (numpy PCG64); same seed, same result.
        level: coverage of the exponent intervals.

    Returns:
        IsoflopResult.

    Raises:
        ValueError: mismatched lengths, a bad method, or fewer than two budgets with >= 3 distinct N
            and an interior minimum.
    """
    n = as_float64("n_params", n_params).ravel()
    d = as_float64("n_tokens", n_tokens).ravel()
    l_ = as_float64("loss", loss).ravel()
    if not (n.size == d.size == l_.size):
        raise ValueError(f"n_params ({n.size}), n_tokens ({d.size}) and loss ({l_.size}) must have the same length")
    if method not in ISOFLOP_METHODS:
        raise ValueError(f"method={method!r} must be one of {ISOFLOP_METHODS}")
    if not (window > 0):
        raise ValueError(f"window={window!r} must be > 0 (half-width in log N)")
    c = (flops_per_token_param * n * d if budget_flops is None
         else as_float64("budget_flops", budget_flops).ravel())
    if c.size != n.size:
        raise ValueError(f"budget_flops has {c.size} values, expected {n.size}")
    gid = group_by_budget(c, rel_tol=rel_tol)
    ln, ld = np.log(n), np.log(d)
    rng = np.random.default_rng(seed)
    cs, xs, dls, ls, boot_x, boot_d, skipped = [], [], [], [], [], [], []
    for g in range(gid.max() + 1):
        m = gid == g
        cg = float(np.exp(np.log(c[m]).mean()))
        k_distinct = np.unique(ln[m]).size
        if k_distinct < 3:
            skipped.append({"budget_flops": cg, "reason": f"{k_distinct} distinct N (need >= 3)"})
            continue
        opt = curve_minimum(ln[m], l_[m], method=method, window=window)
        if opt is None:
            skipped.append({"budget_flops": cg, "reason": "no interior minimum (curve has no dip in the sampled N)"})
            continue
        x_opt, loss_opt = opt
        cs.append(cg)
        xs.append(x_opt)
        dls.append(_log_d_at(x_opt, ln[m], ld[m]))
        ls.append(loss_opt)
        if n_boot:
            idx = np.flatnonzero(m)
            bx, bd = np.full(n_boot, np.nan), np.full(n_boot, np.nan)
            for r in range(n_boot):
                s = rng.choice(idx, size=idx.size, replace=True)
                o = curve_minimum(ln[s], l_[s], method=method, window=window)
                if o is not None:
                    bx[r] = o[0]
                    bd[r] = _log_d_at(o[0], ln[s], ld[s])
            boot_x.append(bx)
            boot_d.append(bd)
    if len(cs) < 2:
        raise ValueError(f"IsoFLOP analysis needs >= 2 budgets with >= 3 distinct N and a minimum; got {len(cs)} "
                         f"(skipped: {skipped}); widen rel_tol or add runs")
    cs, xs, dls, ls = np.array(cs), np.array(xs), np.array(dls), np.array(ls)
    lc = np.log(cs)
    if n_boot:
        bx, bd = np.array(boot_x), np.array(boot_d)                   # (k, n_boot)
        se_x = np.array([np.nanstd(v, ddof=1) if np.isfinite(v).sum() > 1 else np.nan for v in bx])
        se_d = np.array([np.nanstd(v, ddof=1) if np.isfinite(v).sum() > 1 else np.nan for v in bd])
        # a budget whose optimum did not move in any replicate gets the smallest other variance
        floor = np.nanmin(np.where(se_x > 0, se_x, np.nan)) if np.any(se_x > 0) else 1.0
        wx = 1.0 / np.maximum(np.nan_to_num(se_x, nan=floor), floor) ** 2
        floor_d = np.nanmin(np.where(se_d > 0, se_d, np.nan)) if np.any(se_d > 0) else 1.0
        wd = 1.0 / np.maximum(np.nan_to_num(se_d, nan=floor_d), floor_d) ** 2
    else:
        se_x = se_d = np.full(cs.size, np.nan)
        wx = wd = np.ones(cs.size)
    a, kn = _wls(lc, xs, wx)
    b, kd = _wls(lc, dls, wd)
    a_iv = b_iv = None
    if n_boot:
        ra, rb = [], []
        for r in range(n_boot):
            ok = np.isfinite(bx[:, r]) & np.isfinite(bd[:, r])
            if ok.sum() >= 2:
                ra.append(_wls(lc[ok], bx[ok, r], wx[ok])[0])
                rb.append(_wls(lc[ok], bd[ok, r], wd[ok])[0])
        if ra:
            q = (1 - level) / 2
            a_iv = tuple(float(v) for v in np.quantile(ra, [q, 1 - q]))
            b_iv = tuple(float(v) for v in np.quantile(rb, [q, 1 - q]))
    return IsoflopResult(cs, np.exp(xs), np.exp(dls), ls, float(a), float(np.exp(kn)), float(b), float(np.exp(kd)),
                         skipped, n_opt_se=se_x, d_opt_se=se_d, a_interval=a_iv, b_interval=b_iv, method=method,
                         window=float(window), n_boot=int(n_boot), level=float(level))
