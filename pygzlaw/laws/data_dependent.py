"""Data-dependent scaling laws: Chinchilla parameters as linear functions of gzip compressibility H.

Pandey 2024, Sec. 5: fit L(N, D) per dataset, regress each parameter x in {E, A, B, alpha, beta}
on H (x(H) = m_x H + n_x), then L(N, D, H) = E(H) + A(H)/N^alpha(H) + B(H)/D^beta(H). The adjusted
form mixes each parameter with Chinchilla's: x = (1 - eps) x' + eps x(H). No eps is published;
it is a parameter here and can be fit from several datasets (fit_epsilon).

``regress="log"`` (CLI ``--regress log``) regresses log A and log B on H instead (A(H) = exp(m H + n)):
the fitted A and B span orders of magnitude across datasets, and a straight line through them goes
negative inside the fitted H range (A(H) <= 0: no law there). The paper's linear form stays the
default; a linear law reports where it is defined (DataDependentLaw.domain) and refuses elsewhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pygzlaw.laws.allocate import Allocation, allocate, frontier_exponents
from pygzlaw.laws.forms import HOFFMANN_PARAMS, ChinchillaParams, as_float64, chinchilla_loss, fitted_range
from pygzlaw.laws.intervals import percentile_interval

__all__ = ["Regression", "regress_params", "regress_replicates", "DataDependentLaw", "fit_data_dependent",
           "PARAM_NAMES", "REGRESS", "LOG_REGRESSED"]

PARAM_NAMES = ("E", "A", "B", "alpha", "beta")
REGRESS = ("linear", "log")
LOG_REGRESSED = ("A", "B")          # regress="log" fits log A and log B on H; E, alpha, beta stay linear


@dataclass(frozen=True)
class Regression:
    """x(H) = slope * H + intercept (scale "linear"), or log x(H) = slope * H + intercept (scale "log"),
    with Pearson r, two-sided p-value and the slope's standard error (of the line actually fitted)."""

    slope: float
    intercept: float
    r: float
    p_value: float
    stderr: float
    intercept_stderr: float
    scale: str = "linear"

    def __call__(self, h):
        y = self.slope * np.asarray(h, dtype=np.float64) + self.intercept
        return np.exp(np.clip(y, -700.0, 700.0)) if self.scale == "log" else y   # forms.LOG_BOUNDS: never 0 or inf

    def to_dict(self) -> dict:
        d = {k: float(getattr(self, k)) for k in ("slope", "intercept", "r", "p_value", "stderr", "intercept_stderr")}
        d["scale"] = self.scale
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Regression":
        scale = str(d.get("scale", "linear"))
        if scale not in REGRESS:
            raise ValueError(f"regression scale={scale!r}; expected one of {list(REGRESS)}")
        return cls(**{k: float(d.get(k, float("nan"))) for k in ("slope", "intercept", "r", "p_value", "stderr",
                                                                   "intercept_stderr")}, scale=scale)


def regress_params(h, params: list[ChinchillaParams], *, regress: str = "linear") -> dict[str, Regression]:
    """Least-squares line of each parameter against H (scipy.stats.linregress).

    Args:
        h: (k,) gzip compressibility per dataset (compressed / raw bytes).
        params: k fitted ChinchillaParams, one per dataset.
        regress: "linear" (Pandey 2024, Sec. 5: x(H) = m H + n for every parameter) or "log" (log A and
            log B on H, so A(H), B(H) > 0 for every H; E, alpha, beta stay linear).

    Returns:
        {"E"|"A"|"B"|"alpha"|"beta": Regression}.

    Raises:
        ValueError: fewer than 3 datasets (r and p need >= 1 residual degree of freedom), all H equal,
            or an unknown ``regress``.
    """
    from scipy.stats import linregress

    _check_regress(regress)
    hs = as_float64("h", h).ravel()
    if hs.size != len(params):
        raise ValueError(f"h has {hs.size} values but {len(params)} parameter sets were given")
    if hs.size < 3:
        raise ValueError(f"regressing parameters on H needs >= 3 datasets, got {hs.size}")
    if np.ptp(hs) == 0:
        raise ValueError(f"all datasets have the same H ({hs[0]}); the regression on H is undefined")
    out = {}
    for k in PARAM_NAMES:
        y = np.array([getattr(p, k) for p in params])
        scale = "log" if regress == "log" and k in LOG_REGRESSED else "linear"
        res = linregress(hs, np.log(y) if scale == "log" else y)
        out[k] = Regression(float(res.slope), float(res.intercept), float(res.rvalue), float(res.pvalue),
                            float(res.stderr), float(res.intercept_stderr), scale)
    return out


