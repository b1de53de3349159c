"""The study's report folder, rebuilt from the run store alone (``pygzlaw report``).

<out>/
    report.md           tables (grammars and H; fitted parameters with intervals; flags; regressions on H;
                        frontier exponents; the H where the frontier crosses 1:1) and the figures
    figures/loss_vs_D.png       loss against D per N with the fitted curves, one panel per grammar
    figures/frontiers.png       compute-optimal N_opt(C) and D_opt/N_opt per grammar against Chinchilla's
    figures/params_vs_H.png     each parameter against H with its regression line (when >= 3 laws)
    laws/<grammar>.json         served laws (pygzlaw serve <out>/laws serves the folder as it is)
    laws/data_dependent.json    L(N, D, H) from the per-grammar fits (in laws-flagged/ when any of them is flagged)
    laws-flagged/<grammar>.json fits that the grid cannot identify (kept for inspection, not served)
    runs.csv            finished runs: dataset, H, N, D, loss (= final validation loss) ... (pygzlaw fit reads it)
    analysis.json       every number in the report, machine-readable

Every file is written to a temporary name and renamed (pygzlaw.atomic).
"""
from __future__ import annotations

import csv
import io
import math
import os
import time

import numpy as np

from pygzlaw.atomic import write_json, write_text

__all__ = ["build_report", "write_runs_csv", "RUNS_CSV_COLUMNS"]

RUNS_CSV_COLUMNS = ("dataset", "H", "N", "D", "loss", "run_id", "model", "status", "N_non_embedding", "train_flops",
                    "train_loss", "wall_s", "tokens_per_s", "host", "version")
PARAMS = ("E", "A", "B", "alpha", "beta")


