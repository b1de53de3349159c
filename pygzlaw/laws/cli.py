"""``pygzlaw fit | predict | allocate | plot``. Heavy imports happen inside the commands."""
from __future__ import annotations

import json
import math
import sys

# Why no built-in data-dependent default: Pandey 2024 publishes the regressions only as figures
# (no table of slopes and intercepts), so any default would be a guess read off a plot.
NO_DEFAULT_H_LAW = ("no published per-H coefficients exist (Pandey 2024 shows the regressions of E, A, B, alpha, "
                    "beta on H only as figures), so --gzip needs --law FILE with a data-dependent law: fit one with "
                    "`pygzlaw fit POINTS.csv -o law.json` on points that have an H (gzip) column")


def register(subparsers) -> None:
    p = subparsers.add_parser("fit", help="fit a scaling law of any kind (--law) to runs",
                              description="Fit a law to runs. --law chinchilla (default): L(N, D) = E + A/N^alpha + "
                                          "B/D^beta by Approach 3 (Huber 1e-3 summed on log residuals, L-BFGS from a "
                                          "grid); with an H (gzip) column, per dataset and regressed on H. Columns "
                                          "per law: chinchilla, overtrain, isoflop: N, D (or C), loss; error: loss, "
                                          "error; data-constrained: N, D, U (unique tokens), loss; qqt: pool, "
                                          "pool_size, n_seen, error. Every law is written as the same JSON shape.")
    p.add_argument("points", help="runs as .csv (header) or .jsonl with the columns of --law")
    p.add_argument("--law", default="chinchilla",
                   choices=["chinchilla", "isoflop", "overtrain", "error", "data-constrained", "qqt"],
                   help="which law to fit (default chinchilla)")
    p.add_argument("-o", "--out", help="write the fitted law JSON here (atomically)")
    p.add_argument("--grid", default=None, choices=["hoffmann", "muennighoff", "default"],
                   help="starts: chinchilla: hoffmann (4500, default) or muennighoff (1024); data-constrained: "
                        "default (log grid) or muennighoff (the authors' R_D*, R_N* starts)")
    p.add_argument("--tie", choices=["alpha=beta"], help="chinchilla / data-constrained base: one exponent")
    p.add_argument("--fix", action="append", metavar="NAME=VALUE",
                   help="hold parameters fixed, e.g. --fix E=1.69 or --fix A=406.4,B=410.7 (chinchilla: E, A, B, "
                        "alpha, beta; data-constrained: the base constants, all five = the base; qqt: d, required)")
    p.add_argument("--base", metavar="LAW.json", help="data-constrained: a fitted Chinchilla law held as the base "
                                                      "(default: fit one on the runs with D <= U)")
    p.add_argument("--isoflop-method", choices=["window", "interp", "parabola"], default="window",
                   help="isoflop: minimum per budget from a parabola in a window around the lowest run (default), "
                        "PCHIP interpolation, or one parabola through the whole curve")
    p.add_argument("--window", type=float, default=0.75, help="isoflop: half-width of the window in log N")
    p.add_argument("--min-points", type=int, default=None, metavar="K",
                   help="isoflop: the window holds at least K distinct N, nearest first (default 5, >= 3)")
    p.add_argument("--edge-margin", type=float, default=None, metavar="LOGN",
                   help="isoflop: how far (natural log N) a curve's minimum may lie outside its sampled N before "
                        "the budget is skipped (default 0: the runs must bracket it)")
    p.add_argument("--budgets", default=None, metavar="hoffmann|C1,C2,...",
                   help="isoflop: nominal budgets in FLOPs (hoffmann = Hoffmann et al.'s nine, 6e18 ... 3e21); each "
                        "run joins the nearest within --budget-tol-dex and the others are dropped, for FLOPs known "
                        "only approximately (read off a figure)")
    p.add_argument("--budget-tol-dex", type=float, default=None, metavar="DEX",
                   help="isoflop with --budgets: largest |log10 C - log10 budget| kept (default 0.05)")
    p.add_argument("--recentre", action="store_true",
                   help="isoflop with --budgets: centre each curve on its runs' median log10 C (FLOPs offset as a "
                        "whole) before applying --budget-tol-dex")
    p.add_argument("--huber-delta", type=float, default=1e-3)
    p.add_argument("--bootstrap", type=int, default=0, metavar="N_BOOT",
                   help="bootstrap replicates for intervals (every law); 0 = none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drop-highest-loss", type=int, default=0, metavar="K",
                   help="drop the K highest-loss points first (Besiroglu et al. drop 5 of Epoch's 245)")
    p.add_argument("--epsilon", type=float, default=1.0, help="adjusted-Chinchilla weight for data-dependent laws")
    p.add_argument("--fit-epsilon", action="store_true", help="fit epsilon to all datasets' runs")
    p.add_argument("--regress", choices=["linear", "log"], default="linear",
                   help="data-dependent laws: regress each parameter on H linearly (the paper's form, default) or "
                        "log A and log B (log: A(H), B(H) stay > 0 across H; linear can go <= 0 inside the H range)")
    p.add_argument("--name", default="")
    p.add_argument("--allow-unidentified", action="store_true",
                   help="fit even when the runs cannot identify some parameters (too few distinct N or D, or D a "
                        "fixed multiple of N); the law then records which ones, and allocate warns")
    p.add_argument("--isoflop", action="store_true",
                   help="chinchilla: also run Approach 2 (see --law isoflop), N_opt ~ C^a, D_opt ~ C^b")
    p.add_argument("--budget-tol", type=float, default=0.05,
                   help="runs whose compute agrees within this relative tolerance share an IsoFLOP curve")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_fit)

    p = subparsers.add_parser("predict", help="predict from a fitted law of any kind",
                              description="Inputs by kind: chinchilla, data-dependent (+ --gzip), overtrain: "
                                          "--n-params --n-tokens; data-constrained: + --unique-tokens; error: --loss; "
                                          "qqt: --pool --n-seen; isoflop: --compute (gives N_opt, D_opt).")
    p.add_argument("--law", required=True, help="law JSON file")
    p.add_argument("--n-params", type=float, nargs="+", help="parameters N (one or more)")
    p.add_argument("--n-tokens", type=float, nargs="+", help="training tokens D (one or more)")
    p.add_argument("--unique-tokens", type=float, nargs="+", help="unique tokens U (data-constrained laws)")
    p.add_argument("--loss", type=float, nargs="+", help="loss (error laws)")
    p.add_argument("--pool", nargs="+", help="pool name(s) (qqt laws)")
    p.add_argument("--n-seen", type=float, nargs="+", help="samples seen (qqt laws)")
    p.add_argument("--compute", type=float, nargs="+", help="budget(s) in FLOPs (isoflop laws)")
    p.add_argument("--gzip", type=float, help="compressibility H (data-dependent laws)")
    p.add_argument("--epsilon", type=float, help="override the law's epsilon")
    p.add_argument("--level", type=float, default=0.95, help="interval level when the law has bootstrap samples")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser("allocate", help="compute-optimal N and D for a FLOP budget",
                              description="N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b. Without --law uses Hoffmann et "
                                          "al.'s published law; --gzip needs a data-dependent --law.")
    p.add_argument("--compute", type=float, nargs="+", required=True, help="budget(s) in FLOPs, e.g. 1e21")
    g = p.add_argument_group("law")
    g.add_argument("--law", help="law JSON file (default: Hoffmann et al. 2022 published constants)")
    g.add_argument("--gzip", type=float, help="compressibility H (needs a data-dependent --law)")
    p.add_argument("--epsilon", type=float, help="override the law's epsilon")
    p.add_argument("--level", type=float, default=0.95)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_allocate)

    p = subparsers.add_parser("plot", help="figures for a fitted law (PNG, headless)")
    p.add_argument("--law", required=True, help="law JSON file")
    p.add_argument("--points", help="runs file (.csv/.jsonl) for fit/residual and loss-vs-tokens figures")
    p.add_argument("--out-dir", required=True, help="directory for the PNG files")
    p.add_argument("--gzip", type=float, nargs="*", help="H values for the frontier figure")
    p.add_argument("--isoflop", action="store_true", help="also draw IsoFLOP curves from --points")
    p.add_argument("--budget-tol", type=float, default=0.05, help="IsoFLOP grouping tolerance (relative)")
    p.set_defaults(func=cmd_plot)


