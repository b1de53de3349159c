"""Compute-optimal allocation for any fitted law, as the CLI and the service report it."""
from __future__ import annotations

import numpy as np

__all__ = ["allocation_report", "prediction_report", "extrapolation_warnings", "prediction_warnings",
           "h_range_warnings", "EXTRAPOLATION_FACTOR"]

EXTRAPOLATION_FACTOR = 10.0  # N (N_opt) or D (D_opt) more than this factor outside the fitted runs' range: warn
MAX_POINT_WARNINGS = 10      # per-point extrapolation warnings listed; the rest are counted in one line


def _fitted_range(law):
    """{"n_params": [lo, hi], "n_tokens": [lo, hi]} of the runs a law was fitted on, or None."""
    rng = (getattr(law, "fit_info", {}) or {}).get("range")
    if rng:
        return rng
    return getattr(law, "fitted_range", None)


def _far(what, v, lo, hi) -> str | None:
    if v > EXTRAPOLATION_FACTOR * hi:
        return f"{what} {v:.3g} is {v / hi:.3g}x the largest fitted ({hi:.3g})"
    if v * EXTRAPOLATION_FACTOR < lo:
        return f"{what} {v:.3g} is {lo / v:.3g}x below the smallest fitted ({lo:.3g})"
    return None


def h_range_warnings(law, h, h_name: str = "h") -> list:
    """A warning when H lies outside the H range a data-dependent law's regressions were fitted on."""
    lo, hi = law.h_range
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= h <= hi:
        return []
    far = " far" if h < lo - 0.5 * (hi - lo) or h > hi + 0.5 * (hi - lo) else ""
    return [(f"{h_name}={h:g} is{far} outside the fitted datasets' H range [{lo:.4g}, {hi:.4g}]: the regressions "
             "on H are extrapolated")]


def prediction_warnings(law, n_params, n_tokens) -> list:
    """Warnings for (N, D) points more than EXTRAPOLATION_FACTOR outside the fitted runs' N or D range.

    Args:
        law: a fitted law (fit_info["range"], or a data-dependent law's fitted_range).
        n_params, n_tokens: broadcast float64 arrays of N and D.

    Returns:
        list of str, one per point that extrapolates far (empty when the law carries no range).
    """
    rng = _fitted_range(law)
    if not rng:
        return []
    n, d = (np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel() for v in (n_params, n_tokens))
    (n_lo, n_hi), (d_lo, d_hi) = rng["n_params"], rng["n_tokens"]
    f = EXTRAPOLATION_FACTOR
    # The service's hot path: one comparison of the extremes settles the usual all-inside case.
    n0, n1, d0, d1 = (float(n[0]), float(n[0]), float(d[0]), float(d[0])) if n.size == 1 == d.size else \
        (n.min(), n.max(), d.min(), d.max())
    if n1 <= f * n_hi and n0 * f >= n_lo and d1 <= f * d_hi and d0 * f >= d_lo:
        return []
    far = (n > f * n_hi) | (n * f < n_lo) | (d > f * d_hi) | (d * f < d_lo)
    idx = np.flatnonzero(far)
    out = []
    for i in idx[:MAX_POINT_WARNINGS]:
        parts = [p for p in (_far("N", n[i], n_lo, n_hi), _far("D", d[i], d_lo, d_hi)) if p]
        out.append(f"N={n[i]:.3g}, D={d[i]:.3g}: extrapolating far beyond the fitted runs: " + "; ".join(parts))
    if idx.size > MAX_POINT_WARNINGS:
        out.append(f"... and {idx.size - MAX_POINT_WARNINGS} more points more than {f:g}x outside the fitted N or D "
                   "range")
    return out


def extrapolation_warnings(law, alloc) -> list:
    """Warnings for budgets whose N_opt or D_opt lie more than EXTRAPOLATION_FACTOR outside the
    N and D range of the runs the law was fitted on, and for a law whose runs could not identify
    the compute-optimal split (law.fit_info["identifiability"]["allocation"]).

    Args:
        law: a fitted law; uses fit_info["range"] = {"n_params": [lo, hi], "n_tokens": [lo, hi]} when present
            (a data-dependent law: its datasets' ``fitted_range``).
        alloc: the Allocation for the budgets.

    Returns:
        list of str, one per budget that extrapolates far (plus one for an unidentified split).
    """
    out = []
    info = getattr(law, "fit_info", {}) or {}
    ident = info.get("identifiability") or {}
    if ident.get("allocation") in ("unidentified", "weak"):
        out.append(f"law {law.name!r}: its runs {'cannot' if ident['allocation'] == 'unidentified' else 'barely'} "
                   "determine the compute-optimal split (" + "; ".join(ident.get("reasons", [])[:2]) + ")")
    rng = _fitted_range(law)
    if not rng:
        return out
    c = np.atleast_1d(np.asarray(alloc.budget_flops, dtype=np.float64))
    n = np.atleast_1d(np.asarray(alloc.n_params, dtype=np.float64))
    d = np.atleast_1d(np.asarray(alloc.n_tokens, dtype=np.float64))
    (n_lo, n_hi), (d_lo, d_hi) = rng["n_params"], rng["n_tokens"]
    for i in range(c.size):
        parts = [p for p in (_far("N_opt", n[i], n_lo, n_hi), _far("D_opt", d[i], d_lo, d_hi)) if p]
        if parts:
            out.append(f"C={c[i]:.3g}: extrapolating far beyond the fitted runs: " + "; ".join(parts))
    return out


