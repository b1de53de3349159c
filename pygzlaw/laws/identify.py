"""Which Chinchilla parameters can a set of runs identify? (Design checks plus bootstrap spread.)

L(N, D) = E + A/N^alpha + B/D^beta separates its terms only when the runs vary N and D
independently:

- Fewer than 3 distinct D: B/D^beta takes at most 2 values, so E, B and beta (three unknowns) are
  not separately determined; likewise fewer than 3 distinct N for E, A, alpha.
- log D an affine function of log N (e.g. every run at D = 20 N): the loss is a function of N alone,
  E + A N^-alpha + B' N^-(k beta), symmetric in the two power terms; which term belongs to N and
  which to D, and so the compute-optimal split, is not determined.
- The bootstrap shows what the design leaves loose: a 95% interval of A, B or E wider than a factor
  of 10, or of alpha or beta wider than 0.5 (absolute).

- A parameter the fit drove to its bound (``at_bound``): E <= 1e-4 x the smallest loss (E = 0 in all
  but name: the runs never reach the irreducible loss, e.g. loss still falling linearly), or log A,
  log B clipped at +-700 (forms.LOG_BOUNDS). Its value is the bound, not an estimate.

The first two are *unidentified* (fits refuse them unless told otherwise); strong but inexact
collinearity (|corr(log N, log D)| > 0.98), wide bootstrap intervals and a parameter at its bound
are *weak* (fits warn; ``at_bound`` names the last kind).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pygzlaw.laws.forms import as_float64

__all__ = ["FitWarning", "IdentifiabilityReport", "identifiability_report", "NotIdentifiableError", "PARAM_NAMES",
           "COLLINEAR_RESID", "WEAK_CORR", "WEAK_RATIO", "WEAK_EXPONENT_WIDTH", "MIN_DISTINCT"]

PARAM_NAMES = ("E", "A", "B", "alpha", "beta")
MIN_DISTINCT = 3              # values of N (or D) needed to pin an offset, a scale and an exponent
COLLINEAR_RESID = 0.01        # sd (nats) of log D about its line in log N: below this, D is a function of N
WEAK_CORR = 0.98              # |corr(log N, log D)| above this: the split between terms rests on little
WEAK_RATIO = 10.0             # bootstrap 95% hi/lo of E, A, B above this: weak
WEAK_EXPONENT_WIDTH = 0.5     # bootstrap 95% width of alpha, beta above this: weak
_DISTINCT_RTOL = 1e-6         # values within this relative distance count as one


class FitWarning(UserWarning):
    """A fit finished but its result needs care (a parameter on a bound, weak identification)."""


class NotIdentifiableError(ValueError):
    """The runs cannot determine some parameters of the law (see IdentifiabilityReport.reasons)."""


@dataclass
class IdentifiabilityReport:
    """What the runs can and cannot determine.

    Attributes:
        n_points: runs.
        n_distinct_n, n_distinct_d: distinct parameter counts and token counts.
        corr_log_nd: Pearson correlation of log N and log D (NaN when either is constant).
        resid_log_d: sd (nats) of log D about its least-squares line in log N (0 when collinear).
        verdict: {param: "identified" | "weak" | "unidentified"} for E, A, B, alpha, beta.
        allocation: "identified" | "weak" | "unidentified": the compute-optimal split N_opt/D_opt.
        reasons: human-readable evidence, one line each.
        boot_spread: {param: {"lo", "hi"}} bootstrap 95% bounds used, when replicates were given.
        at_bound: parameters the fit drove to a bound (e.g. ["E"]: "E driven to its bound").
    """

    n_points: int
    n_distinct_n: int
    n_distinct_d: int
    corr_log_nd: float
    resid_log_d: float
    verdict: dict
    allocation: str
    reasons: list = field(default_factory=list)
    boot_spread: dict = field(default_factory=dict)
    at_bound: list = field(default_factory=list)

    @property
    def unidentified(self) -> list:
        """Parameters the runs cannot determine at all."""
        return [k for k in PARAM_NAMES if self.verdict[k] == "unidentified"]

    @property
    def weak(self) -> list:
        """Parameters the runs determine only loosely."""
        return [k for k in PARAM_NAMES if self.verdict[k] == "weak"]

    @property
    def ok(self) -> bool:
        """True when every parameter and the allocation are identified."""
        return not self.unidentified and not self.weak and self.allocation == "identified"

    def to_dict(self) -> dict:
        def fin(v):
            return None if not np.isfinite(v) else float(v)
        return {"n_points": self.n_points, "n_distinct_n": self.n_distinct_n, "n_distinct_d": self.n_distinct_d,
                "corr_log_nd": fin(self.corr_log_nd), "resid_log_d": fin(self.resid_log_d),
                "verdict": dict(self.verdict), "allocation": self.allocation, "reasons": list(self.reasons),
                "unidentified": self.unidentified, "weak": self.weak, "boot_spread": dict(self.boot_spread),
                "at_bound": list(self.at_bound)}

    @classmethod
    def from_dict(cls, d: dict) -> "IdentifiabilityReport":
        def num(v):
            return float("nan") if v is None else float(v)
        return cls(n_points=int(d["n_points"]), n_distinct_n=int(d["n_distinct_n"]),
                   n_distinct_d=int(d["n_distinct_d"]), corr_log_nd=num(d.get("corr_log_nd")),
                   resid_log_d=num(d.get("resid_log_d")), verdict=dict(d["verdict"]),
                   allocation=str(d["allocation"]), reasons=list(d.get("reasons", [])),
                   boot_spread=dict(d.get("boot_spread", {})), at_bound=list(d.get("at_bound", [])))


def _n_distinct(x: np.ndarray) -> int:
    s = np.sort(x)
    return int(1 + (np.diff(s) > _DISTINCT_RTOL * s[1:]).sum()) if s.size else 0


def _worse(a: str, b: str) -> str:
    order = ("identified", "weak", "unidentified")
    return order[max(order.index(a), order.index(b))]


def identifiability_report(n_params, n_tokens, *, bootstrap=None, at_bound=(), params=None) -> IdentifiabilityReport:
    """Check which of E, A, B, alpha, beta (and the compute-optimal split) the runs can determine.

    Args:
        n_params: (n,) parameters N per run.
        n_tokens: (n,) training tokens D per run.
        bootstrap: optional (n_boot, 5) replicates of (E, A, B, alpha, beta) from a fit on these runs;
            NaN rows are ignored.
        at_bound: names the fit drove to a bound (FitResult.at_bound); each becomes "weak" with a
            reason "<name> driven to its bound".
        params: the fitted ChinchillaParams, quoted in those reasons (optional).

    Returns:
        IdentifiabilityReport (thresholds: module constants, reasons in the module docstring).

    Raises:
        ValueError: mismatched lengths, or non-positive / non-finite input.
    """
    n = as_float64("n_params", n_params).ravel()
    d = as_float64("n_tokens", n_tokens).ravel()
    if n.size != d.size:
        raise ValueError(f"n_params ({n.size}) and n_tokens ({d.size}) must have the same length")
    verdict = {k: "identified" for k in PARAM_NAMES}
    alloc = "identified"
    reasons = []
    kn, kd = _n_distinct(n), _n_distinct(d)
    ln, ld = np.log(n), np.log(d)
    corr = float(np.corrcoef(ln, ld)[0, 1]) if kn > 1 and kd > 1 else float("nan")
    if kn > 1:
        slope, icpt = np.polyfit(ln, ld, 1)
        resid = float(np.std(ld - (slope * ln + icpt)))
    else:
        resid = float(np.std(ld))
    if kd < MIN_DISTINCT:
        for k in ("E", "B", "beta"):
            verdict[k] = "unidentified"
        alloc = "unidentified"
        reasons.append(f"{kd} distinct D (n_tokens) value(s): B/D^beta takes at most {kd} values, so E, B and beta "
                       f"cannot be separated; train at >= {MIN_DISTINCT} token counts")
    if kn < MIN_DISTINCT:
        for k in ("E", "A", "alpha"):
            verdict[k] = "unidentified"
        alloc = "unidentified"
        reasons.append(f"{kn} distinct N (n_params) value(s): A/N^alpha takes at most {kn} values, so E, A and alpha "
                       f"cannot be separated; train at >= {MIN_DISTINCT} model sizes")
    if kn >= 2 and kd >= 2:
        if resid < COLLINEAR_RESID:
            for k in ("A", "B", "alpha", "beta"):
                verdict[k] = "unidentified"
            alloc = "unidentified"
            reasons.append(f"log D is a linear function of log N (corr {corr:.4f}, residual sd {resid:.2g} nats; e.g. "
                           f"every run at D/N = {float(np.median(d / n)):.3g}): the N and D terms cannot be told apart "
                           "and neither can the compute-optimal split; add runs off that line (other D/N ratios)")
        elif abs(corr) > WEAK_CORR:
            for k in ("A", "B", "alpha", "beta"):
                verdict[k] = _worse(verdict[k], "weak")
            alloc = _worse(alloc, "weak")
            reasons.append(f"log N and log D are nearly collinear (corr {corr:.4f}): the split between the N and D "
                           "terms rests on small departures from one D/N ratio")
    spread = {}
    if bootstrap is not None:
        b = np.asarray(bootstrap, dtype=np.float64)
        if b.ndim != 2 or b.shape[1] != 5:
            raise ValueError(f"bootstrap has shape {b.shape}; expected (n_boot, 5) columns {PARAM_NAMES}")
        b = b[np.isfinite(b).all(1)]
        if len(b) >= 10:
            lo, hi = np.quantile(b, [0.025, 0.975], axis=0)
            for j, k in enumerate(PARAM_NAMES):
                spread[k] = {"lo": float(lo[j]), "hi": float(hi[j])}
                if k in ("alpha", "beta"):
                    wide = hi[j] - lo[j] > WEAK_EXPONENT_WIDTH
                    what = f"width {hi[j] - lo[j]:.3g} > {WEAK_EXPONENT_WIDTH}"
                else:
                    wide = not (lo[j] > 0 and hi[j] / lo[j] <= WEAK_RATIO)
                    what = f"hi/lo > {WEAK_RATIO:g}"
                if wide:
                    verdict[k] = _worse(verdict[k], "weak")
                    reasons.append(f"bootstrap 95% interval of {k} is [{lo[j]:.4g}, {hi[j]:.4g}] ({what})")
                    if k in ("alpha", "beta", "A", "B"):
                        alloc = _worse(alloc, "weak")
    for k in at_bound:
        verdict[k] = _worse(verdict[k], "weak")
        val = f" = {getattr(params, k):.3g}" if params is not None else ""
        what = ("the runs never reach the irreducible loss (loss still falling as a power or linearly at the largest "
                "N and D), so E is 0 in all but name; add larger or longer runs, or fix E (--fix E=VALUE)"
                if k == "E" else "its log was clipped at +-700 (forms.LOG_BOUNDS): the term has no finite estimate")
        reasons.append(f"{k} driven to its bound ({k}{val}): {what}")
        if k in ("A", "B"):
            alloc = _worse(alloc, "weak")
    return IdentifiabilityReport(n_points=int(n.size), at_bound=list(at_bound), n_distinct_n=kn, n_distinct_d=kd, corr_log_nd=corr,
                                 resid_log_d=resid, verdict=verdict, allocation=alloc, reasons=reasons,
                                 boot_spread=spread)
