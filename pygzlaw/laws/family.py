"""The rest of the family: over-training + downstream error (Gadre et al. 2024), data-constrained
scaling (Muennighoff et al. 2023), data filtering under a compute budget (Goyal et al. 2024, QQT).
Formulas: shared/reference/laws.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pygzlaw.laws._threads import one_blas_thread
from pygzlaw.laws.data_constrained import fit_data_constrained
from pygzlaw.laws.forms import ErrorParams, OvertrainParams, as_float64

__all__ = ["GADRE_GRID", "OvertrainFit", "fit_overtrain", "ErrorFit", "fit_error_law", "fit_data_constrained",
           "Pool", "qqt_error", "combine_pools", "best_filtering_level", "fit_qqt", "QQTFit", "qqt_curves",
           "read_qqt_csv", "QQT_COLUMNS"]


# --------------------------------------------------------------- Gadre et al.
def _gadre_grid() -> np.ndarray:
    # Gadre et al. 2024: a0, b0 in {1e2, 3e2, 1e3, 3e3}, eta0 in {0.05, 0.15}, E0 in {0, 1, 2, 10}:
    # 128 starts for scipy curve_fit on raw loss. Rows (E, a, b, eta).
    ab = (1e2, 3e2, 1e3, 3e3)
    return np.array([(e0, a0, b0, eta0) for a0 in ab for b0 in ab for eta0 in (0.05, 0.15)
                     for e0 in (0.0, 1.0, 2.0, 10.0)], dtype=np.float64)


GADRE_GRID = _gadre_grid()


@dataclass
class OvertrainFit:
    """Least-squares fit of L(C, M): params, sum of squared residuals, starts tried and succeeded,
    and bootstrap replicates (n_boot, 4) of (E, a, b, eta) when asked for (NaN rows: failed refits)."""

    params: OvertrainParams
    sse: float
    n_starts: int
    n_ok: int
    bootstrap: np.ndarray | None = None


def _bootstrap_curve_fit(model, x, y, best, n_boot, seed):
    """Refit ``model`` on n_boot resamples of the points (with replacement), each from ``best``.

    Returns:
        (n_boot, len(best)) float64 replicates; NaN rows where the refit failed.
    """
    rng = np.random.default_rng(seed)
    out = np.full((n_boot, len(best)), np.nan)
    for r in range(n_boot):
        i = rng.integers(0, y.size, size=y.size)
        p, _, _ = _best_curve_fit(model, x[..., i] if np.ndim(x) else x, y[i], [best])
        if p is not None:
            out[r] = p
    return out


def _best_curve_fit(model, x, y, starts):
    """Plain least squares (scipy curve_fit) from every start; keep the lowest SSE.

    Returns:
        (best parameters or None, best SSE, number of starts that converged).
    """
    import warnings

    from scipy.optimize import curve_fit

    best, best_sse, n_ok = None, np.inf, 0
    with np.errstate(all="ignore"), warnings.catch_warnings(), one_blas_thread():
        warnings.simplefilter("ignore")
        for p0 in starts:
            try:
                popt, _ = curve_fit(model, x, y, p0=p0, maxfev=10000)
            except (RuntimeError, ValueError):
                continue
            sse = float(np.sum((model(x, *popt) - y) ** 2))
            if np.isfinite(sse):
                n_ok += 1
                if sse < best_sse:
                    best, best_sse = popt, sse
    return best, best_sse, n_ok


def fit_overtrain(budget_flops, token_multiplier, loss, *, grid=None, n_boot=0, seed=0) -> OvertrainFit:
    """Fit L(C, M) = E + (a M^eta + b M^-eta) C^-eta by curve_fit from every grid start (Gadre et al.).

    Args:
        budget_flops: (n,) training FLOPs C = 6 N D.
        token_multiplier: (n,) tokens per parameter M = D / N.
        loss: (n,) loss (nats/token).
        grid: (S, 4) starts (E, a, b, eta); default GADRE_GRID (128 starts).
        n_boot: bootstrap replicates over points (0 = none), each refit from the best fit.
        seed: bootstrap seed (numpy PCG64).

    Returns:
        OvertrainFit with the lowest sum of squared errors on raw loss.

    Raises:
        ValueError: fewer than 4 points or bad input; no start converged.
    """
    c = as_float64("budget_flops", budget_flops).ravel()
    m = as_float64("token_multiplier", token_multiplier).ravel()
    y = as_float64("loss", loss).ravel()
    if not (c.size == m.size == y.size):
        raise ValueError(f"budget_flops ({c.size}), token_multiplier ({m.size}), loss ({y.size}) lengths differ")
    if c.size < 4:
        raise ValueError(f"too few points to fit the over-training law: got {c.size}, need at least 4")
    starts = GADRE_GRID if grid is None else np.asarray(grid, dtype=np.float64)
    x = np.stack([np.log(c), np.log(m)])                     # (2, n): log C, log M

    def model(v, e, a, b, eta):
        return e + (a * np.exp(eta * v[1]) + b * np.exp(-eta * v[1])) * np.exp(-eta * v[0])

    best, best_sse, n_ok = _best_curve_fit(model, x, y, starts)
    if best is None:
        raise ValueError(f"no start of {len(starts)} converged when fitting the over-training law")
    boot = _bootstrap_curve_fit(model, x, y, best, n_boot, seed) if n_boot else None
    return OvertrainFit(OvertrainParams(*(float(v) for v in best)), best_sse, len(starts), n_ok, boot)


@dataclass
class ErrorFit:
    """Least-squares fit of Err(L) = epsilon - k exp(-gamma L)."""

    params: ErrorParams
    sse: float
    bootstrap: np.ndarray | None = None


def fit_error_law(loss, error, *, grid=None, n_boot=0, seed=0) -> ErrorFit:
    """Fit Err(L) = epsilon - k exp(-gamma L) by curve_fit from a grid of starts.

    Gadre et al. do not list their starts for this law; the default grid here is ours:
    epsilon0 in {0.6, 0.8, 1.0}, k0 in {1, 10, 100}, gamma0 in {0.5, 1, 2} (27 starts).

    Args:
        loss: (n,) loss per model (nats/token).
        error: (n,) average top-1 error per model (fraction).
        grid: optional (S, 3) starts (epsilon, k, gamma).
        n_boot, seed: bootstrap replicates over points (0 = none) and their seed; replicates in
            ErrorFit.bootstrap, (n_boot, 3), NaN rows for failed refits.

    Returns:
        ErrorFit.
    """
    x = as_float64("loss", loss).ravel()
    y = as_float64("error", error, positive=False).ravel()
    if x.size != y.size:
        raise ValueError(f"loss ({x.size}) and error ({y.size}) lengths differ")
    if x.size < 3:
        raise ValueError(f"too few points to fit the error law: got {x.size}, need at least 3")
    starts = (np.array([(e, k, g) for e in (0.6, 0.8, 1.0) for k in (1.0, 10.0, 100.0) for g in (0.5, 1.0, 2.0)])
              if grid is None else np.asarray(grid, dtype=np.float64))

    def model(v, eps, k, gamma):
        return eps - k * np.exp(-gamma * v)

    best, best_sse, _ = _best_curve_fit(model, x, y, starts)
    if best is None:
        raise ValueError(f"no start of {len(starts)} converged when fitting the error law")
    boot = _bootstrap_curve_fit(model, x, y, best, n_boot, seed) if n_boot else None
    return ErrorFit(ErrorParams(*(float(v) for v in best)), best_sse, boot)


# --------------------------------------------------------- Muennighoff et al.
# fit_data_constrained lives in pygzlaw.laws.data_constrained (a result object with bootstrap and profiles).


# --------------------------------------------------------------- Goyal et al.
@dataclass(frozen=True)
class Pool:
    """A data pool for QQT: n_samples in the pool, utility b (< 0) and repetition half-life tau (epochs)."""

    name: str
    n_samples: float
    b: float
    tau: float


_QQT_NORM = 1e5  # Goyal et al.'s sample-count normaliser


def _epoch_logs(n_seen: float, pool_size: float) -> tuple[float, np.ndarray]:
    """(n_1, log(n_{e+1}/n_e) for e = 1..k-1) with n_e = min(e P, n)."""
    k = max(1, int(math.ceil(n_seen / pool_size - 1e-12)))
    n_e = np.minimum(np.arange(1, k + 1) * pool_size, n_seen)
    return float(n_e[0]), np.log(n_e[1:] / n_e[:-1])


def qqt_error(n_seen, pool_size, a, b, tau, d, *, b_of_epoch=None) -> np.ndarray:
    """Error after n samples from a pool of size P with repetition (Goyal et al. 2024, Sec. 3).

    y(n) = [(a n_1 / 1e5)^b_0 + d] * prod_{e=1}^{k-1} (n_{e+1}/n_e)^b_e, with b_e = b 0.5^(e/tau) and
    n_e = min(e P, n): the piecewise solution of dy/dn = b_e y / n.

    Args:
        n_seen: samples seen (scalar or (m,) array).
        pool_size: pool size P (samples).
        a: shared normaliser; b: utility (< 0); tau: half-life (epochs); d: irreducible error.
            b and tau broadcast (arrays allowed, for grid search).
        b_of_epoch: optional callable e (int array) -> b_e, overriding b 0.5^(e/tau) (combined pools).

    Returns:
        float64 array of errors, shape broadcast(n_seen, b, tau).
    """
    ns = np.atleast_1d(as_float64("n_seen", n_seen))
    as_float64("pool_size", pool_size)
    b = np.asarray(b, dtype=np.float64)
    tau = np.asarray(tau, dtype=np.float64)
    out = []
    for n in ns:
        n1, logs = _epoch_logs(float(n), float(pool_size))
        e = np.arange(1, logs.size + 1)
        if b_of_epoch is None:
            b0 = b
            w = np.zeros(np.shape(tau))                      # sum_e 0.5^(e/tau) log(n_{e+1}/n_e)
            for ei, li in zip(e, logs):
                w = w + 0.5 ** (ei / tau) * li
            expo = b * w
        else:
            b0 = float(b_of_epoch(np.array([0]))[0])
            expo = float(np.sum(b_of_epoch(e) * logs))
        out.append(((a * n1 / _QQT_NORM) ** b0 + d) * np.exp(expo))
    res = np.array(out)
    return res[0] if np.ndim(n_seen) == 0 else res


def combine_pools(pools: list[Pool]):
    """Uniform mix of p pools (Goyal et al., Theorem 1): size sum P_i and
    b_eff(e) = (1/p) sum_i b_i 0.5^(e / (p tau_i)).

    Returns:
        (pool_size, b_of_epoch callable).
    """
    if not pools:
        raise ValueError("combine_pools needs at least one pool")
    p = len(pools)
    bs = np.array([q.b for q in pools])
    taus = np.array([q.tau for q in pools])

    def b_of_epoch(e):
        e = np.asarray(e, dtype=np.float64)
        return (bs[None, :] * 0.5 ** (e[:, None] / (p * taus[None, :]))).mean(1)

    return float(sum(q.n_samples for q in pools)), b_of_epoch


def best_filtering_level(pools: list[Pool], budget_samples: float, *, a: float, d: float) -> dict:
    """Pick how many of the best pools to train on for a compute budget (in samples seen).

    Pools are taken best-first as given (e.g. by a quality-score bucket); level k trains on a
    uniform mix of pools[:k]. Aggressive filtering (small k) repeats a small high-utility pool;
    loose filtering (large k) sees more unique but lower-utility data.

    Args:
        pools: pools ordered from highest to lowest quality.
        budget_samples: samples the compute budget pays for.
        a, d: the shared normaliser and irreducible error.

    Returns:
        {"best_k", "best_pools", "errors": [error at k = 1..p]}.
    """
    if budget_samples <= 0 or not math.isfinite(budget_samples):
        raise ValueError(f"budget_samples={budget_samples!r} must be a positive finite number")
    errs = []
    for k in range(1, len(pools) + 1):
        size, b_fn = combine_pools(pools[:k])
        errs.append(float(qqt_error(budget_samples, size, a, 0.0, 1.0, d, b_of_epoch=b_fn)))
    k = int(np.argmin(errs)) + 1
    return {"best_k": k, "best_pools": [q.name for q in pools[:k]], "errors": errs}


@dataclass
class QQTFit:
    """Outcome of fit_qqt.

    Attributes:
        a: shared normaliser; d: irreducible error (fixed, as given).
        pools: one Pool per curve with its fitted b (utility) and tau (half-life, epochs).
        sse: sum of squared errors over every point.
        n_points: points fitted; converged: the least-squares polish met its stopping rule.
        grid_sse: SSE of the best grid point before polishing (the polish never makes it worse).
        at_bound: names "pool:b" / "pool:tau" / "a" of parameters that ended on a bound of their grid range.
    """

    a: float
    d: float
    pools: list
    sse: float
    n_points: int
    converged: bool
    grid_sse: float
    at_bound: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"a": self.a, "d": self.d, "sse": self.sse, "n_points": self.n_points, "converged": self.converged,
                "grid_sse": self.grid_sse, "at_bound": list(self.at_bound),
                "pools": [{"name": q.name, "pool_size": q.n_samples, "b": q.b, "tau": q.tau} for q in self.pools]}


QQT_COLUMNS = ("pool", "pool_size", "n_seen", "error")


def qqt_curves(pool, pool_size, n_seen, error) -> list:
    """Per-pool curves from flat arrays (one row per evaluation point), in first-seen pool order.

    Args:
        pool: (m,) pool names (str); pool_size: (m,) samples in the row's pool (one value per pool);
        n_seen: (m,) samples seen; error: (m,) error (fraction).

    Returns:
        list of {"name", "pool_size", "n_seen", "error"} as fit_qqt takes.

    Raises:
        ValueError: lengths differ, or a pool has two different sizes.
    """
    names = [str(v) for v in np.asarray(pool).ravel()]
    size = as_float64("pool_size", pool_size).ravel()
    n = as_float64("n_seen", n_seen).ravel()
    y = as_float64("error", error).ravel()
    if not (len(names) == size.size == n.size == y.size):
        raise ValueError(f"pool ({len(names)}), pool_size ({size.size}), n_seen ({n.size}) and error ({y.size}) "
                         "lengths differ")
    out = []
    for name in dict.fromkeys(names):
        m = np.array([v == name for v in names])
        sizes = np.unique(size[m])
        if sizes.size != 1:
            raise ValueError(f"pool {name!r} has {sizes.size} different pool_size values ({sizes[:3].tolist()}); "
                             "one pool has one size")
        out.append({"name": name, "pool_size": float(sizes[0]), "n_seen": n[m], "error": y[m]})
    return out


def read_qqt_csv(path) -> list:
    """Read QQT curves from a CSV with columns pool, pool_size, n_seen, error (header row; BOM and CRLF
    accepted). Returns qqt_curves(...) of its rows.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a missing column, or a bad value (message names file:line and the column).
    """
    import csv
    from pathlib import Path

    from pygzlaw.laws.io import positive_cell

    p = Path(path)
    if not p.is_file():
        from pygzlaw.textio import not_a_file

        raise FileNotFoundError(f"{p}: {not_a_file(p, 'QQT curves')}")
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in QQT_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{p}: missing column(s) {missing}; a QQT curves CSV needs {list(QQT_COLUMNS)}, found {header}")
    cols = {h.strip().lower(): h for h in reader.fieldnames}
    vals = {c: [] for c in QQT_COLUMNS}
    for i, r in enumerate(rows, start=2):
        for c in QQT_COLUMNS:
            v = r.get(cols[c])
            if c == "pool":
                if v in (None, ""):
                    raise ValueError(f"{p}:{i}: empty pool")
                vals[c].append(v)
                continue
            vals[c].append(positive_cell(v, c, f"{p}:{i}"))
    if not rows:
        raise ValueError(f"{p}: no data rows")
    return qqt_curves(vals["pool"], vals["pool_size"], vals["n_seen"], vals["error"])


def _as_curves(curves) -> list:
    if isinstance(curves, (str, bytes)) or hasattr(curves, "__fspath__"):
        return read_qqt_csv(curves)
    if isinstance(curves, dict):
        missing = [c for c in QQT_COLUMNS if c not in curves]
        if missing:
            raise ValueError(f"curves dict lacks {missing}; give arrays {list(QQT_COLUMNS)} (one row per point)")
        return qqt_curves(*(curves[c] for c in QQT_COLUMNS))
    out = list(curves)
    for i, cv in enumerate(out):
        for k in ("name", "pool_size", "n_seen", "error"):
            if k not in cv:
                raise ValueError(f"curves[{i}] lacks {k!r}; each curve is {{'name', 'pool_size', 'n_seen', 'error'}}")
    return out


def fit_qqt(curves, *, d: float, a_grid=None, b_grid=None, tau_grid=None, polish=True, start=None) -> QQTFit:
    """Fit QQT parameters (Goyal et al.): per-pool b and tau, one a shared by all pools, d fixed.

    Their procedure is a grid search on squared error (b in [-0.5, -0.005], tau in [1, 10]); a grid
    only finds values on the grid, so the grid's best point is then polished by bounded least
    squares (scipy ``least_squares``, trust-region reflective) over (log a, b_1..b_p, tau_1..tau_p)
    within the grids' ranges. With ``polish=False`` the result is the plain grid search.

    Args:
        curves: the points, as (1) a list of dicts {"name", "pool_size", "n_seen" (m,), "error" (m,)} per
            pool, (2) a dict of flat arrays {"pool", "pool_size", "n_seen", "error"} (one row per point),
            or (3) a path to a CSV with those columns.
        d: irreducible error (fixed).
        a_grid: candidate a values (default 41 log-spaced in [1e-2, 1e2]).
        b_grid: candidate b (default 100 values in [-0.5, -0.005]).
        tau_grid: candidate tau (default 37 values in [1, 10] epochs).
        polish: refine the grid's best point by least squares.
        start: optional QQTFit to polish from instead of searching the grid (bootstrap refits);
            its pools must be in the curves' order.

    Returns:
        QQTFit.

    Raises:
        ValueError: no curves, or bad values (named).
    """
    from scipy.optimize import least_squares

    curves = _as_curves(curves)
    a_grid = np.logspace(-2, 2, 41) if a_grid is None else np.asarray(a_grid, dtype=np.float64)
    b_grid = np.linspace(-0.5, -0.005, 100) if b_grid is None else np.asarray(b_grid, dtype=np.float64)
    tau_grid = np.linspace(1.0, 10.0, 37) if tau_grid is None else np.asarray(tau_grid, dtype=np.float64)
    if not curves:
        raise ValueError("fit_qqt needs at least one pool curve")
    data = []
    for cv in curves:
        n = as_float64(f"curves[{cv['name']}].n_seen", cv["n_seen"]).ravel()
        y = as_float64(f"curves[{cv['name']}].error", cv["error"]).ravel()
        if n.size != y.size:
            raise ValueError(f"curves[{cv['name']}]: n_seen ({n.size}) and error ({y.size}) lengths differ")
        data.append((cv["name"], float(cv["pool_size"]), n, y))
    bb, tt = np.meshgrid(b_grid, tau_grid, indexing="ij")           # (nb, nt)
    best = None
    if start is not None:
        a_grid = np.array([])                                        # skip the grid
        chosen = [(q.b, q.tau) for q in start.pools]
        best = (float(start.a), chosen, float(np.sum([np.sum((qqt_error(n, size, start.a, b, t, d) - y) ** 2)
                                                      for (_, size, n, y), (b, t) in zip(data, chosen)])))
    for a in a_grid:
        total, chosen = 0.0, []
        for name, size, n, y in data:
            sse = np.zeros_like(bb)
            for ni, yi in zip(n, y):
                sse += (qqt_error(ni, size, a, bb, tt, d) - yi) ** 2
            sse = np.where(np.isfinite(sse), sse, np.inf)
            i, j = np.unravel_index(int(np.argmin(sse)), sse.shape)
            total += float(sse[i, j])
            chosen.append((float(b_grid[i]), float(tau_grid[j])))
        if best is None or total < best[2]:
            best = (float(a), chosen, total)
    a0, chosen, grid_sse = best
    a_best, bt, sse, converged = a0, chosen, grid_sse, True
    a_lo, a_hi = (float(a_grid.min()), float(a_grid.max())) if a_grid.size else (1e-2, 1e2)
    b_lo, b_hi = float(b_grid.min()), float(b_grid.max())
    t_lo, t_hi = float(tau_grid.min()), float(tau_grid.max())
    if polish:
        p = len(data)

        def resid(v):
            a = math.exp(v[0])
            out = []
            for k, (_, size, n, y) in enumerate(data):
                out.append(qqt_error(n, size, a, v[1 + k], v[1 + p + k], d) - y)
            r = np.concatenate(out)
            return np.where(np.isfinite(r), r, 1e6)

        x0 = np.array([math.log(a0)] + [c[0] for c in chosen] + [c[1] for c in chosen])
        lo = [math.log(a_lo)] + [b_lo] * p + [t_lo] * p
        hi = [math.log(a_hi)] + [b_hi] * p + [t_hi] * p
        if a_lo < a_hi and b_lo < b_hi and t_lo < t_hi:
            with np.errstate(all="ignore"), one_blas_thread():
                r = least_squares(resid, np.clip(x0, lo, hi), bounds=(lo, hi), method="trf", x_scale="jac",
                                  xtol=1e-12, ftol=1e-15, gtol=1e-15, max_nfev=2000)
            s_new = float(np.sum(r.fun ** 2))
            if np.isfinite(s_new) and s_new <= grid_sse:
                a_best, sse, converged = math.exp(r.x[0]), s_new, bool(r.status > 0)
                bt = [(float(r.x[1 + k]), float(r.x[1 + p + k])) for k in range(p)]
    pools = [Pool(name, size, b, tau) for (name, size, _, _), (b, tau) in zip(data, bt)]
    at_bound = []

    def _edge(v, lo_, hi_):
        return lo_ < hi_ and (abs(v - lo_) <= 1e-9 * max(1.0, abs(lo_)) or abs(v - hi_) <= 1e-9 * max(1.0, abs(hi_)))
    if _edge(a_best, a_lo, a_hi):
        at_bound.append("a")
    for q in pools:
        if _edge(q.b, b_lo, b_hi):
            at_bound.append(f"{q.name}:b")
        if _edge(q.tau, t_lo, t_hi):
            at_bound.append(f"{q.name}:tau")
    return QQTFit(a=float(a_best), d=float(d), pools=pools, sse=float(sse),
                  n_points=int(sum(x[2].size for x in data)), converged=converged, grid_sse=float(grid_sse),
                  at_bound=at_bound)
