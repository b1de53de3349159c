"""Data-constrained scaling (Muennighoff et al. 2023): fit R_D*, R_N* as a result object.

The second stage of Muennighoff et al.'s fit: Chinchilla's five constants are held at a base law
fitted on runs without repetition, and the repetition constants R_D* (tokens) and R_N*
(parameters) minimise the summed Huber loss (delta = 1e-3) of log residuals of
L = E + A / N'^alpha + B / D'^beta (formulas: shared/reference/laws.md, forms.data_constrained_loss).

On their 182 released runs the objective is a long, flat valley: the published R_D* = 15.39,
R_N* = 5.31 is a local minimum (objective 0.0158259) and R_D* ~ 95, R_N* ~ 1.7 is lower
(0.0158047). So the fit returns, besides the point, what a user needs to judge it: the objective,
convergence, the distinct minima found, every parameter that ends on a bound (named in a
warning), bootstrap intervals, and an identifiability report that profiles the objective along
each constant.

Profile threshold. With delta = 1e-3 far below the residuals, the objective is ~ delta * sum|r|,
the negative log-likelihood of Laplace residuals up to scale. A profile likelihood-ratio test at
95% (chi^2_1 = 3.84) then admits every value whose profile objective is within
1.92 * f_min / n of the minimum (f_min / (delta n) estimates the Laplace scale). A constant is
*weakly identified* when that set reaches a search bound (the data cannot bound it on one side)
or spans more than a factor of 100.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from pygzlaw.laws._threads import one_blas_thread
from pygzlaw.laws.forms import ChinchillaParams, DataConstrainedParams, as_float64
from pygzlaw.laws.identify import FitWarning
from pygzlaw.laws.intervals import replicate_se

__all__ = ["FitWarning", "DataConstrainedFit", "ProfileReport", "fit_data_constrained",
           "bootstrap_data_constrained", "profile_data_constrained", "muennighoff_start_grid",
           "DC_PARAM_NAMES", "DEFAULT_DC_BOUNDS"]

DC_PARAM_NAMES = ("rd_star", "rn_star")
# Search bounds for R_D*, R_N* (repetitions). 1e-3 is far below any published value; beyond 1e5
# repetitions D' = D for every released run (no repetition penalty left to measure).
DEFAULT_DC_BOUNDS = ((1e-3, 1e5), (1e-3, 1e5))
_CHI2_1_95 = 3.841458820694124     # chi^2 quantile, 1 degree of freedom, 95%
_WEAK_SPAN = 100.0                 # a profile interval wider than this factor is weak
_BOUND_RTOL = 1e-3                 # "on a bound": within 0.1% (log space: 1e-3) of it


def muennighoff_start_grid() -> np.ndarray:
    """The authors' starts: R_D*, R_N* in linspace(0, 20, 4) each (datablations
    utils/parametric_fit.ipynb), without the R* = 0 starts (the law divides by R*: their
    torch fit returns NaN there and skips them). (9, 2) float64, linear coordinates."""
    v = np.linspace(0.0, 20.0, 4)[1:]
    return np.array([(a, b) for a in v for b in v], dtype=np.float64)


def _default_log_grid() -> np.ndarray:
    # 7 x 7 log-spaced starts over [0.1, 1000] repetitions: covers both basins of the released runs.
    v = np.logspace(-1, 3, 7)
    return np.array([(a, b) for a in v for b in v], dtype=np.float64)


@dataclass
class ProfileReport:
    """Profile of the objective along one constant (the other minimised at each value).

    Attributes:
        name: "rd_star" or "rn_star".
        values: (k,) grid of the constant (repetitions), log-spaced across its bounds.
        objective: (k,) profile objective at each value.
        other: (k,) the other constant's minimiser at each value.
        threshold: objective level that bounds the ~95% profile interval (f_min + 1.92 f_min / n).
        lo, hi: the interval: smallest and largest grid value with objective <= threshold.
        open_lo, open_hi: the interval reaches the lower / upper search bound.
        weak: open on a side, or hi / lo > 100.
    """

    name: str
    values: np.ndarray
    objective: np.ndarray
    other: np.ndarray
    threshold: float
    lo: float
    hi: float
    open_lo: bool
    open_hi: bool
    weak: bool

    def to_dict(self) -> dict:
        return {"name": self.name, "lo": self.lo, "hi": self.hi, "open_lo": self.open_lo, "open_hi": self.open_hi,
                "weak": self.weak, "threshold": self.threshold, "values": self.values.tolist(),
                "objective": self.objective.tolist(), "other": self.other.tolist()}


@dataclass
class DataConstrainedFit:
    """Outcome of fit_data_constrained.

    Attributes:
        params: best DataConstrainedParams (base constants as given, fitted R_D*, R_N*).
        objective: summed Huber loss at the best point.
        converged: the best start met L-BFGS-B's stopping rules.
        n_starts, n_converged: starts tried, and those that converged.
        grid: "default", "muennighoff" or "custom"; space: "log" or "linear" coordinates.
        bounds: ((lo, hi), (lo, hi)) for R_D*, R_N*.
        minima: (k, 3) distinct local minima (R_D*, R_N*, objective), best first; two minima are
            distinct when a constant differs by more than 1% (relative).
        at_bound: names of parameters that end within 0.1% of a bound.
        warnings: human-readable warnings (also issued as FitWarning).
        bootstrap: None or (n_boot, 2) replicates of (R_D*, R_N*); failed refits are NaN rows.
        boot_at_bound: {name: fraction of replicates ending on a bound}.
        profiles: {name: ProfileReport} or empty when not computed.
        n_points, huber_delta, seconds: as named.
    """

    params: DataConstrainedParams
    objective: float
    converged: bool
    n_starts: int
    n_converged: int
    grid: str
    space: str
    bounds: tuple
    minima: np.ndarray = field(repr=False)
    at_bound: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    bootstrap: np.ndarray | None = field(default=None, repr=False)
    boot_at_bound: dict = field(default_factory=dict)
    profiles: dict = field(default_factory=dict, repr=False)
    n_points: int = 0
    huber_delta: float = 1e-3
    seconds: float = 0.0

    @property
    def weakly_identified(self) -> list:
        """Names of constants whose profile is weak (see ProfileReport.weak)."""
        return [k for k, p in self.profiles.items() if p.weak]

    def param_intervals(self, *, level=0.95) -> dict:
        """Percentile bootstrap intervals {name: {"estimate", "lo", "hi", "se"}} for R_D*, R_N*.

        Raises:
            ValueError: no bootstrap replicates (fit with n_boot > 0).
        """
        if self.bootstrap is None:
            raise ValueError("no bootstrap replicates; fit with n_boot > 0 (CLI: --bootstrap 1000)")
        ok = np.isfinite(self.bootstrap).all(1)
        b = self.bootstrap[ok]
        q = (1 - level) / 2
        out = {}
        se = replicate_se(b) if len(b) else np.full(len(DC_PARAM_NAMES), math.nan)
        for j, k in enumerate(DC_PARAM_NAMES):
            lo, hi = np.quantile(b[:, j], [q, 1 - q]) if len(b) else (math.nan, math.nan)
            out[k] = {"estimate": getattr(self.params, k), "lo": float(lo), "hi": float(hi),
                      "se": float(se[j])}
        return out

    def to_dict(self) -> dict:
        """JSON-able summary (profiles without their grids)."""
        d = {"params": self.params.to_dict(), "objective": self.objective, "converged": self.converged,
             "n_starts": self.n_starts, "n_converged": self.n_converged, "grid": self.grid, "space": self.space,
             "bounds": [list(b) for b in self.bounds], "n_points": self.n_points, "huber_delta": self.huber_delta,
             "seconds": round(self.seconds, 4), "at_bound": list(self.at_bound), "warnings": list(self.warnings),
             "minima": [{"rd_star": float(m[0]), "rn_star": float(m[1]), "objective": float(m[2])}
                        for m in self.minima]}
        if self.bootstrap is not None:
            d["n_boot"] = int(len(self.bootstrap))
            d["n_boot_failed"] = int((~np.isfinite(self.bootstrap).all(1)).sum())
            d["boot_at_bound"] = dict(self.boot_at_bound)
            d["intervals"] = self.param_intervals()
        if self.profiles:
            d["identifiability"] = {k: {kk: vv for kk, vv in p.to_dict().items()
                                        if kk not in ("values", "objective", "other")}
                                    for k, p in self.profiles.items()}
            d["weakly_identified"] = self.weakly_identified
        return d


# ------------------------------------------------------------------ objective
class _Objective:
    """Summed Huber loss of log residuals over many (R_D*, R_N*) at once, base constants fixed.

    Precomputes what does not depend on R*: U_N = min(N, N_opt(U_D)), R_N, R_D, log L.
    """

    def __init__(self, n, d, u, log_l, base: ChinchillaParams, delta: float):
        al, be = base.alpha, base.beta
        g = (al * base.A / (be * base.B)) ** (1.0 / (al + be))
        a_exp, b_exp = be / (al + be), al / (al + be)
        n_opt = g * ((g * u) ** (1.0 / b_exp)) ** a_exp       # N_opt(U_D), as forms.effective_params
        self.u_n = np.minimum(n, n_opt)
        self.r_n = n / self.u_n - 1.0
        self.u = u
        self.r_d = np.maximum(d / u - 1.0, 0.0)
        self.rep_d = d > u
        self.d = d
        self.log_l = log_l
        self.base = base
        self.delta = float(delta)

    def __call__(self, rd, rn, weights=None):
        """Objective for rd, rn of any broadcastable shape S: returns float64 of shape S."""
        rd = np.asarray(rd, dtype=np.float64)[..., None]
        rn = np.asarray(rn, dtype=np.float64)[..., None]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            d_eff = np.where(self.rep_d, self.u + self.u * rd * -np.expm1(-self.r_d / rd), self.d)
            n_eff = self.u_n + self.u_n * rn * -np.expm1(-self.r_n / rn)
            p = self.base
            pred = np.log(p.E + p.A * n_eff ** -p.alpha + p.B * d_eff ** -p.beta)
            r = pred - self.log_l
            a = np.abs(r)
            h = np.where(a <= self.delta, 0.5 * r * r, self.delta * (a - 0.5 * self.delta))
        if weights is not None:
            h = h * weights
        out = h.sum(-1)
        return np.where(np.isfinite(out), out, np.inf)

    def fg(self, rd: float, rn: float, weights=None):
        """Objective and its gradient in (R_D*, R_N*) at one point (analytic; for L-BFGS-B)."""
        p = self.base
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ed = np.exp(-self.r_d / rd)
            d_eff = np.where(self.rep_d, self.u + self.u * rd * (1.0 - ed), self.d)
            dd = np.where(self.rep_d, self.u * ((1.0 - ed) - (self.r_d / rd) * ed), 0.0)   # d D' / d R_D*
            en = np.exp(-self.r_n / rn)
            n_eff = self.u_n + self.u_n * rn * (1.0 - en)
            dn = self.u_n * ((1.0 - en) - (self.r_n / rn) * en)                            # d N' / d R_N*
            tn = p.A * n_eff ** -p.alpha
            td = p.B * d_eff ** -p.beta
            s = p.E + tn + td
            r = np.log(s) - self.log_l
            psi = np.clip(r, -self.delta, self.delta)
            h = psi * (r - 0.5 * psi)
            if weights is not None:
                h, psi = h * weights, psi * weights
            f = float(h.sum())
            g_rd = float(np.dot(psi, -p.beta * td / d_eff * dd / s))
            g_rn = float(np.dot(psi, -p.alpha * tn / n_eff * dn / s))
        if not (math.isfinite(f) and math.isfinite(g_rd) and math.isfinite(g_rn)):
            return math.inf, np.zeros(2)
        return f, np.array([g_rd, g_rn])


def _prepare_dc(n_params, n_tokens, unique_tokens, loss):
    n = as_float64("n_params", n_params).ravel()
    d = as_float64("n_tokens", n_tokens).ravel()
    u = as_float64("unique_tokens", unique_tokens).ravel()
    l_ = as_float64("loss", loss).ravel()
    if not (n.size == d.size == u.size == l_.size):
        raise ValueError(f"n_params ({n.size}), n_tokens ({d.size}), unique_tokens ({u.size}) and loss ({l_.size}) "
                         "must have the same length")
    if n.size < 3:
        raise ValueError(f"too few points to fit R_D*, R_N*: got {n.size}, need at least 3")
    return n, d, u, np.log(l_)


def _check_bounds(bounds):
    b = tuple((float(lo), float(hi)) for lo, hi in bounds)
    if len(b) != 2:
        raise ValueError(f"bounds has {len(b)} pairs; expected 2 ((lo, hi) for rd_star, rn_star)")
    for name, (lo, hi) in zip(DC_PARAM_NAMES, b):
        if not (0 < lo < hi and math.isfinite(hi)):
            raise ValueError(f"bounds for {name} = ({lo!r}, {hi!r}): need 0 < lo < hi < inf (repetitions)")
    return b


def _minimize(obj, x0, bounds, space, weights=None):
    """L-BFGS-B from x0 (R_D*, R_N* in linear units); tight tolerances (the objective is ~1e-2 and flat)."""
    from scipy.optimize import minimize

    if space == "log":
        def fun(v):
            rd, rn = math.exp(v[0]), math.exp(v[1])
            f, g = obj.fg(rd, rn, weights)
            return f, g * np.array([rd, rn])                 # chain rule: d/d log R = R d/dR
        start = np.log(np.clip(x0, [b[0] for b in bounds], [b[1] for b in bounds]))
        bnd = [(math.log(lo), math.log(hi)) for lo, hi in bounds]
    else:
        def fun(v):
            return obj.fg(v[0], v[1], weights)
        start = np.clip(x0, [b[0] for b in bounds], [b[1] for b in bounds])
        bnd = list(bounds)
    res = minimize(fun, start, jac=True, method="L-BFGS-B", bounds=bnd,
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000})
    x = np.exp(res.x) if space == "log" else np.asarray(res.x, dtype=np.float64)
    return x, float(res.fun), bool(res.success)


def _on_bound(x, bounds):
    """Names of parameters within 0.1% (in log) of a bound."""
    out = []
    for name, v, (lo, hi) in zip(DC_PARAM_NAMES, x, bounds):
        if abs(math.log(v / lo)) <= _BOUND_RTOL or abs(math.log(hi / v)) <= _BOUND_RTOL:
            out.append(name)
    return out


def _distinct_minima(xs, fs, rtol=0.01):
    """Rows (R_D*, R_N*, f), best first, keeping a point only when a constant differs from every kept
    point by more than rtol (relative): polishing sends many starts to one point."""
    order = np.argsort(fs, kind="stable")
    kept: list = []
    for i in order:
        if not np.isfinite(fs[i]):
            continue
        if all(np.abs(xs[i] / k[:2] - 1).max() > rtol for k in kept):
            kept.append(np.array([xs[i][0], xs[i][1], fs[i]]))
    return np.array(kept).reshape(-1, 3)


def fit_data_constrained(n_params, n_tokens, unique_tokens, loss, base: ChinchillaParams, *, grid="default",
                         starts=None, bounds=DEFAULT_DC_BOUNDS, space=None, huber_delta=1e-3, n_boot=0, seed=0,
                         profile=True, n_profile=49, warn=True) -> DataConstrainedFit:
    """Fit R_D* and R_N* with Chinchilla's constants held at ``base`` (Muennighoff et al.'s second stage).

    Minimises sum_i Huber_delta(log L_hat_i - log L_i) over (R_D*, R_N*) by L-BFGS-B from every
    start, keeps the best, and records the distinct minima found.

    Args:
        n_params, n_tokens, unique_tokens, loss: (n,) runs: parameters N, tokens seen D, unique
            tokens U_D, loss (nats/token); float64 or int, positive and finite.
        base: the Chinchilla law fitted on runs without repetition (held fixed).
        grid: "default" (7 x 7 log-spaced starts in [0.1, 1000], log coordinates) or "muennighoff"
            (the authors' linspace(0, 20, 4) starts without 0, linear coordinates as they fit).
        starts: optional (S, 2) array of (R_D*, R_N*) starts; overrides ``grid`` (grid "custom").
        bounds: ((lo, hi), (lo, hi)) for R_D*, R_N* in repetitions.
        space: "log" or "linear" coordinates for the optimiser; default by grid (see above).
        huber_delta: Huber threshold on log residuals (1e-3 as published).
        n_boot: bootstrap replicates over runs (0 = none), warm-started from the distinct minima.
        seed: bootstrap seed (numpy PCG64); same seed, same replicates.
        profile: compute the identifiability report (profiles of the objective along each constant).
        n_profile: profile grid points per constant.
        warn: also issue each warning as a FitWarning (they are always in the result's .warnings).

    Returns:
        DataConstrainedFit.

    Raises:
        ValueError: mismatched lengths, too few points, bad bounds/starts/grid, non-positive input,
            or no start giving a finite objective.
    """
    with one_blas_thread():
        return _fit_data_constrained(n_params, n_tokens, unique_tokens, loss, base, grid=grid, starts=starts,
                                     bounds=bounds, space=space, huber_delta=huber_delta, n_boot=n_boot, seed=seed,
                                     profile=profile, n_profile=n_profile, warn=warn)


def _fit_data_constrained(n_params, n_tokens, unique_tokens, loss, base, *, grid, starts, bounds, space, huber_delta,
                          n_boot, seed, profile, n_profile, warn):
    t0 = time.perf_counter()
    n, d, u, log_l = _prepare_dc(n_params, n_tokens, unique_tokens, loss)
    if not (huber_delta > 0 and math.isfinite(huber_delta)):
        raise ValueError(f"huber_delta={huber_delta!r} must be a positive finite number")
    bounds = _check_bounds(bounds)
    if starts is not None:
        x0 = np.asarray(starts, dtype=np.float64)
        if x0.ndim != 2 or x0.shape[1] != 2 or x0.shape[0] < 1:
            raise ValueError(f"starts has shape {x0.shape}; expected (n_starts, 2) columns (rd_star, rn_star)")
        if not (np.isfinite(x0).all() and (x0 > 0).all()):
            raise ValueError("starts must be positive finite (R_D*, R_N*) pairs; R* = 0 divides by zero in the law")
        grid_name, default_space = "custom", "log"
    elif grid == "default":
        x0, grid_name, default_space = _default_log_grid(), "default", "log"
    elif grid == "muennighoff":
        x0, grid_name, default_space = muennighoff_start_grid(), "muennighoff", "linear"
    else:
        raise ValueError(f"grid={grid!r} is unknown; use 'default', 'muennighoff' or pass starts=(S, 2) array")
    space = default_space if space is None else space
    if space not in ("log", "linear"):
        raise ValueError(f"space={space!r} must be 'log' or 'linear'")
    obj = _Objective(n, d, u, log_l, base, huber_delta)

    xs, fs, oks = [], [], []
    for s in x0:
        x, f, ok = _minimize(obj, s, bounds, space)
        xs.append(x)
        fs.append(f)
        oks.append(ok)
    fs_arr = np.array(fs)
    if not np.isfinite(fs_arr).any():
        raise ValueError(f"all {len(x0)} starts gave a non-finite objective; check the runs and the base law")
    minima = _distinct_minima(np.array(xs), fs_arr)
    ib = int(np.argmin(np.where(np.isfinite(fs_arr), fs_arr, np.inf)))
    best_x, best_f = xs[ib], fs[ib]
    params = DataConstrainedParams(**base.to_dict(), rd_star=float(best_x[0]), rn_star=float(best_x[1]))
    res = DataConstrainedFit(params=params, objective=float(best_f), converged=bool(oks[ib]), n_starts=len(x0),
                             n_converged=int(sum(oks)), grid=grid_name, space=space, bounds=bounds, minima=minima,
                             n_points=n.size, huber_delta=float(huber_delta))
    msgs = []
    res.at_bound = _on_bound(best_x, bounds)
    for name in res.at_bound:
        msgs.append(f"{name} = {getattr(params, name):.6g} ended on its bound {bounds[DC_PARAM_NAMES.index(name)]}: "
                    f"the data do not bound it; widen bounds= or treat {name} as unidentified")
    if not res.converged:
        msgs.append("the best start did not meet L-BFGS-B's stopping rules; the point may not be a minimum")
    if len(minima) > 1:
        m = minima[1]
        msgs.append(f"{len(minima)} distinct local minima; the next best is rd_star={m[0]:.4g}, rn_star={m[1]:.4g} "
                    f"(objective {m[2]:.7g} vs {best_f:.7g}): the objective is flat between them")
    if n_boot:
        res.bootstrap = bootstrap_data_constrained(obj, res, n_boot=n_boot, seed=seed)
        ok = np.isfinite(res.bootstrap).all(1)
        for j, name in enumerate(DC_PARAM_NAMES):
            lo, hi = bounds[j]
            v = res.bootstrap[ok, j]
            frac = float(((np.abs(np.log(v / lo)) <= _BOUND_RTOL) | (np.abs(np.log(hi / v)) <= _BOUND_RTOL)).mean()) \
                if v.size else 0.0
            res.boot_at_bound[name] = frac
            if frac > 0:
                msgs.append(f"{name} ended on a bound {bounds[j]} in {frac:.1%} of {int(ok.sum())} bootstrap "
                            f"replicates: its interval is cut by the bound, not set by the data")
    if profile:
        res.profiles = profile_data_constrained(obj, res, n_grid=n_profile)
        for name, p in res.profiles.items():
            if p.weak:
                side = " and ".join(s for s, o in (("below", p.open_lo), ("above", p.open_hi)) if o)
                why = f"open {side} up to the search bound" if side else f"spans a factor {p.hi / p.lo:.3g}"
                msgs.append(f"{name} is weakly identified: objective within {p.threshold - res.objective:.3g} of the "
                            f"minimum for {name} in [{p.lo:.4g}, {p.hi:.4g}] ({why})")
    res.warnings = msgs
    if warn:
        for m in msgs:
            warnings.warn(m, FitWarning, stacklevel=3)
    res.seconds = time.perf_counter() - t0
    return res


def bootstrap_data_constrained(obj: _Objective, fit: DataConstrainedFit, *, n_boot=200, seed=0,
                               n_warm=3) -> np.ndarray:
    """Refit R_D*, R_N* on n_boot resamples of the runs (with replacement), each warm-started from the
    fit's ``n_warm`` best distinct minima; each replicate keeps its best.

    Returns:
        (n_boot, 2) float64 (R_D*, R_N*); a failed replicate is a NaN row.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot} must be >= 1")
    rng = np.random.default_rng(seed)
    n = obj.log_l.size
    starts = fit.minima[:max(1, n_warm), :2]
    out = np.full((n_boot, 2), np.nan)
    for r in range(n_boot):
        w = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
        best_f = np.inf
        for s in starts:
            x, f, _ = _minimize(obj, s, fit.bounds, "log", weights=w)
            if np.isfinite(f) and f < best_f:
                best_f, out[r] = f, x
    return out


def profile_data_constrained(obj: _Objective, fit: DataConstrainedFit, *, n_grid=49) -> dict:
    """Profile the objective along R_D* and R_N* across their bounds (see the module docstring).

    The objective is evaluated on an n_grid x 4 n_grid log grid at once; each profile point then
    takes the best of the other constant and is refined by a bounded scalar search around it (the
    Huber objective is piecewise, so a search from one start can stop in a kink).

    Returns:
        {"rd_star": ProfileReport, "rn_star": ProfileReport}.
    """
    from scipy.optimize import minimize_scalar

    (lo_d, hi_d), (lo_n, hi_n) = fit.bounds
    fine = 4 * n_grid
    g_d = np.geomspace(lo_d, hi_d, n_grid)
    g_n = np.geomspace(lo_n, hi_n, n_grid)
    f_min = fit.objective
    thr = f_min + 0.5 * _CHI2_1_95 * f_min / obj.log_l.size
    out = {}
    for k, (vals, other_lo, other_hi) in enumerate(((g_d, lo_n, hi_n), (g_n, lo_d, hi_d))):
        other = np.geomspace(other_lo, other_hi, fine)
        rd, rn = (vals[:, None], other[None, :]) if k == 0 else (other[None, :], vals[:, None])
        f2 = obj(rd, rn)                                                   # (n_grid, fine)
        j = np.argmin(f2, axis=1)
        prof = f2[np.arange(n_grid), j]
        oth = other[j]
        lg = np.log(other)
        for i, v in enumerate(vals):
            lo_i, hi_i = lg[max(j[i] - 1, 0)], lg[min(j[i] + 1, fine - 1)]
            if k == 0:
                r = minimize_scalar(lambda t: float(obj(v, math.exp(t))), bounds=(lo_i, hi_i), method="bounded",
                                    options={"xatol": 1e-6})
            else:
                r = minimize_scalar(lambda t: float(obj(math.exp(t), v)), bounds=(lo_i, hi_i), method="bounded",
                                    options={"xatol": 1e-6})
            if r.fun < prof[i]:
                prof[i], oth[i] = float(r.fun), math.exp(r.x)
        inside = np.flatnonzero(prof <= thr)
        if inside.size == 0:           # the grid missed the minimum's neighbourhood: use the fit point
            best_v = getattr(fit.params, DC_PARAM_NAMES[k])
            lo_v = hi_v = best_v
            open_lo = open_hi = False
        else:
            lo_v, hi_v = float(vals[inside[0]]), float(vals[inside[-1]])
            open_lo, open_hi = bool(inside[0] == 0), bool(inside[-1] == n_grid - 1)
        weak = open_lo or open_hi or (hi_v / lo_v > _WEAK_SPAN)
        name = DC_PARAM_NAMES[k]
        out[name] = ProfileReport(name, vals, prof, oth, float(thr), lo_v, hi_v, open_lo, open_hi, bool(weak))
    return out