# ------------------------------------------------------------------ helpers
def _print(obj, fmt, table_rows=None):
    if fmt == "json":
        json.dump(obj, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    for row in table_rows or []:
        print(row)


def _table(header, rows, *, left=1) -> list:
    """Rows of cells as text lines: every column as wide as its widest cell, two spaces apart, so large
    numbers never run into their neighbours. The first ``left`` columns align left, the rest right."""
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    n_col = max(len(r) for r in cells)
    cells = [r + [""] * (n_col - len(r)) for r in cells]
    width = [max(len(r[j]) for r in cells) for j in range(n_col)]
    return ["  ".join(c.ljust(w) if j < left else c.rjust(w) for j, (c, w) in enumerate(zip(r, width))).rstrip()
            for r in cells]


def _warn_all(caught, messages=()) -> None:
    """Print caught warnings and extra messages as `warning: ...` lines on stderr."""
    for m in [str(w.message) for w in caught] + list(messages):
        print(f"warning: {m}", file=sys.stderr)


def _check_positive(name, values):
    for i, v in enumerate(values):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name}[{i}]={v!r} must be a positive finite number")


# ----------------------------------------------------------------- commands
def cmd_fit(args) -> int:
    import warnings

    from pygzlaw.laws.data_dependent import fit_data_dependent
    from pygzlaw.laws.family_law import isoflop_options, parse_fix
    from pygzlaw.laws.identify import FitWarning
    from pygzlaw.laws.io import read_points, save_law
    from pygzlaw.laws.law import ChinchillaLaw

    if args.bootstrap < 0:
        raise ValueError(f"--bootstrap={args.bootstrap} must be >= 0")
    fix = parse_fix(args.fix)
    if args.law != "chinchilla":
        return _fit_family(args, fix)
    iso_kw = isoflop_options(**_isoflop_flags(args), kind="isoflop" if args.isoflop else "chinchilla")
    if args.grid == "default":
        raise ValueError("--grid default applies to --law data-constrained; chinchilla: hoffmann or muennighoff")
    grid = args.grid or "hoffmann"
    if args.base:
        raise ValueError("--base applies to --law data-constrained")
    pts = read_points(args.points)
    if args.drop_highest_loss:
        pts = pts.drop_highest_loss(args.drop_highest_loss, flag="--drop-highest-loss")
    if pts.h is None and pts.dataset is not None and len(set(pts.dataset)) > 1:
        raise ValueError(f"{args.points}: has a dataset column ({len(set(pts.dataset))} datasets) but no H (gzip) "
                         "column; add H to fit a data-dependent law, or fit each dataset's file separately")
    if pts.h is None and args.regress != "linear":
        raise ValueError(f"--regress {args.regress} applies to data-dependent fits; {args.points} has no H (gzip) column")
    if pts.h is not None:
        if fix or args.tie:
            raise ValueError(f"{args.points}: --tie/--fix apply to a plain Chinchilla fit; this file has an H column "
                             "(a data-dependent fit)")
        groups = pts.groups()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FitWarning)
            law = fit_data_dependent(groups, grid=grid, huber_delta=args.huber_delta, epsilon=args.epsilon,
                                     fit_eps=args.fit_epsilon, n_boot=args.bootstrap, seed=args.seed,
                                     name=args.name, regress=args.regress)
        _warn_all(caught)
        law.meta = {"source": args.points}
        doc = law.to_json_dict()
        if law.bootstrap is not None:
            doc["bootstrap"] = {"n_boot": len(law.bootstrap)}  # stdout: summary, file: samples
        rows = [(f"data-dependent law from {len(groups)} datasets (H in [{law.h_range[0]:.4g}, "
                 f"{law.h_range[1]:.4g}]), epsilon={law.epsilon:.4g}, regress={law.regress}")]
        rows += _table(["dataset", "H", "E", "A", "B", "alpha", "beta"],
                       [[d["name"], f"{d['h']:.4g}", f"{d['params']['E']:.4g}", f"{d['params']['A']:.5g}",
                         f"{d['params']['B']:.5g}", f"{d['params']['alpha']:.4f}", f"{d['params']['beta']:.4f}"]
                        for d in law.datasets])
        rows += _table(["param", "scale", "slope", "intercept", "r", "p", "stderr"],
                       [[k, r.scale, f"{r.slope:.5g}", f"{r.intercept:.5g}", f"{r.r:.3f}", f"{r.p_value:.3g}",
                         f"{r.stderr:.4g}"] for k, r in law.regressions.items()], left=2)
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FitWarning)
            law = ChinchillaLaw.fit(pts.n_params, pts.n_tokens, pts.loss, grid=grid,
                                    huber_delta=args.huber_delta, n_boot=args.bootstrap, seed=args.seed,
                                    name=args.name, meta={"source": args.points},
                                    allow_unidentified=args.allow_unidentified, tie=args.tie, fix=fix or None)
        _warn_all(caught)
        doc = law.to_json_dict()
        if law.bootstrap is not None:
            doc = {**doc, "bootstrap": {"columns": doc["bootstrap"]["columns"],
                                        "n_boot": len(law.bootstrap)}}  # stdout: summary, file: samples
            doc["intervals"] = law.param_intervals()
        rows = [f"Chinchilla fit on {len(pts)} points ({grid} grid, {law.fit_info['n_starts']} starts, "
                f"objective {law.fit_info['objective']:.6g}, {law.fit_info['seconds']:.2f} s)"]
        at_bound = law.fit_info.get("at_bound", [])
        cells = []
        for k, v in law.params.to_dict().items():
            row = [f"  {k}", "=", f"{v:.6g}"]
            if law.bootstrap is not None:
                iv = doc["intervals"][k]
                row += [f"95% [{iv['lo']:.5g}, {iv['hi']:.5g}]", f"se {iv['se']:.3g}"]
            cells.append(row + (["(at its bound)"] if k in at_bound else []))
        rows += _table([], cells)[1:]
    if args.isoflop:
        from pygzlaw.laws.family_law import fit_isoflop_law

        iso = fit_isoflop_law(pts.n_params, pts.n_tokens, pts.loss, rel_tol=args.budget_tol,
                              method=args.isoflop_method, window=args.window, n_boot=args.bootstrap, seed=args.seed,
                              **iso_kw)
        doc = {**doc, "isoflop": {**iso.params, **iso.fit_info}}
        rows.append(f"IsoFLOP (Approach 2, {iso.fit_info['method']}): {len(iso.fit_info['budget_flops'])} budgets, "
                    f"N_opt ~ C^{iso.params['a']:.4f}, D_opt ~ C^{iso.params['b']:.4f} "
                    f"({len(iso.fit_info['skipped'])} budgets skipped)" + _snapped(iso.fit_info))
    if args.out:
        save_law(law, args.out)
        rows.append(f"wrote {args.out}")
    _print(doc, args.format, rows)
    return 0


