"""Analysis of a finished (or partly finished) study: the paper's Sec. 5 on the study's runs.

Per grammar: a Chinchilla law L(N, D) = E + A/N^alpha + B/D^beta fit by Approach 3 with
bootstrap intervals (``pygzlaw.laws.ChinchillaLaw``), its compute-optimal frontier
N_opt proportional to C^a, a = beta/(alpha+beta) (Hoffmann et al. 2022, Eq. 4). Across grammars:
each parameter regressed on H (``regress_params``: slope, intercept, r, p), the data-dependent
law L(N, D, H) (``fit_data_dependent``) and the H where the frontier crosses Chinchilla's 1:1
line (a(H) = 0.5).

A per-grammar fit that the grid cannot identify is flagged and kept out of the served laws and
of the regressions: fewer than 3 distinct N or D (alpha/A or beta/B undetermined), fewer than 6
runs, a failed fit, an exponent at the edge of its plausible range, or a bootstrap interval of
alpha or beta wider than the estimate's scale (IDENT_* constants below).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["GrammarFit", "StudyAnalysis", "analyze", "identifiability_flags"]

MIN_DISTINCT = 3            # distinct N (and D) values: 2 points fix a line, not a power law plus offset
MIN_RUNS = 6                # five parameters plus one degree of freedom (laws.fit.MIN_POINTS)
EXPONENT_RANGE = (0.01, 3.0)
MAX_REL_INTERVAL = 2.0      # bootstrap interval width / estimate, for alpha and beta
MAX_LOG10_COEF = 12.0       # A or B beyond 1e12: the fit traded a coefficient against an exponent


@dataclass
class GrammarFit:
    """One grammar's law and its checks."""

    name: str
    h: float
    h_std: float
    vocab_size: int | None
    n_runs: int
    n_distinct_n: int
    n_distinct_d: int
    law: object = None                      # ChinchillaLaw or None (fit failed / too few runs)
    intervals: dict | None = None
    frontier: dict | None = None            # {"a", "b", "G", "tokens_per_param_at_ref"}
    flags: list = field(default_factory=list)
    error: str | None = None

    @property
    def served(self) -> bool:
        return self.law is not None and not self.flags


@dataclass
class StudyAnalysis:
    grammars: list
    regressions: dict | None = None         # {param: Regression} over served grammars
    regression_note: str | None = None
    dd_law: object = None                   # DataDependentLaw or None
    crossings_h: list = field(default_factory=list)        # a(H) = 0.5 from L(N, D, H)
    crossings_interp: list = field(default_factory=list)   # between adjacent grammars' fitted a
    ref_budget_flops: float | None = None
    level: float = 0.95


def identifiability_flags(n_runs, n_distinct_n, n_distinct_d, law=None, intervals=None) -> list[str]:
    """Reasons a grammar's fit is not identifiable from its grid (empty list = fine)."""
    flags = []
    if n_runs < MIN_RUNS:
        flags.append(f"only {n_runs} finished runs (need >= {MIN_RUNS} for five parameters)")
    if n_distinct_n < MIN_DISTINCT:
        flags.append(f"only {n_distinct_n} distinct N: alpha and A are not identifiable (need >= {MIN_DISTINCT})")
    if n_distinct_d < MIN_DISTINCT:
        flags.append(f"only {n_distinct_d} distinct D: beta and B are not identifiable (need >= {MIN_DISTINCT})")
    if law is None:
        return flags
    p = law.params
    lo, hi = EXPONENT_RANGE
    for k in ("alpha", "beta"):
        v = getattr(p, k)
        if not lo <= v <= hi:
            flags.append(f"{k} = {v:.3g} is outside [{lo}, {hi}] (the fit hit the edge of the plausible range)")
    for k in ("A", "B"):
        v = getattr(p, k)
        if not (v > 0 and math.log10(v) <= MAX_LOG10_COEF):
            flags.append(f"{k} = {v:.3g} exceeds 1e{MAX_LOG10_COEF:g} (coefficient traded against its exponent)")
    if intervals:
        for k in ("alpha", "beta"):
            iv = intervals[k]
            width = iv["hi"] - iv["lo"]
            if not (math.isfinite(width) and width <= MAX_REL_INTERVAL * abs(iv["estimate"])):
                flags.append(f"{k}'s bootstrap interval [{iv['lo']:.3g}, {iv['hi']:.3g}] is wider than "
                             f"{MAX_REL_INTERVAL:g}x its estimate {iv['estimate']:.3g}")
    return flags


def _distinct(x, rel=0.02) -> int:
    xs = np.sort(np.asarray(x, dtype=np.float64))
    if xs.size == 0:
        return 0
    return 1 + int((np.diff(np.log(xs)) > rel).sum())


