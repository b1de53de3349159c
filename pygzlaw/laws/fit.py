"""Chinchilla Approach 3, as published, vectorised across starts.

Hoffmann et al. (2022, App. D.2) fit log L = LSE(a - alpha log N, b - beta log D, e) by
minimising the *summed* Huber loss (delta = 1e-3) of log-space residuals with L-BFGS from a
grid of starts and keep the best. Here every start runs at once: one batched L-BFGS
(memory 10, two-loop recursion on (S, 10, 5) arrays) with a batched backtracking Armijo line
search, so one numpy call evaluates the objective and gradient of all live starts. Starts drop
out of the batch as they converge. The best few distinct minima are then polished with
``scipy.optimize.minimize(method="L-BFGS-B")`` at tight tolerances, so the result is never
worse than the per-start scipy loop that the published code runs (``bench/bench_fit.py``).

No plotting, printing or global state; progress goes to an optional callback.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from pygzlaw.laws._threads import one_blas_thread
from pygzlaw.laws.forms import LOG_BOUNDS, ChinchillaParams, as_float64, clip_log_coords

__all__ = ["GRIDS", "make_grid", "Constraint", "MINIMA_TOL", "FitResult", "ConvergenceError", "fit_chinchilla", "bootstrap_chinchilla",
           "refit_weighted", "params_at_bound", "E_ZERO_FRAC",
           "HuberLSE", "huber_objective", "lbfgs_batched", "scipy_loop_fit", "MIN_POINTS"]

MIN_POINTS = 6  # five parameters: at least one residual degree of freedom
MINIMA_TOL = 1e-3  # two minima are distinct when a coordinate (log A, log B, log E, alpha, beta) differs by more
_CHUNK32 = 128   # float32 blocks: 6 buffers x 128 x 245 x 4 B = 750 KB, fits L2
_FTOL32 = 3e-7   # float32 phase stop (relative change); see fit_chinchilla

# E below this fraction of the smallest observed loss is indistinguishable from E = 0 (it moves no
# prediction at the fitted points by more than 0.01%): the constraint E > 0 is active, "E at its bound".
E_ZERO_FRAC = 1e-4

# Parameter order inside the fitter: (a, b, e, alpha, beta) = (log A, log B, log E, alpha, beta).
_COORDS = ("a", "b", "e", "alpha", "beta")


class ConvergenceError(ValueError):
    """The best start of a fit did not meet the convergence criteria."""


def _hoffmann_grid() -> np.ndarray:
    # Hoffmann et al. 2022 App. D.2: alpha, beta in {0, .5, ..., 2}, e in {-1, -.5, ..., 1},
    # a, b in {0, 5, ..., 25}: 5 * 5 * 5 * 6 * 6 = 4500 starts.
    ab = np.arange(0.0, 25.1, 5.0)
    e = np.arange(-1.0, 1.01, 0.5)
    ex = np.arange(0.0, 2.01, 0.5)
    return _product(ab, ab, e, ex, ex)


def _muennighoff_grid() -> np.ndarray:
    # Muennighoff et al. 2023: a, b in linspace(0, 12, 4), e in linspace(-1, 1, 4),
    # alpha, beta in linspace(0, 1, 4): 4**5 = 1024 starts.
    ab = np.linspace(0.0, 12.0, 4)
    return _product(ab, ab, np.linspace(-1.0, 1.0, 4), np.linspace(0.0, 1.0, 4), np.linspace(0.0, 1.0, 4))


def _product(*axes) -> np.ndarray:
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


GRIDS: dict[str, Callable[[], np.ndarray]] = {"hoffmann": _hoffmann_grid, "muennighoff": _muennighoff_grid}


def make_grid(grid) -> np.ndarray:
    """Starting points as a (S, 5) float64 array of (log A, log B, log E, alpha, beta).

    Args:
        grid: "hoffmann" (4500 starts), "muennighoff" (1024 starts), or an (S, 5) array.
    """
    if isinstance(grid, str):
        if grid not in GRIDS:
            raise ValueError(f"grid={grid!r} is unknown; use one of {sorted(GRIDS)} or an (S, 5) array")
        return GRIDS[grid]()
    x = np.asarray(grid, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 5 or x.shape[0] < 1:
        raise ValueError(f"grid has shape {x.shape}; expected (n_starts, 5) columns {_COORDS}")
    if not np.isfinite(x).all():
        raise ValueError("grid contains non-finite starting values")
    return x


# ---------------------------------------------------------------- constraints
_NAME_TO_COORD = {"A": 0, "B": 1, "E": 2, "alpha": 3, "beta": 4}
_LOG_NAMES = ("A", "B", "E")           # fitted as log A, log B, log E


class Constraint:
    """Tied and fixed parameters as an affine map from free coordinates z to x = z M^T + c.

    x = (log A, log B, log E, alpha, beta). Tying alpha = beta (Muennighoff et al.'s base fit;
    Gadre et al.'s form has one exponent eta) makes beta a copy of alpha; fixing a parameter
    removes it from z and puts its value (log for A, B, E) in c. The objective's gradient in z is
    g_x M (chain rule), so the batched L-BFGS and scipy's polish run unchanged on z.

    Args:
        tie: None, or "alpha=beta" (the only tie the family uses).
        fix: None or {name: value} with names E, A, B, alpha, beta in natural units (A = 406.4,
            not log A).

    Raises:
        ValueError: an unknown name, a non-finite or non-positive (E, A, B) value, a tie other than
            alpha=beta, fixing one of two tied exponents to different values, or fixing everything.
    """

    def __init__(self, tie=None, fix=None):
        fix = dict(fix or {})
        for k, v in fix.items():
            if k not in _NAME_TO_COORD:
                raise ValueError(f"fix: unknown parameter {k!r}; use {sorted(_NAME_TO_COORD)}")
            if not (isinstance(v, (int, float)) and math.isfinite(v)) or (k in _LOG_NAMES and v <= 0):
                raise ValueError(f"fix: {k}={v!r} must be a finite number" + (" > 0" if k in _LOG_NAMES else ""))
        if tie not in (None, "", "alpha=beta", "beta=alpha"):
            raise ValueError(f"tie={tie!r}: only 'alpha=beta' is supported (CLI: --tie alpha=beta)")
        self.tie = "alpha=beta" if tie else None
        if self.tie and ("alpha" in fix) != ("beta" in fix):
            v = fix.get("alpha", fix.get("beta"))
            fix["alpha"] = fix["beta"] = v                  # a tied pair fixed through either name
        if self.tie and fix.get("alpha") != fix.get("beta"):
            raise ValueError(f"fix: alpha={fix['alpha']!r} and beta={fix['beta']!r} differ but tie=alpha=beta")
        self.fixed = {k: float(v) for k, v in fix.items()}
        c = np.zeros(5)
        cols = []
        for name, j in _NAME_TO_COORD.items():
            if name in self.fixed:
                c[j] = math.log(self.fixed[name]) if name in _LOG_NAMES else self.fixed[name]
            elif not (self.tie and name == "beta"):
                col = np.zeros(5)
                col[j] = 1.0
                if self.tie and name == "alpha":
                    col[4] = 1.0
                cols.append(col)
        if not cols:
            raise ValueError("every parameter is fixed; nothing to fit")
        self.M = np.array(cols).T                            # (5, m)
        self.c = c
        self.free_idx = np.array([int(np.flatnonzero(col)[0]) for col in cols])   # x column holding each z
        self.active = bool(self.tie or self.fixed)

    @property
    def n_free(self) -> int:
        return self.M.shape[1]

    def to_full(self, z):
        """(k, m) free coordinates -> (k, 5) full coordinates (z itself when nothing is tied or fixed)."""
        if not self.active:
            return z
        return np.asarray(z, dtype=np.float64) @ self.M.T + self.c

    def to_free(self, x):
        """(k, 5) full coordinates -> (k, m), reading each free coordinate's own column (x itself when
        nothing is tied or fixed)."""
        if not self.active:
            return x
        return np.asarray(x, dtype=np.float64)[:, self.free_idx]

    def wrap(self, fg):
        """An objective (x (k, 5), rows) -> (f, g (k, 5)) as one in z: (z (k, m), rows) -> (f, g (k, m))."""
        if not self.active:
            return fg
        M, c = self.M, self.c

        def fz(z, rows=None):
            f, g = fg(np.asarray(z, dtype=np.float64) @ M.T + c, rows)
            return f, g @ M
        return fz

    def to_dict(self) -> dict:
        return {"tie": self.tie, "fixed": dict(self.fixed)}


# ------------------------------------------------------------------ objective
class HuberLSE:
    """Summed Huber loss of log residuals and its gradient, for many parameter vectors at once.

    Holds reusable (chunk, n) work buffers: numpy temporaries above glibc's 128 KiB mmap threshold
    are mapped and page-faulted afresh on every operation, which made a 4500 x 245 evaluation 2.5x
    slower (68 ms against 27 ms) than in-place work on preallocated blocks.

    Args:
        log_n, log_d, log_l: (n,) float64 log parameters, log tokens, log loss.
        delta: Huber threshold (1e-3 as published).
        weights: None, or (R, n) float64 point weights per problem row (bootstrap counts).
        chunk: rows per block (64 x 245 float64 blocks keep the six buffers in L2).
        dtype: float64, or float32 for the exploration phase of fit_chinchilla (exp and log run
            about 4x faster in float32: 1.4 against 5.8 ns per element here); sums are float64.
    """

    def __init__(self, log_n, log_d, log_l, delta, weights=None, *, chunk=64, dtype=np.float64):
        self.dtype = np.dtype(dtype)
        self.log_n, self.log_d, self.log_l = (np.asarray(v, dtype=self.dtype) for v in (log_n, log_d, log_l))
        self.delta = float(delta)
        self.weights = None if weights is None else np.asarray(weights, dtype=self.dtype)
        self.chunk = int(chunk)
        self._ws = np.empty((6, self.chunk, log_n.size), dtype=self.dtype)
        self._ones = np.ones(log_n.size, dtype=self.dtype)
        self.n_rows_evaluated = 0

    def __call__(self, x, rows=None):
        """Return (f (k,), g (k, 5)) at x (k, 5); rows (k,) index `weights` when it is set."""
        x = np.asarray(x, dtype=np.float64)
        k = x.shape[0]
        self.n_rows_evaluated += k
        xt = np.ascontiguousarray(x.T, dtype=self.dtype)    # (5, k): contiguous columns broadcast fast
        f = np.empty(k)
        g = np.empty((k, 5))
        for lo in range(0, k, self.chunk):
            hi = min(lo + self.chunk, k)
            w = None
            if self.weights is not None:
                w = self.weights[rows[lo:hi]] if rows is not None else self.weights[lo:hi]
            self._block(xt[:, lo:hi], w, f[lo:hi], g[lo:hi])
        return f, g

    def _block(self, xt, w, f_out, g_out):
        k = xt.shape[1]
        u1, u2, s, r, psi, tmp = (buf[:k] for buf in self._ws)  # each (k, n)
        a, b, e, alpha, beta = (xt[j][:, None] for j in range(5))
        log_n, log_d, delta = self.log_n, self.log_d, self.delta
        np.multiply(alpha, log_n, out=u1)
        np.subtract(a, u1, out=u1)                          # a - alpha log N
        np.multiply(beta, log_d, out=u2)
        np.subtract(b, u2, out=u2)                          # b - beta log D
        # Unshifted LSE needs two (k, n) exps and one log; the max-shifted form needs a third exp.
        # Shift only when a term could overflow or every term underflow.
        lim = 80.0 if self.dtype == np.float32 else 700.0
        shifted = not (max(u1.max(), u2.max(), e.max()) < lim and e.min() > -lim)
        if shifted:
            m = np.maximum(np.maximum(u1, u2), e)
            u1 -= m
            u2 -= m
            ex3 = np.exp(e - m)                             # (k, n)
        else:
            ex3 = np.exp(e)                                 # (k, 1)
        np.exp(u1, out=u1)
        np.exp(u2, out=u2)
        np.add(u1, u2, out=s)
        s += ex3
        np.log(s, out=r)
        if shifted:
            r += m
        r -= self.log_l                                     # log residual
        np.clip(r, -delta, delta, out=psi)                  # Huber derivative
        # Huber value without a mask: psi (r - psi/2) is r^2/2 inside [-delta, delta], delta |r| - delta^2/2 outside
        np.multiply(psi, 0.5, out=tmp)
        r -= tmp
        r *= psi
        if w is not None:
            r *= w
            psi *= w
        f_out[:] = r.sum(1, dtype=np.float64)
        psi /= s
        u1 *= psi
        u2 *= psi
        # Row sums of the gradient as matrix-vector products: a float32 sum(dtype=float64) costs
        # 26 us per 128 x 245 block against 4 us for the product; f keeps its float64 sum.
        ones = self._ones
        g_out[:, 0] = u1 @ ones
        g_out[:, 1] = u2 @ ones
        if shifted:
            np.multiply(psi, ex3, out=tmp)
            g_out[:, 2] = tmp @ ones
        else:
            g_out[:, 2] = (psi @ ones) * ex3[:, 0]
        g_out[:, 3] = -(u1 @ log_n)
        g_out[:, 4] = -(u2 @ log_d)


def huber_objective(x, log_n, log_d, log_l, delta, weights=None):
    """Summed Huber loss of log residuals and its gradient (one-shot form of HuberLSE).

    Args:
        x: (S, 5) float64, rows (log A, log B, log E, alpha, beta).
        log_n, log_d, log_l: (n,) float64 log parameters, log tokens, log loss.
        delta: Huber threshold.
        weights: None or (S, n) float64 point weights per row.

    Returns:
        (f, g): (S,) objective values and (S, 5) gradients, float64.
    """
    return HuberLSE(log_n, log_d, log_l, delta, weights)(np.atleast_2d(x))


# ------------------------------------------------------------- batched L-BFGS
# status codes of lbfgs_batched
RUNNING, CONV_F, CONV_G, LS_FAIL, MAX_ITER, NONFINITE = 0, 1, 2, 3, 4, 5
_CONVERGED = (CONV_F, CONV_G)


def lbfgs_batched(fg, x0, *, memory=10, max_iter=1000, ftol=2.2e-9, gtol=1e-5, max_ls=40, c1=1e-4,
                  callback=None):
    """Minimise many independent smooth problems at once with L-BFGS.

    Stopping rules follow scipy's L-BFGS-B defaults: (f_k - f_k+1) / max(|f_k|, |f_k+1|, 1) <= ftol,
    or max |g| <= gtol. Stopped starts are compacted out of the working arrays, so late
    iterations cost only what their few live starts cost. The line search backtracks from the
    L-BFGS step (unit step once curvature pairs exist) with safeguarded quadratic interpolation
    until the Armijo condition holds.

    Args:
        fg: fg(x (k, p), rows (k,) int) -> (f (k,), g (k, p)); rows index the problems.
        x0: (S, p) float64 starting points.
        memory: number of (s, y) pairs kept per start.
        max_iter: iteration cap per start.
        ftol, gtol: stopping tolerances (as above).
        max_ls: function evaluations before a line search counts as failed.
        c1: Armijo constant.
        callback: optional callback(iteration, n_active).

    Returns:
        (x, f, status, n_iter): (S, p) minimisers, (S,) values, (S,) int status codes
        (1 ftol, 2 gtol, 3 line search failed, 4 max_iter, 5 non-finite start), (S,) iterations.
    """
    x = np.array(x0, dtype=np.float64, copy=True)
    n_starts, p = x.shape
    f, g = fg(x, np.arange(n_starts))
    status = np.zeros(n_starts, dtype=np.int8)
    status[~(np.isfinite(f) & np.isfinite(g).all(1))] = NONFINITE
    n_iter = np.zeros(n_starts, dtype=np.int64)
    ids = np.flatnonzero(status == RUNNING)                 # working rows -> problem index
    X, F, G = x[ids], f[ids], g[ids]
    k = ids.size
    s_mem = np.zeros((memory, k, p))                         # circular in the first axis, slot it % memory
    y_mem = np.zeros((memory, k, p))
    rho = np.zeros((memory, k))                              # 0 = empty slot: a no-op in both loops
    gamma = np.ones(k)                                       # H0 scale s.y / y.y of the newest pair
    fresh = np.ones(k, dtype=bool)                           # no curvature pair yet
    it = 0
    for it in range(max_iter):
        k = ids.size
        if k == 0:
            break
        if callback is not None:
            callback(it, k)
        # two-loop recursion, newest slot first
        order = [(it - 1 - j) % memory for j in range(memory)]
        q = G.copy()
        alph = np.empty((memory, k))
        for j in order:
            alph[j] = rho[j] * np.einsum("kp,kp->k", s_mem[j], q)
            q -= alph[j][:, None] * y_mem[j]
        q *= gamma[:, None]
        for j in reversed(order):
            beta_j = rho[j] * np.einsum("kp,kp->k", y_mem[j], q)
            q += s_mem[j] * (alph[j] - beta_j)[:, None]
        d = np.negative(q, out=q)
        dg = np.einsum("kp,kp->k", d, G)
        reset = ~(dg < 0)
        if reset.any():  # not a descent direction: forget the curvature pairs, go down the gradient
            d[reset] = -G[reset]
            dg[reset] = -np.einsum("kp,kp->k", G[reset], G[reset])
            rho[:, reset] = 0.0
            gamma[reset] = 1.0
            fresh |= reset
        t = np.ones(k)
        if fresh.any():  # first step without curvature information: unit length, as scipy
            dn = np.sqrt(np.einsum("kp,kp->k", d[fresh], d[fresh]))
            t[fresh] = np.minimum(1.0, 1.0 / np.maximum(dn, 1e-300))
        Xn, Fn, Gn = X.copy(), F.copy(), G.copy()
        ok = np.zeros(k, dtype=bool)
        pending = np.arange(k)
        for _ in range(max_ls):
            tp = t[pending]
            xt = X[pending] + tp[:, None] * d[pending]
            ft, gt = fg(xt, ids[pending])
            acc = np.isfinite(ft) & np.isfinite(gt).all(1) & (ft <= F[pending] + c1 * tp * dg[pending])
            if acc.any():
                pa = pending[acc]
                Xn[pa], Fn[pa], Gn[pa] = xt[acc], ft[acc], gt[acc]
                ok[pa] = True
            rej = ~acc
            pending = pending[rej]
            if pending.size == 0:
                break
            # safeguarded quadratic interpolation of f along d, clipped to [0.1 t, 0.5 t]
            tp, ftr = tp[rej], ft[rej]
            denom = 2.0 * (ftr - F[pending] - dg[pending] * tp)
            with np.errstate(divide="ignore", invalid="ignore"):
                tq = -dg[pending] * tp * tp / denom
            tq = np.where(np.isfinite(tq) & (denom > 0), tq, 0.5 * tp)
            t[pending] = np.clip(tq, 0.1 * tp, 0.5 * tp)
        # curvature pair into this iteration's slot; s.y <= 0 (or a failed step) leaves it empty
        slot = it % memory
        sv = Xn - X
        yv = Gn - G
        sy = np.einsum("kp,kp->k", sv, yv)
        yy = np.einsum("kp,kp->k", yv, yv)
        upd = ok & (sy > 1e-10 * np.sqrt(np.einsum("kp,kp->k", sv, sv) * yy))
        s_mem[slot] = sv
        y_mem[slot] = yv
        rho[slot] = np.where(upd, 1.0 / np.where(upd, sy, 1.0), 0.0)
        gamma = np.where(upd, sy / np.where(upd, yy, 1.0), gamma)
        fresh &= ~upd
        conv_f = ok & ((F - Fn) <= ftol * np.maximum(np.maximum(np.abs(F), np.abs(Fn)), 1.0))
        conv_g = ok & (np.abs(Gn).max(1) <= gtol)
        X, F, G = Xn, Fn, Gn
        st = np.zeros(k, dtype=np.int8)
        st[~ok] = LS_FAIL
        st[conv_f] = CONV_F
        st[conv_g] = CONV_G
        done = st != RUNNING
        if done.any():
            di = ids[done]
            x[di], f[di], g[di], status[di] = X[done], F[done], G[done], st[done]
            n_iter[di] = it + 1
            keep = ~done
            ids, X, F, G = ids[keep], X[keep], F[keep], G[keep]
            s_mem, y_mem, rho = s_mem[:, keep], y_mem[:, keep], rho[:, keep]
            gamma, fresh = gamma[keep], fresh[keep]
    if ids.size:
        x[ids], f[ids], g[ids], status[ids] = X, F, G, MAX_ITER
        n_iter[ids] = max_iter
    return x, f, status, n_iter


# ------------------------------------------------------------------- results
@dataclass
class FitResult:
    """Outcome of fit_chinchilla.

    Attributes:
        params: best-fit ChinchillaParams.
        objective: summed Huber loss at the best fit.
        n_starts: starts tried; n_converged: starts that met ftol/gtol in the batched run.
        best_start: index into the grid of the start that gave the best fit.
        seconds: wall time of the fit.
        n_points: data points used; huber_delta: delta used; grid: grid name or "custom".
        converged: the best start met the stopping rules (batched run or scipy polish).
        minima: (k, 5) distinct local minima found, best first, as (log A, log B, log E, alpha, beta);
            bootstrap warm-starts from these. Distinct: every two rows differ by more than
            MINIMA_TOL (max abs difference of those coordinates), after polishing too.
        constraint: the ties and fixed values the fit kept (Constraint; none by default).
    """

    params: ChinchillaParams
    objective: float
    n_starts: int
    n_converged: int
    best_start: int
    seconds: float
    n_points: int
    huber_delta: float
    grid: str
    converged: bool
    minima: np.ndarray = field(repr=False)
    constraint: "Constraint" = field(default_factory=lambda: Constraint(), repr=False)
    at_bound: tuple = ()


def params_at_bound(x_log, min_loss: float, fixed=()) -> tuple:
    """Names of parameters driven to a bound by a fit (see forms.LOG_BOUNDS and E_ZERO_FRAC).

    Args:
        x_log: (5,) unclipped fit coordinates (log A, log B, log E, alpha, beta).
        min_loss: smallest observed loss (nats/token).
        fixed: names held fixed (never reported).

    Returns:
        tuple of names among "E", "A", "B": E when E <= E_ZERO_FRAC * min_loss (or clipped at
        forms.E_FLOOR), A or B when log A or log B left [-700, 700] (clipped).
    """
    x = np.asarray(x_log, dtype=np.float64).ravel()
    out = []
    if x[2] <= math.log(E_ZERO_FRAC * min_loss) or x[2] < LOG_BOUNDS["E"][0]:
        out.append("E")
    for name, j in (("A", 0), ("B", 1)):
        lo, hi = LOG_BOUNDS[name]
        if not lo <= x[j] <= hi:
            out.append(name)
    return tuple(k for k in out if k not in fixed)


def _prepare(n_params, n_tokens, loss):
    n = as_float64("n_params", n_params).ravel()
    d = as_float64("n_tokens", n_tokens).ravel()
    l_ = as_float64("loss", loss).ravel()
    if not (n.size == d.size == l_.size):
        raise ValueError(f"n_params ({n.size}), n_tokens ({d.size}) and loss ({l_.size}) "
                         "must have the same length")
    if n.size < MIN_POINTS:
        raise ValueError(f"too few points to fit the Chinchilla law: got {n.size}, need at least "
                         f"{MIN_POINTS} (five parameters plus one degree of freedom)")
    return np.log(n), np.log(d), np.log(l_)


def _distinct(x, f, order, k, tol=MINIMA_TOL):
    """The first k rows of x (in `order`) that differ from every kept row by more than tol."""
    kept: list[int] = []
    for i in order:
        if not np.isfinite(f[i]):
            continue
        if all(np.abs(x[i] - x[j]).max() > tol for j in kept):
            kept.append(int(i))
            if len(kept) == k:
                break
    return kept


def _huber_1d(v, log_n, log_d, log_l, delta):
    """Objective and gradient for one parameter vector: lean 1-D numpy for per-start scipy calls."""
    u1 = v[0] - v[3] * log_n
    u2 = v[1] - v[4] * log_d
    m = np.maximum(np.maximum(u1, u2), v[2])
    e1, e2, e3 = np.exp(u1 - m), np.exp(u2 - m), np.exp(v[2] - m)
    s = e1 + e2 + e3
    r = m + np.log(s) - log_l
    psi = np.clip(r, -delta, delta)
    f = float(np.dot(psi, r - 0.5 * psi))
    q = psi / s
    t1, t2 = q * e1, q * e2
    return f, np.array([t1.sum(), t2.sum(), np.dot(q, e3), -np.dot(t1, log_n), -np.dot(t2, log_d)])


def _scipy_polish(x0, log_n, log_d, log_l, delta, weights=None, *, ftol=1e-13, gtol=1e-10, con=None):
    """scipy L-BFGS-B from the full-coordinate point x0 (5,); with a Constraint, over its free
    coordinates. Returns (x (5,) full coordinates, f, success)."""
    from scipy.optimize import minimize

    obj = HuberLSE(log_n, log_d, log_l, delta, None if weights is None else weights[None, :])

    def fun_x(v):
        if weights is None:
            return _huber_1d(v, log_n, log_d, log_l, delta)
        fv, gv = obj(v[None, :], np.zeros(1, dtype=np.int64))
        return float(fv[0]), gv[0]

    if con is None or not con.active:
        fun, z0, back = fun_x, x0, (lambda z: z)
    else:
        def fun(z):
            f, g = fun_x(con.to_full(z[None, :])[0])
            return f, g @ con.M
        z0, back = con.to_free(x0[None, :])[0], (lambda z: con.to_full(z[None, :])[0])
    res = minimize(fun, z0, jac=True, method="L-BFGS-B", options={"ftol": ftol, "gtol": gtol, "maxiter": 1000})
    return back(res.x), float(res.fun), bool(res.success)


def fit_chinchilla(n_params, n_tokens, loss, *, grid="hoffmann", huber_delta=1e-3, polish=4,
                   max_iter=2000, ftol=2.2e-9, gtol=1e-5, refine_ratio=1.5, require_convergence=True,
                   callback=None, tie=None, fix=None) -> FitResult:
    """Fit L(N, D) = E + A/N^alpha + B/D^beta by Hoffmann et al.'s Approach 3.

    Minimises sum_i Huber_delta(LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i) (summed, not
    averaged) with L-BFGS from every grid start, batched, then polishes the ``polish`` best distinct
    minima with scipy L-BFGS-B and keeps the best.

    Args:
        n_params: (n,) parameters per run (count), float64 or int.
        n_tokens: (n,) training tokens per run.
        loss: (n,) final loss per run (nats/token).
        grid: "hoffmann" (4500 starts), "muennighoff" (1024) or an (S, 5) array of
            (log A, log B, log E, alpha, beta).
        huber_delta: Huber threshold on log residuals (1e-3 as published).
        polish: number of best distinct minima refined with scipy (0 = none).
        max_iter, ftol, gtol: batched L-BFGS limits (ftol/gtol as scipy's defaults).
        refine_ratio: starts whose float32-phase value is within this factor of the best are
            refined in float64 (np.inf refines every start).
        require_convergence: raise ConvergenceError when the best start did not converge.
        callback: optional callback(iteration, n_active) for progress.
        tie: None or "alpha=beta": fit one exponent for both terms (Muennighoff et al.'s base fit).
        fix: None or {name: value} holding E, A, B, alpha and/or beta at a value (natural units)
            while the rest are fitted (see Constraint). The grid's starts are projected onto the
            free coordinates and duplicates dropped.

    Returns:
        FitResult.

    Raises:
        ValueError: too few points, mismatched lengths, float32, non-finite or non-positive input.
        ConvergenceError: the best start did not converge (and require_convergence).
    """
    t0 = time.perf_counter()
    log_n, log_d, log_l = _prepare(n_params, n_tokens, loss)
    grid_name = grid if isinstance(grid, str) else "custom"
    con = Constraint(tie, fix)
    x0 = np.unique(con.to_free(make_grid(grid)), axis=0) if con.active else make_grid(grid)
    if not (huber_delta > 0 and math.isfinite(huber_delta)):
        raise ValueError(f"huber_delta={huber_delta!r} must be a positive finite number")

    # Phase 1: every start to convergence with a float32 objective (exp/log ~4x cheaper), stopping
    # at a relative change of 3e-7, a few float32 roundings of the summed objective (1e-7 and 1e-6
    # reach the same best objectives on Epoch's 245 and 240 points and on synthetic runs; 3e-7 was
    # fastest).
    # Phase 2: float64 L-BFGS with scipy's default stopping rules, continuing from the phase-1 end
    # point of every start within `refine_ratio` of the best value and of every start that did
    # not stop cleanly. On Epoch's 245 points (one thread): 0.86-1.5 s on this shared VM depending
    # on neighbours, against ~2.5-3 s for float64 throughout, with an equal or lower best objective
    # after polishing.
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        fg32 = con.wrap(HuberLSE(log_n, log_d, log_l, huber_delta, dtype=np.float32, chunk=_CHUNK32))
        x, f, status, _ = lbfgs_batched(fg32, x0, max_iter=max_iter, ftol=_FTOL32, gtol=0.0, callback=callback)
        fin = np.isfinite(f)
        if not fin.any():
            raise ConvergenceError(f"all {x0.shape[0]} starts gave a non-finite objective; check the data")
        sel = fin & ((f <= refine_ratio * f[fin].min()) | (status == LS_FAIL) | (status == MAX_ITER))
        fg64 = con.wrap(HuberLSE(log_n, log_d, log_l, huber_delta))
        x2, f2, st2, _ = lbfgs_batched(fg64, x[sel], max_iter=max_iter, ftol=ftol, gtol=gtol)
        x[sel], f[sel], status[sel] = x2, f2, st2
        f[~sel & fin] = fg64(x[~sel & fin])[0]             # float64 values for the ranking
    conv = np.isin(status, _CONVERGED)
    x = con.to_full(x)                                        # full coordinates from here on
    order = np.argsort(np.where(np.isfinite(f), f, np.inf), kind="stable")
    kept = _distinct(x, f, order, max(polish, 8))
    best = kept[0]
    best_x, best_f, best_conv = x[best].copy(), float(f[best]), bool(conv[best])
    cand = [(x[i].copy(), float(f[i])) for i in kept]
    if polish > 0:
        # Polish: tight float64 L-BFGS on the best distinct minima, then scipy's L-BFGS-B from there.
        # Near the optimum the summed Huber objective is flat to ~1e-12, and scipy's default ftol
        # (2.2e-9 scaled by max(|f|, 1) = 1) stops long before that.
        pi = kept[:polish]
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            zq, fq, sq, _ = lbfgs_batched(fg64, con.to_free(x[pi]), max_iter=max_iter, ftol=1e-15, gtol=1e-11)
        xq = con.to_full(zq)
        for j, i in enumerate(pi):
            with one_blas_thread():            # scipy's L-BFGS-B on 5 numbers: BLAS threads only cost
                xp, fp, okp = _scipy_polish(xq[j], log_n, log_d, log_l, huber_delta, con=con)
            if not (np.isfinite(fp) and fp <= fq[j]):
                xp, fp, okp = xq[j], float(fq[j]), bool(sq[j] in _CONVERGED)
            cand[j] = (xp, fp)
            if np.isfinite(fp) and fp <= best_f:
                best, best_x, best_f = i, xp, fp
                best_conv = best_conv or okp or bool(conv[i])
    if not best_conv:
        # L-BFGS-B reports line-search trouble at a kink of the Huber loss; accept a point whose
        # gradient (over the free coordinates) is small on the objective's own scale (delta * n_points).
        _, gb = huber_objective(best_x[None, :], log_n, log_d, log_l, huber_delta)
        gfree = gb @ con.M if con.active else gb
        best_conv = bool(np.abs(gfree[0]).max() <= 1e-6 * huber_delta * log_n.size)
    if require_convergence and not best_conv:
        raise ConvergenceError(f"the best of {x0.shape[0]} starts did not converge (objective {best_f:.6g}); "
                               "raise max_iter, try grid='muennighoff' or a custom grid, or check the data")
    # Polishing can send several minima to one point: keep them distinct (MINIMA_TOL), best first.
    cx = np.array([c[0] for c in cand])
    cf = np.array([float(huber_objective(v[None, :], log_n, log_d, log_l, huber_delta)[0][0]) for v in cx])
    minima_arr = cx[_distinct(cx, cf, np.argsort(np.where(np.isfinite(cf), cf, np.inf), kind="stable"), len(cx))]
    at_bound = params_at_bound(best_x, float(np.exp(log_l.min())), fixed=tuple(con.fixed))
    minima_arr = clip_log_coords(minima_arr)[0]             # bootstrap starts inside the bounds
    return FitResult(params=ChinchillaParams.from_log(best_x), at_bound=at_bound, objective=best_f, n_starts=x0.shape[0],
                     n_converged=int(conv.sum()), best_start=int(best), seconds=time.perf_counter() - t0,
                     n_points=log_n.size, huber_delta=huber_delta, grid=grid_name, converged=best_conv,
                     minima=minima_arr, constraint=con)


def bootstrap_chinchilla(n_params, n_tokens, loss, fit: FitResult, *, n_boot=1000, seed=0, n_warm=4,
                         max_iter=2000, ftol=1e-13, gtol=1e-9, callback=None) -> np.ndarray:
    """Bootstrap refits over data points (Besiroglu et al. 2024 resample points with replacement).

    Each replicate is the same data reweighted by its resampling counts. Instead of the full grid,
    a replicate starts from the ``n_warm`` best distinct minima of the full fit (its basins); all
    n_boot * n_warm problems run in one batched L-BFGS and each replicate keeps its best. A
    replicate's minimum moves only slightly from the full fit's, so the warm starts find it.

    Args:
        n_params, n_tokens, loss: (n,) data as for fit_chinchilla.
        fit: the full-data FitResult (gives the warm starts and delta).
        n_boot: number of resamples.
        seed: RNG seed (numpy PCG64); same seed, same samples.
        n_warm: warm starts per replicate.
        max_iter: iteration cap.
        ftol, gtol: stopping rules. Much tighter than scipy's defaults on purpose: the objective is
            ~1e-3, so ftol = 2.2e-9 (scaled by max(|f|, 1)) would stop a warm start at once and
            the intervals would come out far too narrow (A's spread 5.8 instead of ~100+).
        callback: optional callback(iteration, n_active).

    Returns:
        (n_boot, 5) float64 array of (E, A, B, alpha, beta) per replicate; a replicate whose refit
        failed (non-finite objective or parameters) is a row of NaN.
    """
    log_n, log_d, log_l = _prepare(n_params, n_tokens, loss)
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot} must be >= 1")
    n = log_n.size
    rng = np.random.default_rng(seed)
    counts = np.empty((n_boot, n))
    for r in range(n_boot):
        counts[r] = np.bincount(rng.integers(0, n, size=n), minlength=n)
    return refit_weighted(log_n, log_d, log_l, fit, counts, n_warm=n_warm, max_iter=max_iter, ftol=ftol,
                          gtol=gtol, callback=callback)


def refit_weighted(log_n, log_d, log_l, fit: FitResult, weights, *, n_warm=4, max_iter=2000, ftol=1e-13,
                   gtol=1e-9, callback=None) -> np.ndarray:
    """Refit the law once per row of point weights, all rows batched, warm-started from fit.minima.

    Used by the bootstrap (weights = resampling counts) and leave-one-out (one zero per row).

    Args:
        log_n, log_d, log_l: (n,) log parameters, log tokens, log loss.
        fit: the full-data FitResult.
        weights: (R, n) float64 non-negative point weights.
        n_warm, max_iter, ftol, gtol, callback: as bootstrap_chinchilla.

    Returns:
        (R, 5) float64 (E, A, B, alpha, beta) per row; NaN rows for failed refits.
    """
    weights = np.asarray(weights, dtype=np.float64)
    n_rep = weights.shape[0]
    con = getattr(fit, "constraint", None) or Constraint()
    starts = fit.minima[:max(1, n_warm)]
    k = starts.shape[0]
    x0 = np.tile(starts, (n_rep, 1))                        # (R * k, 5), row-major by replicate
    fg = con.wrap(HuberLSE(log_n, log_d, log_l, fit.huber_delta, np.repeat(weights, k, axis=0)))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        z, f, _, _ = lbfgs_batched(fg, con.to_free(x0), max_iter=max_iter, ftol=ftol, gtol=gtol,
                                   callback=callback)
    x = con.to_full(z)
    f = np.where(np.isfinite(f), f, np.inf).reshape(n_rep, k)
    best = np.argmin(f, axis=1)
    xb = x.reshape(n_rep, k, 5)[np.arange(n_rep), best]     # (R, 5) log coordinates
    xb = clip_log_coords(xb)[0]                             # E held at forms.E_FLOOR, never exp(-800) = 0
    with np.errstate(over="ignore"):
        out = np.column_stack([np.exp(xb[:, 2]), np.exp(xb[:, 0]), np.exp(xb[:, 1]), xb[:, 3], xb[:, 4]])
    failed = ~np.isfinite(f.min(axis=1)) | ~np.isfinite(out).all(axis=1)
    out[failed] = np.nan                                    # a failed refit is marked, never made up
    return out


def scipy_loop_fit(n_params, n_tokens, loss, *, grid="hoffmann", huber_delta=1e-3):
    """The published procedure verbatim: one scipy L-BFGS-B call per start, default tolerances.

    The baseline of bench/bench_fit.py: the same objective and analytic gradient as a lean 1-D
    numpy function, one start at a time.

    Returns:
        (x_best (5,) log coordinates, f_best, seconds).
    """
    from scipy.optimize import minimize

    t0 = time.perf_counter()
    log_n, log_d, log_l = _prepare(n_params, n_tokens, loss)
    x0 = make_grid(grid)

    def fun(v):
        return _huber_1d(v, log_n, log_d, log_l, huber_delta)

    best_x, best_f = None, np.inf
    with np.errstate(over="ignore", under="ignore", invalid="ignore"), one_blas_thread():
        for x in x0:
            res = minimize(fun, x, jac=True, method="L-BFGS-B")
            if np.isfinite(res.fun) and res.fun < best_f:
                best_x, best_f = res.x, float(res.fun)
    return best_x, best_f, time.perf_counter() - t0