def _summary_doc(law) -> dict:
    """The law's JSON with bootstrap samples summarised (stdout; the file keeps them) and intervals."""
    doc = law.to_json_dict()
    if law.bootstrap is not None:
        doc["bootstrap"] = {"columns": doc["bootstrap"]["columns"], "n_boot": len(law.bootstrap)}
        doc["intervals"] = law.param_intervals()
    return doc


def _isoflop_flags(args) -> dict:
    return {"min_points": args.min_points, "edge_margin": args.edge_margin, "budgets": args.budgets,
            "budget_tol_dex": args.budget_tol_dex, "recentre": args.recentre}


def _snapped(info) -> str:
    s = info.get("snap_to_budgets")
    return (f"; {s['n_runs_off_budgets']} runs further than {s['budget_tol_dex']} dex from the "
            f"{len(s['budgets'])} --budgets dropped" if s else "")


def _fit_family(args, fix) -> int:
    """pygzlaw fit --law overtrain|error|data-constrained|qqt|isoflop (library: family_law.fit_from_file)."""
    from pygzlaw.laws.family_law import fit_from_file
    from pygzlaw.laws.io import load_law, save_law

    for flag, given in (("--drop-highest-loss", args.drop_highest_loss), ("--isoflop", args.isoflop),
                        ("--fit-epsilon", args.fit_epsilon)):
        if given:
            raise ValueError(f"{flag} applies to --law chinchilla")
    base = None
    if args.base:
        if args.law != "data-constrained":
            raise ValueError("--base applies to --law data-constrained")
        base = load_law(args.base)
        if base.kind != "chinchilla":
            raise ValueError(f"--base {args.base}: kind {base.kind!r}; the base must be a Chinchilla law")
    law = fit_from_file(args.law, args.points, grid=args.grid, tie=args.tie, fix=fix, n_boot=args.bootstrap,
                        seed=args.seed, name=args.name, base=base, rel_tol=args.budget_tol,
                        method=args.isoflop_method, window=args.window,
                        allow_unidentified=args.allow_unidentified, huber_delta=args.huber_delta,
                        **_isoflop_flags(args))
    doc = _summary_doc(law)
    info = law.fit_info
    obj = info.get("objective", info.get("sse"))
    rows = [f"{args.law} fit on {info.get('n_points', '?')} points"
            + (f" (objective {obj:.7g})" if isinstance(obj, float) else "")]
    iv = doc.get("intervals", {})
    for k, v in law.params.items():
        if isinstance(v, list):                               # qqt pools
            rows += _table([], [[f"  pool {q['name']}", f"size {q['pool_size']:.4g}", f"b = {q['b']:.6g}",
                                 f"tau = {q['tau']:.6g}"] for q in v])[1:]
            continue
        rows += _table([], [[f"  {k}", "=", f"{v:.6g}"] + ([f"95% [{iv[k]['lo']:.5g}, {iv[k]['hi']:.5g}]"]
                                                           if k in iv else [])])[1:]
    if law.kind == "isoflop" and info.get("a_interval"):
        rows.append(f"  95% intervals: a {info['a_interval']}, b {info['b_interval']}")
    if law.kind == "isoflop":
        rows.append(f"  {len(info['budget_flops'])} budgets (min_points {info['min_points']}), "
                    f"{len(info['skipped'])} skipped" + _snapped(info))
    for w in info.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    if args.out:
        save_law(law, args.out)
        rows.append(f"wrote {args.out}")
    _print(doc, args.format, rows)
    return 0