def _check_regress(regress):
    if regress not in REGRESS:
        raise ValueError(f"regress={regress!r}; use 'linear' (the paper's x(H) = m H + n) or 'log' "
                         "(log A, log B linear in H; CLI: --regress log)")
    return regress


@dataclass
class DataDependentLaw:
    """L(N, D, H) with the adjusted-Chinchilla weight epsilon.

    Attributes:
        regressions: {param: Regression} (see regress_params).
        bootstrap: None or (n_boot, 5, 2) float64 replicate (slope, intercept) per parameter
            (order E, A, B, alpha, beta), for prediction intervals.
        reference: Chinchilla's constants (the primed values), default Hoffmann et al.'s.
        epsilon: weight of the data-dependent part, 1.0 = pure L(N, D, H), 0.0 = Chinchilla.
        h_range: (min, max) of the datasets' H the regressions were fit on.
        datasets: per-dataset records [{"name", "h", "params", "n_points"}] (JSON-able).
        name, meta: labels.
    """

    regressions: dict
    reference: ChinchillaParams = HOFFMANN_PARAMS
    epsilon: float = 1.0
    h_range: tuple = (float("nan"), float("nan"))
    datasets: list = field(default_factory=list)
    name: str = ""
    meta: dict = field(default_factory=dict)
    bootstrap: np.ndarray | None = None

    kind = "data_dependent"

    def __post_init__(self):
        _check_eps(self.epsilon)
        missing = [k for k in PARAM_NAMES if k not in self.regressions]
        if missing:
            raise ValueError(f"regressions missing {missing}; expected {list(PARAM_NAMES)}")

    def params_at(self, h: float, *, epsilon: float | None = None) -> ChinchillaParams:
        """Chinchilla parameters at compressibility H: x = (1 - eps) x' + eps (m_x H + n_x).

        Raises:
            ValueError: H not finite/positive, or a parameter leaves its domain (E, A, B <= 0) at this H.
        """
        eps = self.epsilon if epsilon is None else _check_eps(epsilon)
        if not (isinstance(h, (int, float, np.floating)) and math.isfinite(h) and h > 0):
            raise ValueError(f"h={h!r} must be a positive finite gzip ratio (compressed/raw bytes), e.g. 0.45")
        vals = {}
        for k in PARAM_NAMES:
            vals[k] = (1 - eps) * getattr(self.reference, k) + eps * float(self.regressions[k](h))
        inf = [k for k in PARAM_NAMES if not math.isfinite(vals[k])]
        if inf:
            lo, hi = self.h_range
            raise ValueError(f"{inf[0]}(H={h:g}) overflows ({self.regressions[inf[0]].scale} regression on H): H is "
                             f"far outside the fitted H range [{lo:.4g}, {hi:.4g}]")
        bad = [k for k in ("E", "A", "B") if not vals[k] > 0]
        if bad:
            raise ValueError(self._domain_message(h, eps, bad, vals))
        return ChinchillaParams(**vals)

    @property
    def fitted_range(self) -> dict | None:
        """{"n_params": [lo, hi], "n_tokens": [lo, hi]} over every dataset's runs (None for a law saved
        without per-dataset ranges)."""
        rs = [d.get("range") for d in self.datasets]
        if not rs or any(not r for r in rs):
            return None
        return {k: [min(r[k][0] for r in rs), max(r[k][1] for r in rs)] for k in ("n_params", "n_tokens")}

    @property
    def regress(self) -> str:
        """"log" when A and B were regressed in log space, else "linear" (the paper's form)."""
        return "log" if any(self.regressions[k].scale == "log" for k in LOG_REGRESSED) else "linear"

    def domain(self, *, epsilon: float | None = None) -> tuple:
        """The H interval where E(H), A(H), B(H) > 0, i.e. where the law is defined.

        Each mixed parameter (1 - eps) x' + eps (m H + n) is linear in H, so it is positive on a half-line
        (or everywhere / nowhere); log-regressed parameters are positive everywhere.

        Returns:
            (lo, hi) floats; -inf / inf where unbounded; lo >= hi when the law is defined nowhere.
        """
        eps = self.epsilon if epsilon is None else _check_eps(epsilon)
        lo, hi = -math.inf, math.inf
        for k in ("E", "A", "B"):
            reg = self.regressions[k]
            if reg.scale == "log":
                continue
            m = eps * reg.slope
            c = (1 - eps) * getattr(self.reference, k) + eps * reg.intercept
            if m > 0:
                lo = max(lo, -c / m)
            elif m < 0:
                hi = min(hi, -c / m)
            elif not c > 0:
                return (math.inf, -math.inf)
        return (lo, hi)

    def domain_warnings(self, *, epsilon: float | None = None) -> list:
        """One warning when the law is undefined (E, A or B <= 0) somewhere in its fitted H range."""
        lo, hi = self.domain(epsilon=epsilon)
        f_lo, f_hi = self.h_range
        if not (math.isfinite(f_lo) and math.isfinite(f_hi)) or (lo < f_lo and hi > f_hi):
            return []
        return [(f"law {self.name}: " if self.name else "this law: ") + self._domain_text(epsilon, in_range=True)]

    def _domain_text(self, epsilon, bad=("E", "A", "B"), in_range=False) -> str:
        eps = self.epsilon if epsilon is None else epsilon
        lo, hi = self.domain(epsilon=eps)
        f_lo, f_hi = self.h_range
        where = ("nowhere" if not lo < hi else
                 f"only for H in ({lo:.4g}, {hi:.4g})" if math.isfinite(lo) and math.isfinite(hi) else
                 f"only for H > {lo:.4g}" if math.isfinite(lo) else f"only for H < {hi:.4g}")
        text = (f"with the {self.regress} regression on H (epsilon={eps:g}) the law is defined (E, A, B > 0) {where}"
                + (f", not across the H range it was fitted on [{f_lo:.4g}, {f_hi:.4g}]" if in_range
                   else f"; it was fitted on H in [{f_lo:.4g}, {f_hi:.4g}]"))
        fixes = [] if in_range or not lo < hi else ["use H in that range"]
        if any(self.regressions[k].scale == "linear" for k in bad if k in LOG_REGRESSED):
            fixes.append("refit with regress='log' (CLI: fit --regress log) so A(H), B(H) stay positive")
        fixes.append("use a smaller epsilon" if eps > 0 else "")
        return text + "; " + ", or ".join(f for f in fixes if f)

    def _domain_message(self, h, eps, bad, vals) -> str:
        parts = ", ".join(f"{k}(H={h:g}) = {vals[k]:.4g}" for k in bad)
        return f"{parts} <= 0 here, where the law leaves its domain: " + self._domain_text(eps, bad)

    def predict(self, n_params, n_tokens, h: float, *, epsilon: float | None = None) -> np.ndarray:
        """Loss (nats/token) at N parameters, D tokens and compressibility H."""
        return chinchilla_loss(n_params, n_tokens, self.params_at(h, epsilon=epsilon))

    def allocate(self, budget_flops, h: float, *, epsilon: float | None = None) -> Allocation:
        """Compute-optimal allocation at C FLOPs for data of compressibility H."""
        return allocate(budget_flops, self.params_at(h, epsilon=epsilon))

    def _replicate_params(self, h: float, epsilon: float | None):
        """(n_valid, 5) replicate parameters at H (rows with E, A, B <= 0 dropped)."""
        if self.bootstrap is None or len(self.bootstrap) == 0:
            raise ValueError(f"law {self.name or '(unnamed)'} has no bootstrap replicates; refit with n_boot > 0 "
                             "(CLI: pygzlaw fit --bootstrap 200) to get intervals")
        eps = self.epsilon if epsilon is None else _check_eps(epsilon)
        self.params_at(h, epsilon=eps)                     # validates h and the point estimate's domain
        ref = np.array([getattr(self.reference, k) for k in PARAM_NAMES])
        y = self.bootstrap[:, :, 0] * h + self.bootstrap[:, :, 1]
        logs = [j for j, k in enumerate(PARAM_NAMES) if self.regressions[k].scale == "log"]
        y[:, logs] = np.exp(y[:, logs])                     # replicates regressed like the point estimate
        p = (1 - eps) * ref + eps * y
        return p[(p[:, :3] > 0).all(axis=1)]

    def allocate_interval(self, budget_flops, h: float, *, epsilon: float | None = None, level=0.95,
                          flops_per_token_param=6.0) -> dict:
        """Percentile bootstrap intervals of N_opt, D_opt, tokens per parameter and loss at H.

        Returns:
            {"n_params"|"n_tokens"|"tokens_per_param"|"loss": (lo, hi)} float64 arrays of the budget's shape.

        Raises:
            ValueError: no replicates, a bad level, or flops_per_token_param <= 0.
        """
        if not 0 < level < 1:
            raise ValueError(f"level={level!r} must be in (0, 1), e.g. 0.95")
        if not flops_per_token_param > 0:
            raise ValueError(f"flops_per_token_param={flops_per_token_param!r} must be > 0")
        p = self._replicate_params(h, epsilon)
        p = p[(p[:, 3] > 0) & (p[:, 4] > 0)]                 # replicates with a finite optimum
        e, a, b, al, be = (p[:, j] for j in range(5))
        s = al + be
        log_g = (np.log(al) + np.log(a) - np.log(be) - np.log(b)) / s
        log_c = np.log(as_float64("budget_flops", budget_flops) / flops_per_token_param)[..., None]
        log_n = log_g + (be / s) * log_c
        log_d = -log_g + (al / s) * log_c
        loss = e + np.exp(np.log(a) - al * log_n) + np.exp(np.log(b) - be * log_d)
        lo, hi = percentile_interval(np.stack([log_n, log_d, log_d - log_n]), level, axis=-1, monotone=np.exp)
        loss_lo, loss_hi = percentile_interval(loss, level, axis=-1)
        return {"n_params": (lo[0], hi[0]), "n_tokens": (lo[1], hi[1]), "tokens_per_param": (lo[2], hi[2]),
                "loss": (loss_lo, loss_hi)}

    def predict_interval(self, n_params, n_tokens, h: float, *, epsilon: float | None = None, level=0.95):
        """Percentile bootstrap interval of L(N, D, H).

        Returns:
            (lo, hi): float64 arrays of the broadcast input shape (nats/token).
        """
        if not 0 < level < 1:
            raise ValueError(f"level={level!r} must be in (0, 1), e.g. 0.95")
        log_n = np.log(as_float64("n_params", n_params))
        log_d = np.log(as_float64("n_tokens", n_tokens))
        log_n, log_d = np.broadcast_arrays(log_n, log_d)
        p = self._replicate_params(h, epsilon)
        shape = (-1,) + (1,) * log_n.ndim
        e, a, b, al, be = (p[:, j].reshape(shape) for j in range(5))
        preds = e + np.exp(np.log(a) - al * log_n) + np.exp(np.log(b) - be * log_d)
        return percentile_interval(preds, level)

    def frontier_exponent(self, h: float, *, epsilon: float | None = None) -> float:
        """a(H) = beta(H) / (alpha(H) + beta(H)) of N_opt proportional to C^a."""
        return frontier_exponents(self.params_at(h, epsilon=epsilon))[0]

    def chinchilla_crossing(self, *, epsilon: float | None = None, budget_flops: float | None = None,
                            h_grid=None) -> list[float]:
        """H values where the frontier crosses Chinchilla's 1:1 line.

        Without a budget: where a(H) = 0.5, i.e. N_opt and D_opt grow equally with compute (Chinchilla's
        finding a = b = 0.5). With a budget: where tokens per parameter at that budget equal the
        reference law's. Found by a sign scan over h_grid and Brent's method in each bracket.

        Args:
            epsilon: mixing weight (default self.epsilon).
            budget_flops: optional budget (FLOPs) for the tokens-per-parameter criterion.
            h_grid: H values to scan (default 400 points over [0.05, 1.0]).

        Returns:
            Sorted list of crossing H values (empty if none in the scanned range).
        """
        from scipy.optimize import brentq

        hs = np.linspace(0.05, 1.0, 400) if h_grid is None else as_float64("h_grid", h_grid).ravel()
        if budget_flops is None:
            def gap(h):
                return self.frontier_exponent(h, epsilon=epsilon) - 0.5
        else:
            ref_tpp = allocate(budget_flops, self.reference).tokens_per_param

            def gap(h):
                return math.log(self.allocate(budget_flops, h, epsilon=epsilon).tokens_per_param / ref_tpp)
        vals = []
        for h in hs:
            try:
                vals.append(gap(float(h)))
            except ValueError:
                vals.append(float("nan"))
        out = []
        for i in range(len(hs) - 1):
            v0, v1 = vals[i], vals[i + 1]
            if not (math.isfinite(v0) and math.isfinite(v1)):
                continue
            if v0 == 0:
                out.append(float(hs[i]))
            elif v0 * v1 < 0:
                out.append(float(brentq(gap, hs[i], hs[i + 1], xtol=1e-10)))
        return out

    # ------------------------------------------------------------------ JSON
    def to_json_dict(self) -> dict:
        from pygzlaw.laws.law import LAW_FORMAT_VERSION

        return {"format": "pygzlaw.law", "version": LAW_FORMAT_VERSION, "kind": self.kind, "name": self.name,
                "regressions": {k: self.regressions[k].to_dict() for k in PARAM_NAMES},
                "reference": self.reference.to_dict(), "epsilon": self.epsilon,
                "h_range": [float(v) for v in self.h_range], "datasets": self.datasets, "meta": self.meta,
                "bootstrap": None if self.bootstrap is None else {
                    "columns": [f"{k}.{c}" for k in PARAM_NAMES for c in ("slope", "intercept")],
                    "samples": self.bootstrap.reshape(len(self.bootstrap), 10).tolist()}}

    @classmethod
    def from_json_dict(cls, d: dict, *, where: str = "law") -> "DataDependentLaw":
        if d.get("kind") != cls.kind:
            raise ValueError(f"{where}: kind={d.get('kind')!r}, expected {cls.kind!r}")
        regs = d.get("regressions") or {}
        missing = [k for k in PARAM_NAMES if k not in regs]
        if missing:
            raise ValueError(f"{where}: regressions missing {missing}")
        boot = d.get("bootstrap")
        arr = None
        if boot:
            try:
                arr = np.asarray(boot.get("samples", []), dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: bootstrap.samples must be a list of 10-number rows") from None
            if arr.ndim != 2 or arr.shape[1] != 10:
                raise ValueError(f"{where}: bootstrap.samples has shape {arr.shape}, expected (n_boot, 10)")
            arr = arr.reshape(-1, 5, 2)
        return cls(bootstrap=arr, regressions={k: Regression.from_dict(regs[k]) for k in PARAM_NAMES},
                   reference=ChinchillaParams.from_dict(d.get("reference") or HOFFMANN_PARAMS.to_dict()),
                   epsilon=float(d.get("epsilon", 1.0)), h_range=tuple(d.get("h_range", (float("nan"),) * 2)),
                   datasets=list(d.get("datasets") or []), name=str(d.get("name", "")), meta=dict(d.get("meta") or {}))

    # --------------------------------------------------------------- epsilon
    def fit_epsilon(self, runs, *, huber_delta=1e-3) -> float:
        """Fit epsilon in [0, 1] to runs from several datasets by the summed Huber loss of log residuals.

        Args:
            runs: iterable of (h, n_params (n,), n_tokens (n,), loss (n,)) per dataset.
            huber_delta: Huber threshold (as in Approach 3).

        Returns:
            The fitted epsilon (also stored on the law).
        """
        from scipy.optimize import minimize_scalar

        runs = [(float(h), as_float64("n_params", n), as_float64("n_tokens", d), as_float64("loss", l_))
                for h, n, d, l_ in runs]

        def objective(eps):
            tot = 0.0
            for h, n, d, l_ in runs:
                try:
                    r = np.log(self.predict(n, d, h, epsilon=eps)) - np.log(l_)
                except ValueError:
                    return float("inf")
                a = np.abs(r)
                tot += float(np.where(a <= huber_delta, 0.5 * r * r, huber_delta * (a - 0.5 * huber_delta)).sum())
            return tot

        grid = np.linspace(0.0, 1.0, 21)
        vals = [objective(e) for e in grid]
        i = int(np.argmin(vals))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = minimize_scalar(objective, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
        eps = float(res.x) if res.fun <= vals[i] else float(grid[i])
        self.epsilon = eps
        return eps


def fit_data_dependent(datasets, *, grid="hoffmann", huber_delta=1e-3, reference=HOFFMANN_PARAMS,
                       epsilon=1.0, fit_eps=False, n_boot=0, seed=0, name="", callback=None,
                       regress="linear") -> DataDependentLaw:
    """Fit Chinchilla per dataset, regress the parameters on H, and build L(N, D, H).

    Args:
        datasets: iterable of dicts {"name", "h", "n_params", "n_tokens", "loss"} (arrays (n,)).
        grid, huber_delta: as fit_chinchilla.
        reference: Chinchilla's constants for the adjusted form.
        epsilon: mixing weight (ignored when fit_eps).
        fit_eps: fit epsilon to all datasets' runs.
        n_boot: bootstrap replicates (0 = none). Replicate b resamples every dataset's runs (seed + i
            for dataset i), refits each, and regresses the refitted parameters on H; the law stores
            the (n_boot, 5, 2) slopes and intercepts for prediction intervals.
        seed: bootstrap seed.
        name: label.
        callback: optional callback(dataset_name) called before each per-dataset fit.
        regress: "linear" (the paper's x(H) = m H + n, default) or "log" (log A and log B on H:
            A and B span orders of magnitude across datasets, and a line through them can go <= 0
            inside the fitted H range, where the linear law is undefined). See regress_params.

    Returns:
        DataDependentLaw; each ``datasets`` record carries its runs' identifiability report
        (laws.identify) and N, D range; a FitWarning names datasets with unidentified, weak or
        at-bound parameters, and a linear law undefined (E, A or B <= 0) somewhere in its H range.

    Raises:
        ValueError: a dataset's fit fails, fewer than 3 datasets, or an unknown ``regress``.
    """
    import warnings

    from pygzlaw.laws.fit import bootstrap_chinchilla, fit_chinchilla
    from pygzlaw.laws.identify import FitWarning, identifiability_report

    _check_regress(regress)
    datasets = list(datasets)
    hs, params, records, runs, boots = [], [], [], [], []
    for ds in datasets:
        if callback is not None:
            callback(ds["name"])
        try:
            res = fit_chinchilla(ds["n_params"], ds["n_tokens"], ds["loss"], grid=grid, huber_delta=huber_delta)
        except ValueError as exc:
            raise ValueError(f"dataset {ds['name']!r} (H={ds['h']}): {exc}") from exc
        hs.append(float(ds["h"]))
        params.append(res.params)
        records.append({"name": ds["name"], "h": float(ds["h"]), "params": res.params.to_dict(),
                        "n_points": res.n_points, "objective": res.objective, "at_bound": list(res.at_bound),
                        "range": fitted_range(ds["n_params"], ds["n_tokens"])})
        runs.append((ds["h"], ds["n_params"], ds["n_tokens"], ds["loss"]))
        if n_boot:
            boots.append(bootstrap_chinchilla(ds["n_params"], ds["n_tokens"], ds["loss"], res, n_boot=n_boot,
                                              seed=seed + len(boots)))
        rep = identifiability_report(ds["n_params"], ds["n_tokens"], bootstrap=boots[-1] if n_boot else None,
                                     at_bound=res.at_bound, params=res.params)
        records[-1]["identifiability"] = rep.to_dict()
        if not rep.ok:
            warnings.warn(f"dataset {ds['name']!r} (H={ds['h']}): " + ", ".join(
                f"{k} ({rep.verdict[k]})" for k in rep.unidentified + rep.weak) + " not well determined by its runs: "
                + "; ".join(rep.reasons) + "; its parameters feed the regressions on H", FitWarning, stacklevel=2)
    regs = regress_params(hs, params, regress=regress)
    coef = None
    if n_boot:
        logs = [regs[k].scale == "log" for k in PARAM_NAMES]
        coef = _regress_replicates(np.array(hs), np.stack(boots), log_cols=logs)   # (n_boot, 5, 2)
    law = DataDependentLaw(regressions=regs, reference=reference, epsilon=epsilon,
                           h_range=(min(hs), max(hs)), datasets=records, name=name, bootstrap=coef)
    if fit_eps:
        law.fit_epsilon(runs, huber_delta=huber_delta)
    for w in law.domain_warnings():
        warnings.warn(w, FitWarning, stacklevel=2)
    return law


def regress_replicates(h, boots, *, regress: str = "linear") -> np.ndarray:
    """Bootstrap (slope, intercept) of each parameter on H, regressed as regress_params does.

    For callers that fit the datasets themselves (the study) and build a DataDependentLaw from
    regress_params(h, params, regress=...) plus these replicates.

    Args:
        h: (k,) H per dataset.
        boots: (k, n_boot, 5) float64 replicate (E, A, B, alpha, beta) per dataset (same n_boot each).
        regress: "linear" or "log" (log A and log B regressed; replicates with A or B <= 0 dropped).

    Returns:
        (n_boot', 5, 2) float64 for DataDependentLaw.bootstrap; rows with a NaN in any dataset dropped.
    """
    _check_regress(regress)
    boots = np.asarray(boots, dtype=np.float64)
    if boots.ndim != 3 or boots.shape[2] != 5:
        raise ValueError(f"boots has shape {boots.shape}; expected (n_datasets, n_boot, 5)")
    logs = [regress == "log" and k in LOG_REGRESSED for k in PARAM_NAMES]
    return _regress_replicates(as_float64("h", h).ravel(), boots, log_cols=logs)


def _regress_replicates(hs, boots, log_cols=None) -> np.ndarray:
    """Least-squares (slope, intercept) of each parameter on H for every bootstrap replicate.

    Args:
        hs: (k,) H per dataset.
        boots: (k, n_boot, 5) per-dataset replicate parameters (E, A, B, alpha, beta).
        log_cols: None or 5 bools: regress the log of those parameters (regress="log").

    Returns:
        (n_boot', 5, 2) float64; replicates with a failed (NaN) refit in any dataset are dropped.
    """
    boots = np.array(boots, dtype=np.float64, copy=True)
    if log_cols is not None and any(log_cols):
        cols = np.flatnonzero(log_cols)
        with np.errstate(divide="ignore", invalid="ignore"):
            boots[:, :, cols] = np.where(boots[:, :, cols] > 0, np.log(boots[:, :, cols]), np.nan)
    ok = np.isfinite(boots).all(axis=(0, 2))
    y = boots[:, ok, :]                                     # (k, n, 5)
    hc = hs - hs.mean()
    slope = np.einsum("k,knp->np", hc, y - y.mean(axis=0)) / (hc @ hc)
    intercept = y.mean(axis=0) - slope * hs.mean()
    return np.stack([slope, intercept], axis=-1)


def _check_eps(eps):
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and 0.0 <= eps <= 1.0):
        raise ValueError(f"epsilon={eps!r} must be in [0, 1] (0 = Chinchilla's constants, 1 = fully data-dependent)")
    return float(eps)
