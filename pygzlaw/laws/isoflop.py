"""IsoFLOP analysis (Hoffmann et al. 2022, Approach 2), as the literature does it.

For each compute budget, find the loss minimum along N, then fit N_opt = k_N C^a and
D_opt = k_D C^b across budgets.

One parabola through a whole IsoFLOP curve is biased when the curve is asymmetric in log N (real
curves rise faster on the small-N side). So, per budget:

- ``method="window"`` (default): a local quadratic fit: a parabola in log N through the runs within
  ``window`` (natural log units of N, default 0.75, ~a factor 2.1 each way) of the current estimate
  of the minimum, widened to the ``min_points`` (5) nearest distinct N when it holds fewer; the
  window starts at the whole curve's vertex and is re-centred on its own vertex until the runs in
  it stop changing (so one noisy low run cannot place it);
- ``method="interp"``: non-parametric: a shape-preserving cubic (PCHIP) through log loss against
  log N, minimised on the sampled range (needs smooth curves: on noisy ones it follows the noise);
- ``method="parabola"``: the single parabola through all runs (Hoffmann et al.'s own procedure).

A budget whose minimum is not bracketed by its runs (further than ``edge_margin`` outside the
sampled N) is skipped and reported: its optimum would be an extrapolation.

Uncertainty per budget comes from a bootstrap over that budget's runs. The power laws are fitted
by weighted least squares with random-effects weights 1 / (se^2 + tau^2) (se = bootstrap sd of
log N_opt or log D_opt; tau^2 = the scatter between budgets beyond it, DerSimonian-Laird), and
their exponents get percentile intervals from refitting on each bootstrap replicate's optima.

D_opt comes from the runs' own D: log D is interpolated in log N along each curve at the optimum
(D = C / (6 N) only if the runs were trained that way), so b is measured, not set to 1 - a.

Budgets known only approximately (read off a figure): ``snap_to_budgets`` assigns runs to a list
of nominal budgets such as ``HOFFMANN_ISOFLOP_BUDGETS``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pygzlaw.laws.forms import as_float64

__all__ = ["IsoflopResult", "isoflop_analysis", "group_by_budget", "snap_to_budgets", "curve_minimum",
           "random_effects_weights", "ISOFLOP_METHODS", "HOFFMANN_ISOFLOP_BUDGETS"]

ISOFLOP_METHODS = ("window", "interp", "parabola")

#: The nine IsoFLOP budgets (FLOPs) of Hoffmann et al. 2022, Approach 2 (their Figure 3:
#: 6e18 ... 3e21). Published exponents there: a = 0.49 (0.462, 0.534), b = 0.51 (0.483, 0.529).
HOFFMANN_ISOFLOP_BUDGETS = (6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21)


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
        tau2_n, tau2_d: between-budget variance of log N_opt, log D_opt about their lines beyond the
            bootstrap errors (random_effects_weights; 0 without bootstrap).
        method, window, min_points, n_boot, level: how it was computed.
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
    tau2_n: float = 0.0
    tau2_d: float = 0.0
    min_points: int = 5

    def to_dict(self) -> dict:
        def lst(v):
            return None if v is None else [None if not np.isfinite(x) else float(x) for x in v]
        return {"budget_flops": self.budget_flops.tolist(), "n_opt": self.n_opt.tolist(),
                "d_opt": self.d_opt.tolist(), "loss_opt": self.loss_opt.tolist(), "a": self.a,
                "n_coef": self.n_coef, "b": self.b, "d_coef": self.d_coef, "skipped": self.skipped,
                "n_opt_se_log": lst(self.n_opt_se), "d_opt_se_log": lst(self.d_opt_se),
                "a_interval": None if self.a_interval is None else list(self.a_interval),
                "b_interval": None if self.b_interval is None else list(self.b_interval),
                "method": self.method, "window": self.window, "min_points": self.min_points,
                "n_boot": self.n_boot, "level": self.level, "tau2_n": self.tau2_n, "tau2_d": self.tau2_d}


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


def _parabola(x, y):
    """Least-squares parabola y = q0 + q1 t + q2 t^2, t = x - mean(x) (centred: well conditioned).

    Returns (vertex x, loss at the vertex, q2) or None when fewer than 3 distinct x."""
    if np.unique(x).size < 3:
        return None
    x0 = x.mean()
    q2, q1, q0 = np.polyfit(x - x0, y, 2)
    if not q2 > 0:
        return float("nan"), float("nan"), float(q2)
    t = -q1 / (2 * q2)
    return float(t + x0), float(q0 + q1 * t + q2 * t * t), float(q2)


def _window_mask(x, centre, window, min_points):
    """Runs within ``window`` of ``centre`` in log N, widened to the ``min_points`` nearest distinct N."""
    m = np.abs(x - centre) <= window
    ux = np.unique(x)
    if np.unique(x[m]).size < min(min_points, ux.size):
        near = ux[np.argsort(np.abs(ux - centre), kind="stable")[:min_points]]
        m = np.isin(x, near)
    return m


def curve_minimum(log_n, loss, *, method="window", window=0.75, min_points=5, edge_margin=0.0, max_iter=20):
    """Minimum of one IsoFLOP curve along log N.

    Args:
        log_n: (m,) natural log of the parameters of the curve's runs (at least 3 distinct).
        loss: (m,) loss of each run.
        method: "window", "interp" or "parabola" (module docstring).
        window: half-width in log N of the window around the current estimate (method "window");
            widened 1.5x at a time while the parabola in it opens downward.
        min_points: the window holds at least this many distinct N (nearest first; method "window").
        edge_margin: how far (log N) the minimum may lie outside the sampled N; 0 = it must be
            bracketed by the runs (an extrapolated minimum is not measured).
        max_iter: window re-centring steps before giving up (method "window").

    Returns:
        (x_opt, loss_opt) with x_opt = log N_opt, or None when the curve has no measured minimum
        (a parabola opening downward, a minimum further than ``edge_margin`` outside the sampled N,
        or a window that does not settle).

    Raises:
        ValueError: an unknown method, or min_points < 3.
    """
    if method not in ISOFLOP_METHODS:
        raise ValueError(f"method={method!r} must be one of {ISOFLOP_METHODS}")
    if not (isinstance(min_points, (int, np.integer)) and min_points >= 3):
        raise ValueError(f"min_points={min_points!r} must be an integer >= 3 (a parabola needs 3 distinct N)")
    order = np.argsort(log_n, kind="stable")
    x, y = np.asarray(log_n, dtype=np.float64)[order], np.asarray(loss, dtype=np.float64)[order]
    ux = np.unique(x)
    if ux.size < 3:
        return None
    lo_x, hi_x = ux[0] - edge_margin, ux[-1] + edge_margin
    if method == "interp":
        from scipy.interpolate import PchipInterpolator
        from scipy.optimize import minimize_scalar

        # duplicate N: average their log loss (PCHIP needs increasing x)
        ly = np.array([np.log(y[x == v]).mean() for v in ux])
        f = PchipInterpolator(ux, ly)
        xs = np.linspace(ux[0], ux[-1], 512)
        j = int(np.argmin(f(xs)))
        if j == 0 or j == xs.size - 1:               # lowest at an end: no measured minimum
            return None
        r = minimize_scalar(lambda t: float(f(t)), bounds=(xs[j - 1], xs[j + 1]), method="bounded",
                            options={"xatol": 1e-9})
        return float(r.x), float(np.exp(r.fun))
    if method == "parabola":
        p = _parabola(x, y)
    else:
        # Start from the whole curve's vertex (uses every run, so one noisy low run cannot pick the
        # window), falling back to the lowest run; then re-centre the window on its own vertex
        # until the set of runs in it stops changing (a local quadratic fit around the minimum).
        p = _parabola(x, y)
        centre = p[0] if np.isfinite(p[0]) and ux[0] <= p[0] <= ux[-1] else x[int(np.argmin(y))]
        seen, w = [], window
        for _ in range(max_iter):
            m = _window_mask(x, centre, w, min_points)
            key = m.tobytes()
            if key in seen:                           # settled (or cycling between two sets: take this one)
                break
            seen.append(key)
            p = _parabola(x[m], y[m])
            if not np.isfinite(p[0]):                 # no dip inside the window (noise): widen it
                if m.all():
                    return None
                w *= 1.5
                seen = []
                continue
            centre = min(max(p[0], ux[0]), ux[-1])
        else:
            return None
    if p is None or not np.isfinite(p[0]) or not (lo_x <= p[0] <= hi_x):
        return None
    return p[0], p[1]


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


def random_effects_weights(x, y, se):
    """Weights 1 / (se^2 + tau^2) for a line through points with known standard errors.

    tau^2 is the between-point variance beyond the stated errors, by the method of moments of
    DerSimonian & Laird (1986) extended to meta-regression (Thompson & Sharp 1999): with fixed
    weights w = 1/se^2 and residual statistic Q = sum w r^2 of the weighted line,
    tau^2 = max(0, (Q - (k - 2)) / (tr W - tr(W X (X'WX)^-1 X'W))). When the optima scatter
    about the line more than their bootstrap errors say (as extracted or few-run curves do),
    tau^2 > 0 flattens the weights towards equal, so one curve with a spuriously small bootstrap
    error cannot dominate the exponent; when they do not, these are the inverse-variance weights.

    Args:
        x, y: (k,) log C and log N_opt (or log D_opt) per budget.
        se: (k,) standard errors of y, > 0.

    Returns:
        (weights (k,), tau2).
    """
    w = 1.0 / se ** 2
    k = x.size
    if k <= 2:
        return w, 0.0
    s, c = _wls(x, y, w)
    q = float(np.sum(w * (y - s * x - c) ** 2))
    X = np.column_stack([np.ones(k), x])
    xtwx_inv = np.linalg.inv(X.T @ (w[:, None] * X))
    denom = float(np.sum(w) - np.trace(xtwx_inv @ (X.T @ ((w ** 2)[:, None] * X))))
    tau2 = max(0.0, (q - (k - 2)) / denom) if denom > 0 else 0.0
    return 1.0 / (se ** 2 + tau2), tau2


def snap_to_budgets(budget_flops, budgets, *, tol_dex=0.05, recentre=False):
    """Assign each run to the nearest of a list of nominal budgets (in log10 C), within a tolerance.

    For runs whose FLOPs are only approximately known (values read off a figure, or FLOPs counted
    differently from the budget the runs were planned at): the IsoFLOP curves are the nominal
    budgets, and a run further than ``tol_dex`` from its curve belongs to none (for instance a run
    from another experiment plotted in the same figure).

    With ``recentre=True`` each curve is centred on the median log10 C of the runs nearest its
    budget (within half the gap to the neighbouring budgets) before the tolerance is applied: one
    k-medians step seeded at the nominal budgets, for FLOPs that are offset as a whole (a figure's
    axis read slightly off, a different FLOP count), where a window around the nominal value would
    cut one side of every curve.

    Args:
        budget_flops: (n,) FLOPs per run, > 0.
        budgets: (k,) nominal budgets (FLOPs), > 0.
        tol_dex: largest |log10 C - log10 centre| kept; in (0, half the smallest gap between
            budgets in log10] (else a run could belong to two curves).
        recentre: centre each curve on its runs' median log10 C instead of the nominal budget.

    Returns:
        (nominal (n,) float64: the budget of each run, NaN where none; keep (n,) bool).

    Raises:
        ValueError: non-positive or non-finite values, or tol_dex out of range (the message names
            the limit).
    """
    c = as_float64("budget_flops", budget_flops).ravel()
    b = np.unique(as_float64("budgets", budgets).ravel())
    lc, lb = np.log10(c), np.log10(b)
    half_gap = np.diff(lb).min() / 2 if b.size > 1 else np.inf
    if not (0 < tol_dex <= half_gap):
        raise ValueError(f"tol_dex={tol_dex!r} must be in (0, {half_gap:.4g}] (half the smallest gap between "
                         f"budgets in log10)")
    j = np.argmin(np.abs(lc[:, None] - lb[None, :]), axis=1)
    centre = lb.copy()
    if recentre:
        near = np.abs(lc - lb[j]) <= half_gap
        for i in range(b.size):
            m = near & (j == i)
            if m.any():
                centre[i] = float(np.median(lc[m]))
    keep = np.abs(lc - centre[j]) <= tol_dex
    return np.where(keep, b[j], np.nan), keep


def isoflop_analysis(n_params, n_tokens, loss, *, budget_flops=None, rel_tol=0.05, flops_per_token_param=6.0,
                     method="window", window=0.75, min_points=5, edge_margin=0.0, n_boot=200, seed=0,
                     level=0.95) -> IsoflopResult:
    """Approach 2: the minimum of each IsoFLOP curve, then weighted power laws across budgets.

    Args:
        n_params, n_tokens, loss: (n,) runs (parameters, tokens, nats/token).
        budget_flops: optional (n,) FLOPs per run; default flops_per_token_param * N * D.
        rel_tol: runs whose budgets agree within this relative tolerance form one IsoFLOP curve.
        flops_per_token_param: 6 for C = 6ND (only used when budget_flops is not given).
        method: "window" (default), "interp" or "parabola" (module docstring).
        window: half-width in log N of the window (method "window").
        min_points: fewest distinct N in a window (method "window").
        edge_margin: how far (log N) a curve's minimum may lie outside its sampled N before the
            budget is skipped (default 0: the runs must bracket it).
        n_boot: bootstrap replicates over each budget's runs (0 = none: unweighted fits, no
            intervals); they give the per-budget errors (hence the weights) and, refitting the
            lines on each replicate's optima with the same weights, percentile intervals of a, b.
        seed: bootstrap seed (numpy PCG64); same seed, same result.
        level: coverage of the exponent intervals.

    Returns:
        IsoflopResult; weights are random-effects (random_effects_weights), tau2 in ``tau2``.

    Raises:
        ValueError: mismatched lengths, a bad method, window or min_points, or fewer than two
            budgets with >= 3 distinct N and a bracketed minimum.
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
    if not (isinstance(min_points, (int, np.integer)) and min_points >= 3):
        raise ValueError(f"min_points={min_points!r} must be an integer >= 3 (a parabola needs 3 distinct N)")
    if not (edge_margin >= 0):
        raise ValueError(f"edge_margin={edge_margin!r} must be >= 0 (log N)")
    c = (flops_per_token_param * n * d if budget_flops is None
         else as_float64("budget_flops", budget_flops).ravel())
    if c.size != n.size:
        raise ValueError(f"budget_flops has {c.size} values, expected {n.size}")
    gid = group_by_budget(c, rel_tol=rel_tol)
    ln, ld = np.log(n), np.log(d)
    rng = np.random.default_rng(seed)
    kw = dict(method=method, window=window, min_points=int(min_points), edge_margin=float(edge_margin))
    cs, xs, dls, ls, boot_x, boot_d, skipped = [], [], [], [], [], [], []
    for g in range(gid.max() + 1):
        m = gid == g
        cg = float(np.exp(np.log(c[m]).mean()))
        k_distinct = np.unique(ln[m]).size
        if k_distinct < 3:
            skipped.append({"budget_flops": cg, "reason": f"{k_distinct} distinct N (need >= 3)"})
            continue
        opt = curve_minimum(ln[m], l_[m], **kw)
        if opt is None:
            skipped.append({"budget_flops": cg, "reason": "no measured minimum (the curve does not dip inside "
                                                          "its sampled N, or its window does not settle)"})
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
                o = curve_minimum(ln[s], l_[s], **kw)
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
    tau2_x = tau2_d = 0.0
    if n_boot:
        bx, bd = np.array(boot_x), np.array(boot_d)                   # (k, n_boot)
        se_x = np.array([np.nanstd(v, ddof=1) if np.isfinite(v).sum() > 1 else np.nan for v in bx])
        se_d = np.array([np.nanstd(v, ddof=1) if np.isfinite(v).sum() > 1 else np.nan for v in bd])

        def floored(se):
            # a budget whose optimum did not move in any replicate gets the smallest other error
            pos = se[np.isfinite(se) & (se > 0)]
            floor = pos.min() if pos.size else 1.0
            return np.maximum(np.nan_to_num(se, nan=floor), floor)

        wx, tau2_x = random_effects_weights(lc, xs, floored(se_x))
        wd, tau2_d = random_effects_weights(lc, dls, floored(se_d))
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
                         window=float(window), n_boot=int(n_boot), level=float(level), tau2_n=float(tau2_x),
                         tau2_d=float(tau2_d), min_points=int(min_points))