def _load(path):
    from pygzlaw.laws.io import load_law

    return load_law(path)


def cmd_predict(args) -> int:
    import numpy as np

    law = _load(args.law)
    given = {"n_params": args.n_params, "n_tokens": args.n_tokens, "unique_tokens": args.unique_tokens,
             "loss": args.loss, "pool": args.pool, "n_seen": args.n_seen, "budget_flops": args.compute}
    if law.kind not in ("chinchilla", "data_dependent"):
        return _predict_family(law, given, args)
    extra = [k for k, v in given.items() if v is not None and k not in ("n_params", "n_tokens")]
    if extra or args.n_params is None or args.n_tokens is None:
        raise ValueError(f"{args.law} is a {law.kind} law: give --n-params and --n-tokens" + _do_not_apply(extra))
    n, d = args.n_params, args.n_tokens
    _check_positive("--n-params", n)
    _check_positive("--n-tokens", d)
    if len(n) != len(d) and 1 not in (len(n), len(d)):
        raise ValueError(f"--n-params has {len(n)} values and --n-tokens {len(d)}; give equal counts or one of either")
    from pygzlaw.laws.report import prediction_report

    n_arr, d_arr = np.broadcast_arrays(np.array(n, dtype=np.float64), np.array(d, dtype=np.float64))
    rep = prediction_report(law, n_arr, d_arr, h=args.gzip, epsilon=args.epsilon, level=args.level, h_name="--gzip")
    out = {"law": rep.pop("law"), "n_params": n_arr.tolist(), "n_tokens": d_arr.tolist(),
           **{k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in rep.items()}}
    iv = "lo" in out
    rows = _table(["N", "D", "loss"] + (["lo", "hi"] if iv else []),
                  [[f"{n_arr[i]:.4g}", f"{d_arr[i]:.4g}", f"{out['loss'][i]:.4f}"]
                   + ([f"{out['lo'][i]:.4f}", f"{out['hi'][i]:.4f}"] if iv else []) for i in range(n_arr.size)],
                  left=0)
    _warn_all((), out.get("warnings", []))
    _print(out, args.format, rows)
    return 0


