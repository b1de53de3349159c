"""The fitted-law object: predict, allocate, intervals, JSON round trip."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from pygzlaw.laws.allocate import Allocation, allocate
from pygzlaw.laws.fit import FitResult, _prepare, bootstrap_chinchilla, fit_chinchilla
from pygzlaw.laws.forms import ChinchillaParams, as_float64, chinchilla_loss, fitted_range
from pygzlaw.laws.identify import FitWarning, IdentifiabilityReport, NotIdentifiableError, identifiability_report
from pygzlaw.laws.intervals import percentile_interval, replicate_se

__all__ = ["ChinchillaLaw", "LAW_FORMAT_VERSION"]

LAW_FORMAT_VERSION = 1
_PARAM_ORDER = ("E", "A", "B", "alpha", "beta")


@dataclass
class ChinchillaLaw:
    """A fitted L(N, D) = E + A/N^alpha + B/D^beta with optional bootstrap replicates.

    Attributes:
        params: point estimate.
        bootstrap: None or (n_boot, 5) float64 replicates of (E, A, B, alpha, beta).
        fit_info: facts about the fit (objective, n_points, grid, huber_delta, ...), JSON-able.
        name: label (file stem when loaded from a directory).
        meta: free-form JSON-able metadata (dataset, H, source file).
    """

    params: ChinchillaParams
    bootstrap: np.ndarray | None = None
    fit_info: dict = field(default_factory=dict)
    name: str = ""
    meta: dict = field(default_factory=dict)

    kind = "chinchilla"

    # ------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, n_params, n_tokens, loss, *, grid="hoffmann", huber_delta=1e-3, n_boot=0, seed=0,
            name="", meta=None, allow_unidentified=False, **fit_kwargs) -> "ChinchillaLaw":
        """Fit by Approach 3 (fit_chinchilla) and optionally bootstrap (bootstrap_chinchilla).

        Before fitting, checks what the runs can identify (laws.identify): too few distinct N or D,
        or D a power of N (e.g. all runs at D = 20 N), leave parameters undetermined, and the fit
        refuses unless ``allow_unidentified``. After fitting (and bootstrapping), the report is
        stored in ``fit_info["identifiability"]`` (see ``.identifiability``); parameters that are
        unidentified or weak are named in a FitWarning.

        Args:
            n_params, n_tokens, loss: (n,) runs (parameters, tokens, nats/token).
            grid: "hoffmann", "muennighoff" or an (S, 5) array.
            huber_delta: Huber threshold on log residuals.
            n_boot: bootstrap replicates (0 = none).
            seed: bootstrap seed.
            name, meta: stored with the law.
            allow_unidentified: fit (with a warning) even when the runs cannot identify some parameters.
            **fit_kwargs: passed to fit_chinchilla (e.g. tie, fix, polish).

        Returns:
            ChinchillaLaw.

        Raises:
            NotIdentifiableError (a ValueError): the runs cannot identify some parameters and not
                allow_unidentified; the message names them, the evidence and the fix.
        """
        _prepare(n_params, n_tokens, loss)          # lengths, count and values first: their errors come first
        pre = identifiability_report(n_params, n_tokens)
        if pre.unidentified and not allow_unidentified:
            raise NotIdentifiableError(
                f"these runs cannot identify {', '.join(pre.unidentified)}: " + "; ".join(pre.reasons)
                + ". Fitting would report a converged law with arbitrary values for them; pass "
                "allow_unidentified=True (CLI: --allow-unidentified) to fit anyway")
        res: FitResult = fit_chinchilla(n_params, n_tokens, loss, grid=grid, huber_delta=huber_delta, **fit_kwargs)
        boot = None
        n_failed = 0
        if n_boot:
            boot = bootstrap_chinchilla(n_params, n_tokens, loss, res, n_boot=n_boot, seed=seed)
            ok = np.isfinite(boot).all(axis=1)
            n_failed = int((~ok).sum())
            boot = boot[ok]  # failed refits are counted in fit_info, not stored
        info = {"objective": res.objective, "n_points": res.n_points, "grid": res.grid,
                "huber_delta": res.huber_delta, "n_starts": res.n_starts, "n_converged": res.n_converged,
                "converged": res.converged, "seconds": round(res.seconds, 4), "bootstrap_seed": seed,
                "n_boot": int(n_boot), "n_boot_failed": n_failed}
        if res.constraint.active:
            info["constraint"] = res.constraint.to_dict()
        n_arr = as_float64("n_params", n_params).ravel()
        d_arr = as_float64("n_tokens", n_tokens).ravel()
        info["range"] = fitted_range(n_arr, d_arr)
        rep = identifiability_report(n_arr, d_arr, bootstrap=boot, at_bound=res.at_bound, params=res.params)
        info["identifiability"] = rep.to_dict()
        info["at_bound"] = list(res.at_bound)
        if not rep.ok:
            bad = [f"{k} ({rep.verdict[k]})" for k in rep.unidentified + rep.weak]
            warnings.warn(f"fit{' ' + name if name else ''}: " + (", ".join(bad) or "the compute-optimal split")
                          + f" not well determined by these runs (allocation: {rep.allocation}): "
                          + "; ".join(rep.reasons), FitWarning, stacklevel=2)
        return cls(params=res.params, bootstrap=boot, fit_info=info, name=name, meta=dict(meta or {}))

    @property
    def identifiability(self) -> IdentifiabilityReport | None:
        """What the fitted runs could identify (laws.identify), or None for a law saved without it."""
        d = self.fit_info.get("identifiability")
        return None if not d else IdentifiabilityReport.from_dict(d)

    # ---------------------------------------------------------- prediction
    def predict(self, n_params, n_tokens) -> np.ndarray:
        """Loss (nats/token) at N parameters and D tokens (float64 arrays, broadcast)."""
        return chinchilla_loss(n_params, n_tokens, self.params)

    def _boot_arrays(self) -> dict:
        """Per-replicate arrays derived once per bootstrap matrix (the service calls this per request)."""
        if self.bootstrap is None or len(self.bootstrap) == 0:
            raise ValueError(f"law {self.name or '(unnamed)'} has no bootstrap replicates; refit with n_boot > 0 "
                             "(CLI: pygzlaw fit --bootstrap 1000) to get intervals")
        cache = getattr(self, "_boot_cache", None)
        if cache is not None and cache[0] is self.bootstrap:
            return cache[1]
        b = self.bootstrap
        ok = np.isfinite(b).all(1) & (b[:, :3] > 0).all(1)   # a degenerate replicate carries no prediction
        e, a, bb, al, be = (b[ok, j].copy() for j in range(5))
        d = {"E": e, "log_a": np.log(a), "log_b": np.log(bb), "alpha": al, "beta": be}
        fr = (al > 0) & (be > 0)                             # replicates with a finite compute optimum
        s = al[fr] + be[fr]
        d["frontier"] = {"E": e[fr], "log_a": d["log_a"][fr], "log_b": d["log_b"][fr], "alpha": al[fr],
                         "beta": be[fr], "a": be[fr] / s, "b": al[fr] / s,
                         "log_g": (np.log(al[fr]) + d["log_a"][fr] - np.log(be[fr]) - d["log_b"][fr]) / s}
        self._boot_cache = (self.bootstrap, d)
        return d

    def _samples_last(self, n_params, n_tokens) -> np.ndarray:
        """Loss under every replicate, replicates on the last axis: (*broadcast shape, n_valid), C order.

        Replicates last makes every elementwise pass one contiguous run of n_valid values; with them
        first, 3 points x 1000 replicates had numpy loop 1000 times over 3 values (2x slower). The
        arithmetic is the same, value for value.
        """
        log_n = np.log(as_float64("n_params", n_params))
        log_d = np.log(as_float64("n_tokens", n_tokens))
        log_n, log_d = np.broadcast_arrays(log_n, log_d)
        b = self._boot_arrays()
        log_n, log_d = log_n[..., None], log_d[..., None]
        return b["E"] + np.exp(b["log_a"] - b["alpha"] * log_n) + np.exp(b["log_b"] - b["beta"] * log_d)

    def predict_samples(self, n_params, n_tokens) -> np.ndarray:
        """Loss under every bootstrap replicate: float64 (n_valid, *broadcast shape), vectorised."""
        return np.moveaxis(self._samples_last(n_params, n_tokens), -1, 0)

    def predict_interval(self, n_params, n_tokens, *, level=0.95):
        """Percentile bootstrap interval of the predicted loss.

        Returns:
            (lo, hi): float64 arrays of the broadcast input shape (nats/token).
        """
        _check_level(level)
        return percentile_interval(self._samples_last(n_params, n_tokens), level, axis=-1)

    def param_intervals(self, *, level=0.95) -> dict:
        """Percentile bootstrap intervals and standard errors of E, A, B, alpha, beta.

        Returns:
            {name: {"estimate", "lo", "hi", "se"}}.
        """
        _check_level(level)
        if self.bootstrap is None:
            raise ValueError("no bootstrap replicates; refit with n_boot > 0")
        lo, hi = percentile_interval(self.bootstrap, level)
        se = replicate_se(self.bootstrap)
        return {k: {"estimate": getattr(self.params, k), "lo": float(lo[j]), "hi": float(hi[j]), "se": float(se[j])}
                for j, k in enumerate(_PARAM_ORDER)}

    def allocate(self, budget_flops, *, flops_per_token_param=6.0) -> Allocation:
        """Compute-optimal (N_opt, D_opt, tokens per parameter, loss) for C FLOPs (see laws.allocate)."""
        return allocate(budget_flops, self.params, flops_per_token_param=flops_per_token_param)

    def allocate_interval(self, budget_flops, *, level=0.95, flops_per_token_param=6.0) -> dict:
        """Bootstrap percentile intervals of N_opt, D_opt, tokens per parameter and loss.

        Returns:
            {"n_params"|"n_tokens"|"tokens_per_param"|"loss": (lo, hi)} float64 arrays of the budget's shape.
        """
        _check_level(level)
        if not (flops_per_token_param > 0):
            raise ValueError(f"flops_per_token_param={flops_per_token_param!r} must be > 0")
        log_c = np.log(as_float64("budget_flops", budget_flops) / flops_per_token_param)[..., None]
        f = self._boot_arrays()["frontier"]       # replicates on the last axis, as in _samples_last
        log_n = f["log_g"] + f["a"] * log_c
        log_d = -f["log_g"] + f["b"] * log_c
        loss = f["E"] + np.exp(f["log_a"] - f["alpha"] * log_n) + np.exp(f["log_b"] - f["beta"] * log_d)
        # N, D and D/N are exp of the logs, and exp keeps order: take order statistics of the logs and
        # exp only those (the same values as exp of all, then order statistics; 3000 fewer exps).
        lo, hi = percentile_interval(np.stack([log_n, log_d, log_d - log_n]), level, axis=-1, monotone=np.exp)
        loss_lo, loss_hi = percentile_interval(loss, level, axis=-1)
        return {"n_params": (lo[0], hi[0]), "n_tokens": (lo[1], hi[1]), "tokens_per_param": (lo[2], hi[2]),
                "loss": (loss_lo, loss_hi)}

    # ------------------------------------------------------------------ JSON
    def to_json_dict(self) -> dict:
        return {"format": "pygzlaw.law", "version": LAW_FORMAT_VERSION, "kind": self.kind, "name": self.name,
                "params": self.params.to_dict(), "fit": self.fit_info, "meta": self.meta,
                "bootstrap": None if self.bootstrap is None else {
                    "columns": list(_PARAM_ORDER), "samples": self.bootstrap.tolist()}}

    @classmethod
    def from_json_dict(cls, d: dict, *, where: str = "law") -> "ChinchillaLaw":
        if d.get("kind") != cls.kind:
            raise ValueError(f"{where}: kind={d.get('kind')!r}, expected {cls.kind!r}")
        params = ChinchillaParams.from_dict(d.get("params") or {})
        boot = d.get("bootstrap")
        arr = None
        if boot:
            if list(boot.get("columns", [])) != list(_PARAM_ORDER):
                raise ValueError(f"{where}: bootstrap.columns must be {list(_PARAM_ORDER)}")
            try:
                arr = np.asarray(boot.get("samples", []), dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: bootstrap.samples must be a list of 5-number rows") from None
            if arr.ndim != 2 or arr.shape[1] != 5:
                raise ValueError(f"{where}: bootstrap.samples has shape {arr.shape}, expected (n_boot, 5)")
        return cls(params=params, bootstrap=arr, fit_info=dict(d.get("fit") or {}), name=str(d.get("name", "")),
                   meta=dict(d.get("meta") or {}))


def _check_level(level):
    if not (isinstance(level, (int, float)) and 0 < level < 1 and math.isfinite(level)):
        raise ValueError(f"level={level!r} must be in (0, 1), e.g. 0.95")