def allocation_report(law, budget_flops, *, h=None, epsilon=None, level: float = 0.95,
                      h_name: str = "h") -> dict:
    """Allocation of ``budget_flops`` under a ChinchillaLaw or a DataDependentLaw.

    Args:
        law: a fitted law: ChinchillaLaw, DataDependentLaw, or a FamilyLaw whose kind has an
            allocation (overtrain, data_constrained; others raise ValueError).
        budget_flops: FLOP budget(s), float64 array.
        h: gzip compressibility; required by data-dependent laws, refused by the others.
        epsilon: override of a data-dependent law's ε.
        level: coverage of the bootstrap intervals (plain laws with replicates).
        h_name: how the caller spells h, for error messages ("--gzip" on the CLI).

    Returns:
        {"law": name, "allocation": Allocation, ["h", "epsilon"], ["level",
        "intervals": {"n_params"|"n_tokens"|"tokens_per_param"|"loss": (lo, hi)}], "warnings": [str]}
        with float64 arrays of the budget's shape; warnings from extrapolation_warnings (plain laws).

    Raises:
        ValueError: h missing for a data-dependent law, or given for a plain one.
    """
    c = np.asarray(budget_flops, dtype=np.float64)
    out: dict = {"law": law.name}
    if law.kind == "data_dependent":
        if h is None:
            raise ValueError(f"law {law.name!r} is data-dependent; give {h_name} (gzip compressibility H)")
        out["allocation"] = law.allocate(c, h, epsilon=epsilon)
        out.update(h=h, epsilon=law.epsilon if epsilon is None else epsilon)
        if law.bootstrap is not None:
            out["level"] = level
            out["intervals"] = law.allocate_interval(c, h, epsilon=epsilon, level=level)
        out["warnings"] = (h_range_warnings(law, h, h_name) + law.domain_warnings(epsilon=epsilon)
                           + extrapolation_warnings(law, out["allocation"]))
        return out
    if h is not None:
        raise ValueError(f"law {law.name!r} is a {law.kind} law; {h_name} needs a data-dependent law")
    out["allocation"] = law.allocate(c)          # family laws: allocate() raises for kinds without one
    if law.kind == "chinchilla" and law.bootstrap is not None:     # (family laws have no allocation intervals)
        out["level"] = level
        out["intervals"] = law.allocate_interval(c, level=level)
    out["warnings"] = extrapolation_warnings(law, out["allocation"])
    return out


def prediction_report(law, n_params, n_tokens, *, h=None, epsilon=None, level: float = 0.95,
                      h_name: str = "h") -> dict:
    """Loss at (N, D[, H]) under a ChinchillaLaw, DataDependentLaw or over-training law, with
    bootstrap intervals when the law has replicates: what ``pygzlaw predict`` and the service's
    predict report.

    Args:
        law: a fitted law. Other family kinds take other inputs (FamilyLaw.evaluate) and raise here.
        n_params, n_tokens: parameters N and tokens D, broadcastable float64 arrays.
        h: gzip compressibility; required by data-dependent laws, refused by the others.
        epsilon: override of a data-dependent law's epsilon (refused by the others).
        level: interval coverage.
        h_name: how the caller spells h, for error messages ("--gzip" on the CLI).

    Returns:
        {"law", ["h"], "loss", ["level", "lo", "hi"], "warnings"}: float64 arrays of the broadcast shape
        (nats/token); warnings: points more than EXTRAPOLATION_FACTOR outside the fitted N or D range
        (prediction_warnings), H outside the fitted H range and a law undefined somewhere in it
        (data-dependent laws).

    Raises:
        ValueError: h missing or not applicable, epsilon not applicable, a kind without (N, D) inputs.
    """
    from pygzlaw.laws.forms import as_float64

    n, d = np.broadcast_arrays(as_float64("n_params", n_params), as_float64("n_tokens", n_tokens))
    out: dict = {"law": law.name}
    if law.kind == "data_dependent":
        if h is None:
            raise ValueError(f"law {law.name!r} is data-dependent; give {h_name} (gzip compressibility H)")
        out["h"] = h
        out["loss"] = law.predict(n, d, h, epsilon=epsilon)
        if law.bootstrap is not None:
            out["level"] = level
            out["lo"], out["hi"] = law.predict_interval(n, d, h, epsilon=epsilon, level=level)
        out["warnings"] = (h_range_warnings(law, h, h_name) + law.domain_warnings(epsilon=epsilon)
                           + prediction_warnings(law, n, d))
        return out
    if h is not None or epsilon is not None:
        raise ValueError(f"law {law.name!r} is a {law.kind} law; {h_name} and epsilon apply to data-dependent laws")
    if law.kind == "chinchilla":
        out["loss"] = law.predict(n, d)
        if law.bootstrap is not None:
            out["level"] = level
            out["lo"], out["hi"] = law.predict_interval(n, d, level=level)
        out["warnings"] = prediction_warnings(law, n, d)
        return out
    if law.kind != "overtrain":
        raise ValueError(f"law {law.name!r} is a {law.kind} law; it takes other inputs than (N, D): evaluate it "
                         "with its own (CLI: pygzlaw predict with the kind's flags; service: POST "
                         f"/laws/{law.name}/evaluate)")
    ev = law.evaluate({"n_params": n.ravel(), "n_tokens": d.ravel()}, level=level)
    out["loss"] = np.asarray(ev["loss"]).reshape(n.shape)
    if "loss" in ev.get("intervals", {}):
        out["level"] = level
        out["lo"] = np.asarray(ev["intervals"]["loss"]["lo"]).reshape(n.shape)
        out["hi"] = np.asarray(ev["intervals"]["loss"]["hi"]).reshape(n.shape)
    out["warnings"] = prediction_warnings(law, n, d)
    return out