def analyze(runs: list[dict], grammars: list[dict], *, n_boot: int = 200, seed: int = 0, level: float = 0.95,
            grid: str = "hoffmann") -> StudyAnalysis:
    """Fit the study's laws from its store rows.

    Args:
        runs: RunStore.runs() rows; only status 'done' rows with a finite val_loss are used.
        grammars: RunStore.grammars() rows (name, H_median, H_std, vocab_size).
        n_boot: bootstrap replicates per law (0 = no intervals, so no interval-width check).
        seed: bootstrap seed (grammar i uses seed + i).
        level: interval level.
        grid: fit starting grid ("hoffmann" or "muennighoff").

    Returns:
        StudyAnalysis.
    """
    from pygzlaw.laws import ChinchillaLaw, fit_data_dependent, frontier_exponents, regress_params
    from pygzlaw.laws.allocate import allocate

    done = [r for r in runs if r["status"] == "done" and r["val_loss"] is not None
            and math.isfinite(r["val_loss"]) and r["N"] and r["D"]]
    c_max = max((6.0 * r["N"] * r["D"] for r in done), default=None)
    out = StudyAnalysis(grammars=[], ref_budget_flops=c_max, level=level)
    data = {}
    for i, g in enumerate(sorted(grammars, key=lambda g: (g["H_median"] is None, g["H_median"] or 0, g["name"]))):
        rows = [r for r in done if r["grammar"] == g["name"]]
        n = np.array([r["N"] for r in rows], dtype=np.float64)
        d = np.array([r["D"] for r in rows], dtype=np.float64)
        loss = np.array([r["val_loss"] for r in rows], dtype=np.float64)
        gf = GrammarFit(name=g["name"], h=g["H_median"], h_std=g["H_std"], vocab_size=g["vocab_size"],
                        n_runs=len(rows), n_distinct_n=_distinct(n), n_distinct_d=_distinct(d))
        pre = identifiability_flags(gf.n_runs, gf.n_distinct_n, gf.n_distinct_d)
        if len(rows) >= MIN_RUNS:
            try:
                gf.law = ChinchillaLaw.fit(n, d, loss, grid=grid, n_boot=n_boot, seed=seed + i, name=g["name"],
                                           meta={"grammar": g["name"], "H": g["H_median"], "H_std": g["H_std"],
                                                 "n_runs": len(rows), "source": "pygzlaw reproduce"})
            except ValueError as exc:          # ConvergenceError is a ValueError
                gf.error = f"fit failed: {exc}"
                pre.append(gf.error)
        if gf.law is not None:
            if n_boot and gf.law.bootstrap is not None and len(gf.law.bootstrap) > 1:
                gf.intervals = gf.law.param_intervals(level=level)
            gf.flags = identifiability_flags(gf.n_runs, gf.n_distinct_n, gf.n_distinct_d, gf.law, gf.intervals)
            try:
                a, b, g_ = frontier_exponents(gf.law.params)
                tpp = float(allocate(c_max, gf.law.params).tokens_per_param) if c_max else None
                gf.frontier = {"a": a, "b": b, "G": g_, "tokens_per_param_at_ref": tpp}
            except ValueError as exc:
                gf.flags.append(str(exc))
        else:
            gf.flags = pre
        out.grammars.append(gf)
        if gf.served:
            data[gf.name] = {"name": gf.name, "h": gf.h, "n_params": n, "n_tokens": d, "loss": loss}

    served = [g for g in out.grammars if g.served]
    hs = [g.h for g in served]
    if len(served) < 3:
        out.regression_note = (f"{len(served)} grammar(s) with an identifiable law; the regressions on H and "
                               "L(N, D, H) need >= 3")
    elif np.ptp(hs) == 0:
        out.regression_note = "all grammars with an identifiable law have the same H; no regression on H"
    else:
        out.regressions = regress_params(hs, [g.law.params for g in served])
        out.dd_law = fit_data_dependent(list(data.values()), grid=grid, n_boot=n_boot, seed=seed, name="study")
        out.dd_law.meta = {"grammars": [g.name for g in served], "source": "pygzlaw reproduce"}
        out.crossings_h = out.dd_law.chinchilla_crossing()
    # Between adjacent grammars (by H): where the fitted frontier exponent a crosses 0.5.
    pts = [(g.h, g.frontier["a"]) for g in served if g.frontier]
    for (h0, a0), (h1, a1) in zip(pts, pts[1:]):
        if (a0 - 0.5) * (a1 - 0.5) < 0:
            out.crossings_interp.append(h0 + (0.5 - a0) * (h1 - h0) / (a1 - a0))
    return out