_FLAG = {"budget_flops": "compute"}   # input name -> CLI flag name where they differ


def _flag(name) -> str:
    """Input name -> its predict flag: n_params -> --n-params, budget_flops -> --compute."""
    return "--" + _FLAG.get(name, name).replace("_", "-")


def _do_not_apply(extra) -> str:
    return f"; {', '.join(map(_flag, extra))} do not apply" if extra else ""


def _predict_family(law, given, args) -> int:
    """predict for FamilyLaw kinds: law.evaluate on the flags that name its inputs."""
    from pygzlaw.laws.family_law import KIND_INPUTS, KIND_OUTPUTS

    need = KIND_INPUTS[law.kind]
    flags = ", ".join(map(_flag, need))
    extra = [k for k, v in given.items() if v is not None and k not in need]
    missing = [k for k in need if given[k] is None]
    if extra or missing:
        raise ValueError(f"{args.law} is a {law.kind} law: give {flags}" + _do_not_apply(extra))
    for k in need:
        if k != "pool":
            _check_positive(_flag(k), given[k])
    if args.gzip is not None or args.epsilon is not None:
        raise ValueError(f"--gzip/--epsilon apply to data-dependent laws; {args.law} is a {law.kind} law")
    out = law.evaluate({k: given[k] for k in need}, level=args.level)
    outs = KIND_OUTPUTS[law.kind]
    iv = out.get("intervals", {})
    m = len(out[outs[0]])
    cols = list(need) + list(outs)
    rows = _table(cols + [f"{k} interval" for k in outs if k in iv],
                  [[f"{out[k][i]}" if k == "pool" else f"{out[k][i]:.5g}" for k in cols]
                   + [f"[{iv[k]['lo'][i]:.5g}, {iv[k]['hi'][i]:.5g}]" for k in outs if k in iv] for i in range(m)],
                  left=0)
    if "n_params" in need and "n_tokens" in need:
        from pygzlaw.laws.report import prediction_warnings

        _warn_all((), prediction_warnings(law, given["n_params"], given["n_tokens"]))
    _print(out, args.format, rows)
    return 0


