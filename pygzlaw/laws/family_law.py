"""Fitted laws of the rest of the family as one saveable, predictable object (FamilyLaw).

Kinds, their input columns (CSV header names, case-insensitive; JSONL keys alike) and what they
predict:

====================  =======================================  ==================================
kind                  fit columns                              predict(inputs) -> output
====================  =======================================  ==================================
overtrain             N, D (or C), loss                        n_params, n_tokens -> loss
error                 loss, error                              loss -> error
data_constrained      N, D, U (unique_tokens), loss            n_params, n_tokens, unique_tokens -> loss
qqt                   pool, pool_size, n_seen, error           pool, n_seen -> error
isoflop               N, D (or C), loss                        budget_flops -> n_params, n_tokens
====================  =======================================  ==================================

(Chinchilla and data-dependent laws keep their own classes, ChinchillaLaw and DataDependentLaw.)
Every law serialises to the same JSON shape as ChinchillaLaw: {"format": "pygzlaw.law",
"version", "kind", "name", "params", "fit", "meta", "bootstrap": {"columns", "samples"} | null}.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pygzlaw.laws.forms import (ChinchillaParams, DataConstrainedParams, ErrorParams, OvertrainParams, as_float64,
                                data_constrained_loss, downstream_error, fitted_range, overtrain_loss)
from pygzlaw.laws.intervals import percentile_interval, replicate_se

__all__ = ["FamilyLaw", "FAMILY_KINDS", "KIND_INPUTS", "KIND_COLUMNS", "read_table", "fit_overtrain_law",
           "fit_error_law_obj", "fit_data_constrained_law", "fit_qqt_law", "fit_isoflop_law", "parse_budgets",
           "isoflop_options"]

FAMILY_KINDS = ("overtrain", "error", "data_constrained", "qqt", "isoflop")
KIND_INPUTS = {"overtrain": ("n_params", "n_tokens"), "error": ("loss",),
               "data_constrained": ("n_params", "n_tokens", "unique_tokens"), "qqt": ("pool", "n_seen"),
               "isoflop": ("budget_flops",)}
KIND_OUTPUTS = {"overtrain": ("loss",), "error": ("error",), "data_constrained": ("loss",), "qqt": ("error",),
                "isoflop": ("n_params", "n_tokens")}
# Column names accepted per field (lower-cased); the first is the documented one.
COLUMN_ALIASES = {
    "N": ("n", "n_params", "params", "parameters", "model size"),
    "D": ("d", "n_tokens", "tokens", "training tokens"),
    "C": ("c", "budget_flops", "flops", "compute", "training flop"),
    "U": ("u", "unique_tokens", "u_d", "unique"),
    "loss": ("loss", "l", "val_loss"),
    "error": ("error", "err", "top1_error"),
    "pool": ("pool", "pool_name"),
    "pool_size": ("pool_size",),
    "n_seen": ("n_seen", "samples_seen", "samples"),
}
KIND_COLUMNS = {"overtrain": ("N", "D|C", "loss"), "error": ("loss", "error"),
                "data_constrained": ("N", "D", "U", "loss"), "qqt": ("pool", "pool_size", "n_seen", "error"),
                "isoflop": ("N", "D|C", "loss")}


# --------------------------------------------------------------------- tables
def read_table(path, fields, *, optional=(), kind="law") -> dict:
    """Read named numeric (and "pool": text) columns from a .csv / .jsonl file.

    Args:
        path: the file (io.read_records reads it).
        fields: field names from COLUMN_ALIASES that must be present.
        optional: fields read when present.
        kind: law kind, for messages.

    Returns:
        {field: float64 (n,) array, or list of str for "pool"}, plus "_lines": the file line per row.

    Raises:
        ValueError: a missing column (naming the accepted names) or a bad value (file:line, column, value).
    """
    from pygzlaw.laws.io import positive_cell, read_records

    recs = read_records(path, what=f"{kind} runs", example=",".join(fields))
    if not recs:
        raise ValueError(f"{path}: no data rows")
    header = {str(k).lstrip("\ufeff").strip().lower(): k for k in recs[0][1]}
    col = {}
    for f in list(fields) + list(optional):
        for nm in COLUMN_ALIASES[f]:
            if nm in header:
                col[f] = header[nm]
                break
        else:
            if f in fields:
                raise ValueError(f"{path}: --law {kind.replace('_', '-')} needs a column {f} (any of "
                                 f"{list(COLUMN_ALIASES[f])}); found {list(header)}")
    out = {f: [] for f in col}
    for line, rec in recs:
        for f, c in col.items():
            v = rec.get(c)
            if f == "pool":
                if v in (None, ""):
                    raise ValueError(f"{path}:{line}: empty {c}")
                out[f].append(str(v))
                continue
            out[f].append(positive_cell(v, c, f"{path}:{line}"))
    res = {f: (v if f == "pool" else np.array(v, dtype=np.float64)) for f, v in out.items()}
    res["_lines"] = [ln for ln, _ in recs]
    return res


# ---------------------------------------------------------------------- law
@dataclass
class FamilyLaw:
    """A fitted over-training, error, data-constrained, QQT or IsoFLOP law.

    Attributes:
        kind: one of FAMILY_KINDS.
        params: the law's constants (JSON-able dict; "pools" is a list of dicts for qqt).
        fit_info: facts about the fit (objective or sse, n_points, converged, warnings, ...).
        bootstrap: None or (n_boot, k) replicates of the columns ``boot_columns``.
        boot_columns: names of the bootstrap columns.
        name, meta: label and free-form metadata.
    """

    kind: str
    params: dict
    fit_info: dict = field(default_factory=dict)
    bootstrap: np.ndarray | None = None
    boot_columns: list = field(default_factory=list)
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in FAMILY_KINDS:
            raise ValueError(f"kind={self.kind!r} must be one of {FAMILY_KINDS}")

    # ------------------------------------------------------------ prediction
    def _with(self, p: dict):
        """The kind's typed parameters from a params dict (point estimate or one replicate)."""
        if self.kind == "overtrain":
            return OvertrainParams(**{k: p[k] for k in ("E", "a", "b", "eta")})
        if self.kind == "error":
            return ErrorParams(**{k: p[k] for k in ("epsilon", "k", "gamma")})
        if self.kind == "data_constrained":
            return DataConstrainedParams(**{k: p[k] for k in ("E", "A", "B", "alpha", "beta", "rd_star", "rn_star")})
        return p

    def _eval(self, p: dict, inputs: dict):
        q = self._with(p)
        if self.kind == "overtrain":
            n, d = inputs["n_params"], inputs["n_tokens"]
            return {"loss": overtrain_loss(6.0 * n * d, d / n, q)}
        if self.kind == "error":
            return {"error": downstream_error(inputs["loss"], q)}
        if self.kind == "data_constrained":
            return {"loss": data_constrained_loss(inputs["n_params"], inputs["n_tokens"], inputs["unique_tokens"], q)}
        if self.kind == "qqt":
            from pygzlaw.laws.family import qqt_error

            pools = {pl["name"]: pl for pl in q["pools"]}
            out = np.empty(len(inputs["pool"]))
            for i, (name, n) in enumerate(zip(inputs["pool"], inputs["n_seen"])):
                pl = pools[name]
                out[i] = float(qqt_error(float(n), pl["pool_size"], q["a"], pl["b"], pl["tau"], q["d"]))
            return {"error": out}
        c = inputs["budget_flops"]
        return {"n_params": q["n_coef"] * c ** q["a"], "n_tokens": q["d_coef"] * c ** q["b"]}

    def _inputs(self, inputs: dict) -> dict:
        need = KIND_INPUTS[self.kind]
        missing = [k for k in need if inputs.get(k) is None]
        if missing:
            raise ValueError(f"law {self.name or '(unnamed)'} (kind {self.kind}) needs {list(need)}; missing {missing}")
        extra = [k for k, v in inputs.items() if k not in need and v is not None]
        if extra:
            raise ValueError(f"law {self.name or '(unnamed)'} (kind {self.kind}) takes {list(need)}; {extra} do not apply")
        out = {}
        for k in need:
            if k == "pool":
                v = inputs[k]
                out[k] = [v] if isinstance(v, str) else [str(x) for x in v]
                known = [pl["name"] for pl in self.params["pools"]]
                bad = [x for x in out[k] if x not in known]
                if bad:
                    raise ValueError(f"pool {bad[0]!r} is not in law {self.name or '(unnamed)'}; its pools: {known}")
            else:
                out[k] = np.atleast_1d(as_float64(k, inputs[k])).ravel()
        lens = {len(v) for v in out.values()}
        if len(lens) > 1:
            m = max(lens)
            if lens - {1, m}:
                raise ValueError(f"inputs {list(need)} have lengths {[len(out[k]) for k in need]}; give equal "
                                 "lengths or one value")
            out = {k: (v * m if isinstance(v, list) and len(v) == 1 else
                       (np.broadcast_to(v, (m,)) if not isinstance(v, list) else v)) for k, v in out.items()}
        return out

    def predict(self, **inputs) -> np.ndarray:
        """The kind's first output (loss, error, or N_opt for isoflop) at the inputs (KIND_INPUTS), float64 (m,)."""
        return self._eval(self.params, self._inputs(inputs))[KIND_OUTPUTS[self.kind][0]]

    def evaluate(self, inputs: dict, *, level=0.95) -> dict:
        """Outputs at the inputs, with percentile bootstrap intervals when the law has replicates.

        Args:
            inputs: {name: value or list} with the kind's KIND_INPUTS.
            level: interval coverage in (0, 1).

        Returns:
            {"law", "kind", **inputs (lists), **outputs (lists), ["level", "intervals": {output: {"lo", "hi"}}]}.

        Raises:
            ValueError: missing, extra or bad inputs (named); an unknown pool.
        """
        x = self._inputs(inputs)
        out = {"law": self.name, "kind": self.kind}
        out.update({k: (v if isinstance(v, list) else np.asarray(v).tolist()) for k, v in x.items()})
        res = self._eval(self.params, x)
        out.update({k: np.asarray(v).tolist() for k, v in res.items()})
        if self.bootstrap is not None and len(self.bootstrap) and self.kind in ("overtrain", "error",
                                                                                "data_constrained"):
            if not (0 < level < 1):
                raise ValueError(f"level={level!r} must be in (0, 1), e.g. 0.95")
            samples = {k: [] for k in res}
            for row in self.bootstrap:
                if not np.isfinite(row).all():
                    continue
                p = dict(self.params)
                p.update(zip(self.boot_columns, (float(v) for v in row)))
                with np.errstate(all="ignore"):
                    r = self._eval(p, x)
                for k in res:
                    samples[k].append(r[k])
            iv = {}
            for k, v in samples.items():
                if v:
                    lo, hi = percentile_interval(np.array(v).T, level, axis=-1)
                    iv[k] = {"lo": np.asarray(lo).tolist(), "hi": np.asarray(hi).tolist()}
            out.update(level=level, intervals=iv)
        return out

    def param_intervals(self, *, level=0.95) -> dict:
        """Percentile bootstrap intervals {column: {"estimate", "lo", "hi", "se"}} of the replicated constants.

        Raises:
            ValueError: no bootstrap replicates.
        """
        if self.bootstrap is None or not len(self.bootstrap):
            raise ValueError(f"law {self.name or '(unnamed)'} has no bootstrap replicates; refit with --bootstrap N")
        b = self.bootstrap[np.isfinite(self.bootstrap).all(1)]
        lo, hi = percentile_interval(b, level)
        se = replicate_se(b)
        return {k: {"estimate": self.params.get(k), "lo": float(lo[j]), "hi": float(hi[j]), "se": float(se[j])}
                for j, k in enumerate(self.boot_columns)}

    def allocate(self, budget_flops, *, flops_per_token_param=6.0):
        """Compute-optimal allocation: over-training laws are Chinchilla laws with alpha = beta = eta
        (OvertrainParams.to_chinchilla); data-constrained laws use their base constants (no repetition).

        Raises:
            ValueError: for error, qqt and isoflop laws (use evaluate for isoflop's N_opt, D_opt).
        """
        from pygzlaw.laws.allocate import allocate

        if self.kind == "overtrain":
            base = self._with(self.params).to_chinchilla()
        elif self.kind == "data_constrained":
            base = self._with(self.params).base
        else:
            raise ValueError(f"law {self.name or '(unnamed)'} (kind {self.kind}) has no loss-based allocation"
                             + ("; evaluate budget_flops for N_opt, D_opt" if self.kind == "isoflop" else ""))
        return allocate(budget_flops, base, flops_per_token_param=flops_per_token_param)

    # ------------------------------------------------------------------ JSON
    def to_json_dict(self) -> dict:
        from pygzlaw.laws.law import LAW_FORMAT_VERSION

        return {"format": "pygzlaw.law", "version": LAW_FORMAT_VERSION, "kind": self.kind, "name": self.name,
                "params": self.params, "fit": self.fit_info, "meta": self.meta,
                "bootstrap": None if self.bootstrap is None else {
                    "columns": list(self.boot_columns), "samples": self.bootstrap.tolist()}}

    @classmethod
    def from_json_dict(cls, d: dict, *, where: str = "law") -> "FamilyLaw":
        kind = d.get("kind")
        if kind not in FAMILY_KINDS:
            raise ValueError(f"{where}: kind={kind!r}, expected one of {FAMILY_KINDS}")
        params = d.get("params")
        if not isinstance(params, dict):
            raise ValueError(f"{where}: params must be an object")
        law = cls(kind=kind, params=params, fit_info=dict(d.get("fit") or {}), name=str(d.get("name", "")),
                  meta=dict(d.get("meta") or {}))
        try:
            law._with(params)
            if kind == "qqt":
                for pl in params["pools"]:
                    float(pl["b"]), float(pl["tau"]), float(pl["pool_size"]), str(pl["name"])
                float(params["a"]), float(params["d"])
            if kind == "isoflop":
                for k in ("a", "n_coef", "b", "d_coef"):
                    float(params[k])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: params for kind {kind!r} are incomplete or invalid ({exc})") from None
        boot = d.get("bootstrap")
        if boot:
            cols = list(boot.get("columns", []))
            try:
                arr = np.asarray(boot.get("samples", []), dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: bootstrap.samples must be a list of number rows") from None
            if arr.ndim != 2 or arr.shape[1] != len(cols) or (kind != "qqt" and not set(cols) <= set(params)):
                raise ValueError(f"{where}: bootstrap has shape {arr.shape} for columns {cols}")
            law.bootstrap, law.boot_columns = arr, cols
        return law

    def summary(self) -> dict:
        """{"name", "kind", "params", "n_boot"} for listings (the service's GET /laws)."""
        return {"name": self.name, "kind": self.kind, "params": self.params,
                "n_boot": 0 if self.bootstrap is None else int(len(self.bootstrap))}


# ------------------------------------------------------------------ fitting
def _info(**kw) -> dict:
    return {k: v for k, v in kw.items() if v is not None}


def fit_overtrain_law(n_params, n_tokens, loss, *, n_boot=0, seed=0, name="", meta=None) -> FamilyLaw:
    """Gadre et al.'s L(C, M) by least squares from their 128 starts (family.fit_overtrain); C = 6ND, M = D/N."""
    from pygzlaw.laws.family import fit_overtrain

    n = as_float64("n_params", n_params).ravel()
    d = as_float64("n_tokens", n_tokens).ravel()
    f = fit_overtrain(6.0 * n * d, d / n, loss, n_boot=n_boot, seed=seed)
    cols = ["E", "a", "b", "eta"]
    return FamilyLaw("overtrain", f.params.to_dict(), _info(sse=f.sse, n_points=int(n.size), n_starts=f.n_starts,
                                                            n_converged=f.n_ok, converged=f.n_ok > 0,
                                                            n_boot=int(n_boot), bootstrap_seed=seed,
                                                            range=fitted_range(n, d)),
                     f.bootstrap, cols if f.bootstrap is not None else [], name, dict(meta or {}))


def fit_error_law_obj(loss, error, *, n_boot=0, seed=0, name="", meta=None) -> FamilyLaw:
    """Err(L) = epsilon - k exp(-gamma L) by least squares (family.fit_error_law)."""
    from pygzlaw.laws.family import fit_error_law

    f = fit_error_law(loss, error, n_boot=n_boot, seed=seed)
    cols = ["epsilon", "k", "gamma"]
    return FamilyLaw("error", f.params.to_dict(), _info(sse=f.sse, n_points=int(np.size(loss)), converged=True,
                                                        n_boot=int(n_boot), bootstrap_seed=seed),
                     f.bootstrap, cols if f.bootstrap is not None else [], name, dict(meta or {}))


def fit_data_constrained_law(n_params, n_tokens, unique_tokens, loss, base: ChinchillaParams, *, grid="default",
                             n_boot=0, seed=0, name="", meta=None, base_source="given", **kw) -> FamilyLaw:
    """R_D*, R_N* with the base constants held (data_constrained.fit_data_constrained); the law keeps the
    fit's objective, warnings, distinct minima and identifiability report in fit_info."""
    from pygzlaw.laws.data_constrained import fit_data_constrained

    f = fit_data_constrained(n_params, n_tokens, unique_tokens, loss, base, grid=grid, n_boot=n_boot, seed=seed,
                             **kw)
    info = f.to_dict()
    info.pop("params", None)
    info["base"] = base_source
    info["bootstrap_seed"] = seed
    info["range"] = fitted_range(n_params, n_tokens)
    return FamilyLaw("data_constrained", f.params.to_dict(), info, f.bootstrap,
                     ["rd_star", "rn_star"] if f.bootstrap is not None else [], name, dict(meta or {}))


def fit_qqt_law(curves, *, d: float, n_boot=0, seed=0, name="", meta=None, **kw) -> FamilyLaw:
    """Goyal et al.'s QQT fit (family.fit_qqt); the bootstrap resamples each pool's points and
    polishes from the full fit (no grid), giving replicates of a and every pool's b and tau."""
    from pygzlaw.laws.family import _as_curves, fit_qqt

    curves = _as_curves(curves)
    f = fit_qqt(curves, d=d, **kw)
    params = {"a": f.a, "d": f.d, "pools": [{"name": q.name, "pool_size": q.n_samples, "b": q.b, "tau": q.tau}
                                            for q in f.pools]}
    info = _info(sse=f.sse, grid_sse=f.grid_sse, n_points=f.n_points, converged=f.converged,
                 at_bound=f.at_bound, n_boot=int(n_boot), bootstrap_seed=seed)
    law = FamilyLaw("qqt", params, info, None, [], name, dict(meta or {}))
    if n_boot:
        rng = np.random.default_rng(seed)
        rows = []
        for _ in range(n_boot):
            cv = []
            for c in curves:
                n_ = np.asarray(c["n_seen"], dtype=np.float64)
                i = rng.integers(0, n_.size, size=n_.size)
                cv.append({**c, "n_seen": n_[i], "error": np.asarray(c["error"], dtype=np.float64)[i]})
            try:
                r = fit_qqt(cv, d=d, start=f, **kw)
                rows.append([r.a] + [q.b for q in r.pools] + [q.tau for q in r.pools])
            except ValueError:
                rows.append([np.nan] * (1 + 2 * len(f.pools)))
        law.bootstrap = np.array(rows)
        law.boot_columns = ["a"] + [f"{q.name}:b" for q in f.pools] + [f"{q.name}:tau" for q in f.pools]
        for j, col in enumerate(law.boot_columns):
            lo, hi = np.nanquantile(law.bootstrap[:, j], [0.025, 0.975])
            law.fit_info.setdefault("intervals", {})[col] = {"lo": float(lo), "hi": float(hi)}
    return law


def parse_budgets(spec, *, flag="--budgets") -> tuple:
    """Nominal IsoFLOP budgets (FLOPs) from ``"hoffmann"`` (isoflop.HOFFMANN_ISOFLOP_BUDGETS, the nine
    of Hoffmann et al. 2022, Figure 3) or a comma-separated list such as ``"6e18,1e19,3e19"``.

    Returns:
        tuple of float, > 0, at least two (one curve gives no exponent).

    Raises:
        ValueError: an item that is not a finite number > 0, or fewer than two budgets (naming ``flag``).
    """
    from pygzlaw.laws.isoflop import HOFFMANN_ISOFLOP_BUDGETS

    if isinstance(spec, str):
        if spec.strip().lower() == "hoffmann":
            return tuple(HOFFMANN_ISOFLOP_BUDGETS)
        items = [x.strip() for x in spec.split(",") if x.strip()]
    else:
        items = list(spec)
    out = []
    for item in items:
        try:
            v = float(item)
        except (TypeError, ValueError):
            v = float("nan")
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{flag} {item!r}: expected FLOPs > 0, e.g. {flag} 6e18,1e19,3e19 or {flag} hoffmann")
        out.append(v)
    if len(set(out)) < 2:
        raise ValueError(f"{flag}: needs at least two distinct budgets (got {out}), e.g. {flag} hoffmann")
    return tuple(out)


def fit_isoflop_law(n_params, n_tokens, loss, *, budget_flops=None, n_boot=200, seed=0, name="", meta=None,
                    budgets=None, budget_tol_dex=0.05, recentre=False, flops_per_token_param=6.0,
                    **kw) -> FamilyLaw:
    """IsoFLOP Approach 2 (isoflop.isoflop_analysis) as a law of N_opt(C), D_opt(C); intervals of a
    and b (bootstrap over each budget's runs) are in fit_info.

    Args:
        n_params, n_tokens, loss: (n,) runs; budget_flops: optional (n,) FLOPs (default
            flops_per_token_param * N * D).
        budgets: nominal budgets (FLOPs; ``"hoffmann"`` or a list, see parse_budgets): each run is
            assigned to the nearest within ``budget_tol_dex`` in log10 C (isoflop.snap_to_budgets,
            ``recentre`` as there) and the others are dropped, for FLOPs known only approximately
            (read off a figure). fit_info records the budgets and how many runs were dropped.
        **kw: isoflop_analysis options (rel_tol, method, window, min_points, edge_margin, level).

    Raises:
        ValueError: as isoflop_analysis and snap_to_budgets; no run within budget_tol_dex of a budget.
    """
    from pygzlaw.laws.isoflop import isoflop_analysis, snap_to_budgets

    snap = None
    if budgets is not None:
        b = parse_budgets(budgets, flag="budgets")
        n = as_float64("n_params", n_params).ravel()
        t = as_float64("n_tokens", n_tokens).ravel()
        c = (flops_per_token_param * n * t if budget_flops is None
             else as_float64("budget_flops", budget_flops).ravel())
        nominal, keep = snap_to_budgets(c, b, tol_dex=budget_tol_dex, recentre=recentre)
        if not keep.any():
            raise ValueError(f"no run lies within budget_tol_dex={budget_tol_dex} (log10 C) of the budgets {list(b)}; "
                             f"the runs span C in [{c.min():.3g}, {c.max():.3g}]")
        n_params, n_tokens, loss = n[keep], t[keep], as_float64("loss", loss).ravel()[keep]
        budget_flops = nominal[keep]
        snap = {"budgets": [float(v) for v in sorted(set(b))], "budget_tol_dex": float(budget_tol_dex),
                "recentre": bool(recentre), "n_runs_off_budgets": int((~keep).sum())}
    else:
        kw.setdefault("flops_per_token_param", flops_per_token_param)
    r = isoflop_analysis(n_params, n_tokens, loss, budget_flops=budget_flops, n_boot=n_boot, seed=seed, **kw)
    d = r.to_dict()
    params = {k: d.pop(k) for k in ("a", "n_coef", "b", "d_coef")}
    d["n_points"] = int(np.size(loss))
    d["bootstrap_seed"] = seed
    d["edge_margin"] = float(kw.get("edge_margin", 0.0))
    if snap:
        d["snap_to_budgets"] = snap
    return FamilyLaw("isoflop", params, d, None, [], name, dict(meta or {}))


# ------------------------------------------------------- one entry per kind
def parse_fix(values, *, flag="--fix") -> dict:
    """{name: float} from "NAME=VALUE" items (each may hold several, comma-separated).

    Raises:
        ValueError: an item without "=", or a value that is not a finite number (naming ``flag``).
    """
    out = {}
    for item in values or []:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            name, eq, val = part.partition("=")
            try:
                v = float(val)
            except ValueError:
                v = float("nan")
            if not eq or not name.strip() or not math.isfinite(v):
                raise ValueError(f"{flag} {part!r}: expected NAME=VALUE with a finite number, e.g. {flag} E=1.69")
            out[name.strip()] = v
    return out


_BASE_NAMES = ("E", "A", "B", "alpha", "beta")


def isoflop_options(*, min_points=None, edge_margin=None, budgets=None, budget_tol_dex=None, recentre=False,
                    kind="isoflop") -> dict:
    """The IsoFLOP options of ``pygzlaw fit`` checked, with the flags' names in every message, as
    keyword arguments of fit_isoflop_law (None = not given: the library default).

    Raises:
        ValueError: an option given for a kind other than "isoflop"; --min-points < 3; --edge-margin < 0
            or not finite; --budget-tol-dex <= 0 or given without --budgets; --recentre without --budgets;
            a bad --budgets (parse_budgets).
    """
    given = [f for f, v in (("--min-points", min_points), ("--edge-margin", edge_margin), ("--budgets", budgets),
                            ("--budget-tol-dex", budget_tol_dex), ("--recentre", recentre or None)) if v is not None]
    if kind != "isoflop":
        if given:
            raise ValueError(f"{given[0]} applies to --law isoflop (or --law chinchilla with --isoflop)")
        return {}
    kw = {}
    if min_points is not None:
        if isinstance(min_points, bool) or int(min_points) != min_points or min_points < 3:
            raise ValueError(f"--min-points {min_points}: must be an integer >= 3 (a parabola needs 3 distinct N)")
        kw["min_points"] = int(min_points)
    if edge_margin is not None:
        if not (math.isfinite(edge_margin) and edge_margin >= 0):
            raise ValueError(f"--edge-margin {edge_margin}: must be a finite number >= 0 (in log N, natural log)")
        kw["edge_margin"] = float(edge_margin)
    if budgets is None:
        for flag in ("--budget-tol-dex", "--recentre"):
            if flag in given:
                raise ValueError(f"{flag} applies with --budgets (nominal IsoFLOP budgets), e.g. --budgets hoffmann")
        return kw
    kw["budgets"] = parse_budgets(budgets)
    if budget_tol_dex is not None:
        from pygzlaw.laws.isoflop import snap_to_budgets

        try:                                                  # the same limit the library applies
            snap_to_budgets([kw["budgets"][0]], kw["budgets"], tol_dex=budget_tol_dex)
        except ValueError as exc:
            raise ValueError(f"--budget-tol-dex {budget_tol_dex}: {exc}") from None
        kw["budget_tol_dex"] = float(budget_tol_dex)
    kw["recentre"] = bool(recentre)
    return kw


def fit_from_file(kind, path, *, grid=None, tie=None, fix=None, n_boot=0, seed=0, name="", base=None,
                  rel_tol=0.05, method="window", window=0.75, allow_unidentified=False, huber_delta=1e-3,
                  **isoflop):
    """Fit a law of ``kind`` (FAMILY_KINDS, with "-" or "_") to the runs in ``path`` (its columns:
    KIND_COLUMNS). The CLI's ``pygzlaw fit --law KIND`` and the library share this.

    Args:
        kind: "overtrain", "error", "data-constrained", "qqt" or "isoflop".
        path: .csv / .jsonl runs file.
        grid: data-constrained: "default" or "muennighoff" (the authors' R* starts); else unused.
        tie: data-constrained base fit only ("alpha=beta").
        fix: {name: value}: data-constrained: base constants (all five = the base itself; some = held
            in the base fit); qqt: "d" (required: the irreducible error) and optionally nothing else.
        n_boot, seed: bootstrap replicates and seed.
        name: label for the law.
        base: data-constrained: a fitted ChinchillaLaw (or ChinchillaParams) to hold fixed.
        rel_tol, method, window: isoflop grouping tolerance and minimum method.
        **isoflop: min_points, edge_margin, budgets, budget_tol_dex, recentre (isoflop_options: None =
            the default; given for another kind, a ValueError naming the flag).
        allow_unidentified, huber_delta: for the data-constrained base fit.

    Returns:
        FamilyLaw.

    Raises:
        ValueError: options that do not apply to the kind (naming the flag), missing columns or bad values.
    """
    kind = kind.replace("-", "_")
    fix = dict(fix or {})
    meta = {"source": str(path)}
    if kind not in FAMILY_KINDS:
        raise ValueError(f"--law {kind!r} must be one of chinchilla, {', '.join(k.replace('_', '-') for k in FAMILY_KINDS)}")
    if kind not in ("data_constrained",) and tie:
        raise ValueError(f"--tie does not apply to --law {kind.replace('_', '-')} (chinchilla and data-constrained only)")
    if kind not in ("data_constrained", "qqt") and fix:
        raise ValueError(f"--fix does not apply to --law {kind.replace('_', '-')} (chinchilla, data-constrained, qqt)")
    if grid not in (None, "default") and kind != "data_constrained":
        raise ValueError(f"--grid {grid} does not apply to --law {kind.replace('_', '-')}")
    iso_kw = isoflop_options(**isoflop, kind=kind)
    if kind in ("overtrain", "isoflop"):
        from pygzlaw.laws.io import read_points

        pts = read_points(path)
        if kind == "overtrain":
            return fit_overtrain_law(pts.n_params, pts.n_tokens, pts.loss, n_boot=n_boot, seed=seed, name=name,
                                     meta=meta)
        return fit_isoflop_law(pts.n_params, pts.n_tokens, pts.loss, n_boot=n_boot, seed=seed, name=name, meta=meta,
                               rel_tol=rel_tol, method=method, window=window, **iso_kw)
    if kind == "error":
        t = read_table(path, ("loss", "error"), kind=kind)
        return fit_error_law_obj(t["loss"], t["error"], n_boot=n_boot, seed=seed, name=name, meta=meta)
    if kind == "qqt":
        extra = sorted(set(fix) - {"d"})
        if extra:
            raise ValueError(f"--fix {extra[0]}: --law qqt holds only d (the irreducible error) fixed, e.g. --fix d=0.1")
        if "d" not in fix:
            raise ValueError("--law qqt needs the irreducible error held fixed, as Goyal et al. do: --fix d=VALUE")
        t = read_table(path, ("pool", "pool_size", "n_seen", "error"), kind=kind)
        from pygzlaw.laws.family import qqt_curves

        curves = qqt_curves(t["pool"], t["pool_size"], t["n_seen"], t["error"])
        return fit_qqt_law(curves, d=fix["d"], n_boot=n_boot, seed=seed, name=name, meta=meta)
    # data-constrained
    t = read_table(path, ("N", "D", "U", "loss"), kind="data_constrained")
    bad = sorted(set(fix) - set(_BASE_NAMES))
    if bad:
        raise ValueError(f"--fix {bad[0]}: --law data-constrained holds base constants {list(_BASE_NAMES)}")
    if base is not None:
        if fix or tie:
            raise ValueError("--base gives the base law; --fix/--tie (which fit one) do not apply with it")
        bp = base.params if hasattr(base, "params") else base
        src = f"given ({getattr(base, 'name', '') or 'params'})"
    elif set(fix) == set(_BASE_NAMES):
        bp, src = ChinchillaParams(**fix), "fixed (--fix)"
    else:
        from pygzlaw.laws.law import ChinchillaLaw

        single = t["D"] <= t["U"]
        if single.sum() < 6:
            raise ValueError(f"{path}: {int(single.sum())} runs without repetition (D <= U) to fit the base law; need "
                             ">= 6, or give it: --base LAW.json or --fix E=..,A=..,B=..,alpha=..,beta=..")
        bl = ChinchillaLaw.fit(t["N"][single], t["D"][single], t["loss"][single], grid="hoffmann", tie=tie,
                               fix=fix or None, huber_delta=huber_delta, allow_unidentified=allow_unidentified)
        bp, src = bl.params, f"fitted on {int(single.sum())} runs with D <= U"
    return fit_data_constrained_law(t["N"], t["D"], t["U"], t["loss"], bp, grid=grid or "default", n_boot=n_boot,
                                    seed=seed, name=name, meta=meta, base_source=src, huber_delta=huber_delta,
                                    warn=False)