def write_runs_csv(path, runs: list[dict], *, only_done: bool = True) -> int:
    """Write runs as CSV (columns RUNS_CSV_COLUMNS, plus error when not only_done). Returns rows written."""
    cols = list(RUNS_CSV_COLUMNS) + ([] if only_done else ["error"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    n = 0
    for r in runs:
        if only_done and r["status"] != "done":
            continue
        row = {"dataset": r["grammar"], "H": r["H_median"], "N": r["N"], "D": r["D"], "loss": r["val_loss"],
               "run_id": r["run_id"], "model": r["model"], "status": r["status"],
               "N_non_embedding": r["N_non_embedding"], "train_flops": r["C"], "train_loss": r["train_loss"],
               "wall_s": r["wall_s"], "tokens_per_s": r["tokens_per_s"], "host": r["host"], "version": r["version"],
               "error": (r.get("error") or "").splitlines()[0] if r.get("error") else ""}
        w.writerow(["" if row[c] is None else (repr(row[c]) if isinstance(row[c], float) else row[c]) for c in cols])
        n += 1
    write_text(path, buf.getvalue())
    return n


def build_report(out: str, *, store=None, config=None, db: str | None = None) -> str:
    """Analyse the store's runs and (re)write the report folder ``out``. Returns ``out``.

    Args:
        out: report folder (the study's --out).
        store: an open RunStore, or None to open ``db`` (default <out>/runs.sqlite).
        config: the StudyConfig (analysis settings, grid); None = the one stored in the database.
        db: database path when store is None.

    Raises:
        FileNotFoundError: no database.
        ValueError: the database holds no study (no runs).
    """
    from pygzlaw.study.analysis import analyze
    from pygzlaw.study.store import RunStore

    own = store is None
    if own:
        db = db or os.path.join(out, "runs.sqlite")
        if not os.path.isfile(db):
            raise FileNotFoundError(f"{db}: no study database; run pygzlaw reproduce --out {out} first, or pass --db")
        store = RunStore(db)
    try:
        runs = store.runs()
        grammars = store.grammars()
        meta_cfg = store.get_meta("config") or {}
        plan = store.get_meta("plan")
        prov = store.get_meta("gzip_provenance")   # how the H values were computed
        if not runs:
            raise ValueError(f"{store.path}: the database holds no runs; run pygzlaw reproduce first")
    finally:
        if own:
            store.close()
    n_other = 0
    if plan:   # runs of an earlier configuration stay in the database but are not analysed
        keep = set(plan)
        n_other = sum(r["run_id"] not in keep for r in runs)
        runs = [r for r in runs if r["run_id"] in keep]
        names = {r["grammar"] for r in runs}
        grammars = [g for g in grammars if g["name"] in names]
    ana_cfg = (config.to_dict()["analysis"] if config is not None else meta_cfg.get("analysis")) or {}
    t0 = time.perf_counter()
    ana = analyze(runs, grammars, n_boot=int(ana_cfg.get("n_boot", 200)), seed=int(ana_cfg.get("seed", 0)),
                  level=float(ana_cfg.get("level", 0.95)), grid=ana_cfg.get("grid", "hoffmann"),
                  regress=ana_cfg.get("regress", "linear"))
    fit_s = time.perf_counter() - t0
    os.makedirs(out, exist_ok=True)
    _write_laws(out, ana, prov)
    figs = _figures(out, ana, runs)
    write_runs_csv(os.path.join(out, "runs.csv"), runs)
    summary = _summary_dict(ana, runs, meta_cfg, fit_s)
    summary["runs_of_other_configurations"] = n_other
    summary["gzip_provenance"] = prov
    write_json(os.path.join(out, "analysis.json"), _finite(summary))
    write_text(os.path.join(out, "report.md"), _markdown(ana, runs, meta_cfg, figs, summary))
    return out


# ------------------------------------------------------------------ laws
def _write_laws(out, ana, prov=None) -> None:
    from pygzlaw.laws import save_law

    for sub in ("laws", "laws-flagged"):
        d = os.path.join(out, sub)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):        # the folder is ours: drop laws of an earlier analysis
            if f.endswith(".json"):
                os.unlink(os.path.join(d, f))
    for g in ana.grammars:
        if g.law is None:
            continue
        g.law.meta = {**g.law.meta, "flags": g.flags, "gzip_provenance": prov}
        save_law(g.law, os.path.join(out, "laws" if g.served else "laws-flagged", f"{g.name}.json"))
    if ana.dd_law is not None:
        ana.dd_law.meta = {**ana.dd_law.meta, "flagged_inputs": ana.regression_flagged,
                           "gzip_provenance": prov}
        save_law(ana.dd_law, os.path.join(out, "laws" if ana.dd_served else "laws-flagged", "data_dependent.json"))


# --------------------------------------------------------------- figures
def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> str:
    from pygzlaw.atomic import atomic_open

    with atomic_open(path, "wb") as f:
        fig.savefig(f, dpi=100, bbox_inches="tight", format="png")
    _plt().close(fig)
    return path


def _figures(out, ana, runs) -> dict:
    from pygzlaw.laws import HOFFMANN_PARAMS, chinchilla_loss, compute_optimal

    plt = _plt()
    fdir = os.path.join(out, "figures")
    os.makedirs(fdir, exist_ok=True)
    for f in os.listdir(fdir):
        if f.endswith(".png"):
            os.unlink(os.path.join(fdir, f))
    figs = {}
    done = [r for r in runs if r["status"] == "done" and r["val_loss"] is not None]
    gs = ana.grammars
    # 1. loss vs D per N, one panel per grammar
    if gs and done:
        ncol = min(3, len(gs))
        nrow = -(-len(gs) // ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 4 * nrow), squeeze=False)
        for ax, g in zip(axes.ravel(), gs):
            rows = [r for r in done if r["grammar"] == g.name]
            ns = sorted({r["N"] for r in rows})
            cmap = plt.get_cmap("viridis")
            ds = [r["D"] for r in rows]
            if ds:
                d_line = np.logspace(math.log10(min(ds)) - 0.1, math.log10(max(ds)) + 0.1, 60)
            for j, n in enumerate(ns):
                col = cmap(j / max(len(ns) - 1, 1))
                pts = sorted((r["D"], r["val_loss"]) for r in rows if r["N"] == n)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", color=col, ms=4, label=f"N={n:,}")
                if g.law is not None:
                    ax.plot(d_line, chinchilla_loss(float(n), d_line, g.law.params), "--" if g.served else ":",
                            color=col, lw=1)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(plt.NullFormatter())
            ax.set_xlabel("training tokens D")
            ax.set_ylabel("validation loss (nats/token)")
            state = "" if g.served else (" (flagged)" if g.law is not None else " (no fit)")
            ax.set_title(f"{g.name}, H={g.h:.3f}{state}", fontsize=10)
            if ns:
                ax.legend(fontsize=7)
        for ax in axes.ravel()[len(gs):]:
            ax.set_visible(False)
        figs["loss_vs_D"] = _save(fig, os.path.join(fdir, "loss_vs_D.png"))
    # 2. frontiers per grammar against Chinchilla's
    fitted = [g for g in gs if g.law is not None and g.frontier]
    if fitted:
        cs = [6.0 * r["N"] * r["D"] for r in done]
        c = np.logspace(math.floor(math.log10(min(cs))), math.ceil(math.log10(max(cs))) + 3, 60)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
        cmap = plt.get_cmap("plasma")
        for i, g in enumerate(fitted):
            col = cmap(i / max(len(fitted) - 1, 1))
            n_opt, d_opt = compute_optimal(c, g.law.params)
            ls = "-" if g.served else ":"
            ax1.plot(c, n_opt, ls, color=col, label=f"{g.name} H={g.h:.3f} (a={g.frontier['a']:.2f})"
                     + ("" if g.served else ", flagged"))
            ax2.plot(c, d_opt / n_opt, ls, color=col)
        n_ref, d_ref = compute_optimal(c, HOFFMANN_PARAMS)
        ax1.plot(c, n_ref, "k--", label="Chinchilla (Hoffmann et al.)")
        ax1.plot(c, n_ref[0] * (c / c[0]) ** 0.5, "k:", lw=0.8, label="1:1 line (a = 0.5)")
        ax2.plot(c, d_ref / n_ref, "k--")
        for ax, lab in ((ax1, "N_opt (parameters)"), (ax2, "D_opt / N_opt (tokens per parameter)")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("compute C = 6ND (FLOPs)")
            ax.set_ylabel(lab)
        ax1.legend(fontsize=7)
        ax1.set_title("compute-optimal frontier per grammar")
        figs["frontiers"] = _save(fig, os.path.join(fdir, "frontiers.png"))
    # 3. parameters vs H with regression lines
    if ana.regressions:
        served = fitted
        hs = np.array([g.h for g in served])
        h_line = np.linspace(hs.min(), hs.max(), 50)
        fig, axes = plt.subplots(1, 5, figsize=(18, 3.5))
        for ax, k in zip(axes, PARAMS):
            ys = np.array([getattr(g.law.params, k) for g in served])
            ok = np.array([g.served for g in served])
            ax.plot(hs[ok], ys[ok], "o", color="C0", label="identifiable")
            ax.plot(hs[~ok], ys[~ok], "o", mfc="none", color="C1", label="flagged")
            ax.set_yscale("log" if k in ("A", "B") else "linear")
            reg = ana.regressions[k]
            ax.plot(h_line, reg(h_line), "r-", lw=1)
            ax.set_xlabel("gzip compressibility H")
            ax.set_title(f"{k}: slope {reg.slope:.3g}, r={reg.r:.2f}, p={reg.p_value:.2g}", fontsize=9)
        axes[0].legend(fontsize=7)
        figs["params_vs_H"] = _save(fig, os.path.join(fdir, "params_vs_H.png"))
    return figs


# --------------------------------------------------------------- summary
def _summary_dict(ana, runs, meta_cfg, fit_s) -> dict:
    counts = {}
    for r in runs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    walls = [r["wall_s"] for r in runs if r["status"] == "done" and r["wall_s"] is not None]
    started = [r["started_at"] for r in runs if r["started_at"]]
    finished = [r["finished_at"] for r in runs if r["finished_at"]]
    return {
        "study": meta_cfg.get("name"), "scale": meta_cfg.get("scale"), "runs": counts,
        "run_wall_s_total": float(sum(walls)), "analysis_s": fit_s,
        "first_start": min(started) if started else None, "last_finish": max(finished) if finished else None,
        "grammars": [{
            "name": g.name, "H": g.h, "H_std": g.h_std, "vocab_size": g.vocab_size, "n_runs": g.n_runs,
            "distinct_N": g.n_distinct_n, "distinct_D": g.n_distinct_d, "served": g.served, "flags": g.flags,
            "notes": g.notes,
            "params": g.law.params.to_dict() if g.law is not None else None, "intervals": g.intervals,
            "fit": g.law.fit_info if g.law is not None else None, "frontier": g.frontier} for g in ana.grammars],
        "regressions": {k: v.to_dict() for k, v in ana.regressions.items()} if ana.regressions else None,
        "regression_note": ana.regression_note, "regression_inputs": ana.regression_inputs,
        "regression_flagged": ana.regression_flagged, "data_dependent_served": ana.dd_served,
        "regress": ana.regress, "undefined_h": [list(r) for r in ana.undefined_h], "domain_note": ana.domain_note,
        "frontier_crossing_h": ana.crossings_h, "frontier_crossing_h_interpolated": ana.crossings_interp,
        "reference_budget_flops": ana.ref_budget_flops, "level": ana.level,
    }


def _finite(obj):
    """JSON-safe copy: non-finite floats (a bootstrap spread can overflow) become None."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _g(x, digits=4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


def _markdown(ana, runs, meta_cfg, figs, summary) -> str:
    from pygzlaw import __version__

    lv = int(round(ana.level * 100))
    L = []
    L.append(f"# pygzlaw study report: {meta_cfg.get('name', '')}")
    L.append("")
    L.append(f"pygzlaw {__version__}; scale `{meta_cfg.get('scale')}`; generated "
             f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}. Runs: " +
             ", ".join(f"{v} {k}" for k, v in sorted(summary["runs"].items())) +
             f"; summed run time {summary['run_wall_s_total']:.0f} s; analysis {summary['analysis_s']:.1f} s." +
             (f" {summary['runs_of_other_configurations']} runs of earlier configurations in the database are "
              "not used." if summary.get("runs_of_other_configurations") else ""))
    L.append("")
    L.append("Loss is the final validation loss (nats/token) on held-out documents of the same grammar. "
             "N counts all parameters (both embedding matrices), as in Pandey 2024. H is the median gzip "
             "ratio (level 9, token ids as 4-byte big-endian integers) of "
             f"{(meta_cfg.get('analysis') or {}).get('h_docs', 1000)} documents of 256 tokens.")
    L.append("")
    L.append("## Grammars")
    L.append("")
    L.append("| grammar | source | seed | vocab | H (median) | H std | runs done | distinct N × D | law |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    cfg_g = {g["name"]: g for g in (meta_cfg.get("grammars") or [])}
    for g in ana.grammars:
        src = cfg_g.get(g.name, {})
        source = src.get("preset") or src.get("file") or (
            "spec " + ", ".join(f"{k}={v}" for k, v in (src.get("spec") or {}).items()))
        state = "served" if g.served else ("flagged" if g.law is not None else "none")
        L.append(f"| {g.name} | {source} | {src.get('seed', '')} | {g.vocab_size} | {_g(g.h)} | {_g(g.h_std, 2)} | "
                 f"{g.n_runs} | {g.n_distinct_n} × {g.n_distinct_d} | {state} |")
    L.append("")
    L.append(f"## Chinchilla law per grammar (L = E + A/N^α + B/D^β, Approach 3, {lv}% bootstrap intervals)")
    L.append("")
    L.append("| grammar | H | E | A | B | α | β | Huber objective |")
    L.append("|---|---|---|---|---|---|---|---|")
    for g in ana.grammars:
        if g.law is None:
            L.append(f"| {g.name} | {_g(g.h)} | – | – | – | – | – | {g.error or 'not fitted'} |")
            continue
        cells = []
        for k in PARAMS:
            v = getattr(g.law.params, k)
            if g.intervals:
                iv = g.intervals[k]
                cells.append(f"{_g(v)} [{_g(iv['lo'], 3)}, {_g(iv['hi'], 3)}]")
            else:
                cells.append(_g(v))
        L.append(f"| {g.name}{'' if g.served else ' (flagged)'} | {_g(g.h)} | " + " | ".join(cells) +
                 f" | {_g(g.law.fit_info.get('objective'), 3)} |")
    flagged = [g for g in ana.grammars if g.flags]
    if flagged:
        L.append("")
        L.append("**Not identifiable from the grid (flagged: not served; regressions that use them are marked):**")
        L.append("")
        for g in flagged:
            L.append(f"- {g.name}: " + "; ".join(g.flags))
    noted = [g for g in ana.grammars if g.notes]
    if noted:
        L.append("")
        L.append("Notes from the fits (pygzlaw.laws identifiability checks):")
        L.append("")
        for g in noted:
            L.append(f"- {g.name}: " + " ".join(g.notes))
    L.append("")
    if "loss_vs_D" in figs:
        L.append("![loss vs D per N, fitted curves dashed](figures/loss_vs_D.png)")
        L.append("")
    if ana.regress == "log":
        L.append("## Parameters regressed on H (log regression: log x(H) = slope·H + intercept for A and B, "
                 "x(H) = slope·H + intercept for E, alpha, beta)")
    else:
        L.append("## Parameters regressed on H (linear regression, the paper's: x(H) = slope·H + intercept)")
    L.append("")
    L.append(f"Regression: **{ana.regress}** (`[analysis] regress = \"linear\"|\"log\"`; linear is Pandey 2024's).")
    L.append("")
    if ana.regressions:
        L.append("| parameter | slope | intercept | r | p |")
        L.append("|---|---|---|---|---|")
        for k in PARAMS:
            r = ana.regressions[k]
            k_ = f"log {k}" if r.scale == "log" else k
            L.append(f"| {k_} | {_g(r.slope)} | {_g(r.intercept)} | {r.r:.3f} | {_g(r.p_value, 3)} |")
        L.append("")
        L.append(f"Over {len(ana.regression_inputs)} grammars ({', '.join(ana.regression_inputs)}); with so few "
                 "points, p-values are weak evidence.")
        if ana.regression_flagged:
            L.append("")
            L.append(f"**Indicative only:** the fits of {', '.join(ana.regression_flagged)} are flagged above, so "
                     "these regressions and L(N, D, H) rest on parameters the grid does not determine; "
                     "L(N, D, H) is in `laws-flagged/data_dependent.json`, not served.")
        else:
            L.append("The data-dependent law L(N, D, H) built from these regressions is `laws/data_dependent.json`.")
        if ana.domain_note:
            L.append("")
            L.append(f"**Undefined inside the fitted H range:** {ana.domain_note}.")
        if "params_vs_H" in figs:
            L.append("")
            L.append("![parameters vs H](figures/params_vs_H.png)")
    else:
        L.append(f"Not computed: {ana.regression_note}.")
    L.append("")
    L.append("## Compute-optimal frontier")
    L.append("")
    L.append("N_opt = G·(C/6)^a, D_opt = G⁻¹·(C/6)^b with a = β/(α+β), b = α/(α+β) (Hoffmann et al. 2022, Eq. 4). "
             "Chinchilla's 1:1 line is a = b = 0.5; a < 0.5 means the grammar's frontier favours data.")
    L.append("")
    ref = ana.ref_budget_flops
    L.append(f"| grammar | H | a (N_opt ∝ C^a) | b (D_opt ∝ C^b) | tokens per parameter at C = {_g(ref, 3)} |")
    L.append("|---|---|---|---|---|")
    for g in ana.grammars:
        if g.frontier and g.law is not None:
            f = g.frontier
            L.append(f"| {g.name}{'' if g.served else ' (flagged)'} | {_g(g.h)} | {f['a']:.3f} | {f['b']:.3f} | "
                     f"{_g(f['tokens_per_param_at_ref'], 3)} |")
    L.append("")
    if ana.dd_law is not None:
        ch = ", ".join(f"{h:.3f}" for h in ana.crossings_h) or "none in H ∈ [0.05, 1]"
        L.append(f"H where the frontier of L(N, D, H) crosses the 1:1 line (a(H) = 0.5): **{ch}**.")
    ci = ", ".join(f"{h:.3f}" for h in ana.crossings_interp) or "none between the grammars' H"
    L.append(f"Between adjacent grammars (linear interpolation of the fitted a): {ci}. "
             "(Pandey 2024 reports a crossing somewhere in 0.23 < H < 0.45 at the paper's scale.)")
    if "frontiers" in figs:
        L.append("")
        L.append("![frontiers per grammar against Chinchilla's](figures/frontiers.png)")
    L.append("")
    L.append("## Files")
    L.append("")
    L.append("- `runs.sqlite`: the run store (every run, its config and hash, status, losses, timings).")
    L.append("- `runs.csv`: finished runs; `pygzlaw fit runs.csv` refits them.")
    L.append("- `laws/`: the served laws: `pygzlaw serve " + "laws` answers predict/allocate from them.")
    L.append("- `laws-flagged/`: fits flagged above (not served).")
    L.append("- `analysis.json`: every number of this report.")
    L.append("")
    return "\n".join(L)