def cmd_allocate(args) -> int:
    import numpy as np

    from pygzlaw.laws.allocate import allocate
    from pygzlaw.laws.forms import HOFFMANN_PARAMS

    _check_positive("--compute", args.compute)
    c = np.array(args.compute, dtype=np.float64)
    if args.law is None:
        if args.gzip is not None:
            raise ValueError(NO_DEFAULT_H_LAW)
        alloc = allocate(c, HOFFMANN_PARAMS)
        out = {"law": "hoffmann2022", **alloc.to_dict()}
    else:
        from pygzlaw.laws.report import allocation_report

        rep = allocation_report(_load(args.law), c, h=args.gzip, epsilon=args.epsilon,
                                level=args.level, h_name="--gzip")
        alloc = rep.pop("allocation")
        out = rep
        if "intervals" in out:
            out["intervals"] = {k: {"lo": lo.tolist(), "hi": hi.tolist()}
                                for k, (lo, hi) in out["intervals"].items()}
        out.update(alloc.to_dict())
    iv = out.get("intervals")
    head = ["C (FLOPs)", "N_opt", "D_opt", "D/N", "loss"]
    if iv:
        pct = f"{int(round(100 * out['level']))}%"
        head += [f"N_opt {pct}", f"D_opt {pct}", f"loss {pct}"]
    cells = []
    for i in range(c.size):
        r = [f"{c[i]:.4g}", f"{np.atleast_1d(alloc.n_params)[i]:.4g}", f"{np.atleast_1d(alloc.n_tokens)[i]:.4g}",
             f"{np.atleast_1d(alloc.tokens_per_param)[i]:.2f}", f"{np.atleast_1d(alloc.loss)[i]:.4f}"]
        if iv:
            r += [f"[{iv[k]['lo'][i]:.3g}, {iv[k]['hi'][i]:.3g}]" for k in ("n_params", "n_tokens", "loss")]
        cells.append(r)
    rows = [f"law: {out['law']}" + (f"  H={out['h']}" if "h" in out else "")] + _table(head, cells, left=0)
    for w in out.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    _print(out, args.format, rows)
    return 0


def cmd_plot(args) -> int:
    from pathlib import Path

    from pygzlaw.laws import plots
    from pygzlaw.laws.io import read_points

    law = _load(args.law)
    if law.kind not in ("chinchilla", "data_dependent"):
        raise ValueError(f"{args.law} is a {law.kind} law; plot draws chinchilla and data-dependent laws "
                         "(for IsoFLOP curves: --isoflop with --points)")
    out = Path(args.out_dir)
    written = []
    if law.kind == "data_dependent":
        written.append(plots.plot_frontier(law, out / "frontier.png", hs=args.gzip))
        written.append(plots.plot_params_vs_h(law, out / "params_vs_h.png"))
        if args.points:
            pts = read_points(args.points)
            for grp in pts.groups():
                safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in grp["name"])
                written.append(plots.plot_fit(law, grp["n_params"], grp["n_tokens"], grp["loss"],
                                              out / f"fit_{safe}.png", h=grp["h"]))
    else:
        written.append(plots.plot_frontier(law, out / "frontier.png"))
        if args.points:
            pts = read_points(args.points)
            written.append(plots.plot_fit(law, pts.n_params, pts.n_tokens, pts.loss, out / "fit.png"))
            written.append(plots.plot_loss_vs_tokens(law, pts.n_params, pts.n_tokens, pts.loss,
                                                     out / "loss_vs_tokens.png"))
            if args.isoflop:
                written.append(plots.plot_isoflop(pts.n_params, pts.n_tokens, pts.loss, out / "isoflop.png",
                                                  rel_tol=args.budget_tol))
    for w in written:
        print(w)
    return 0
