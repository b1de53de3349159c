"""Bench: the vectorised multi-start Approach-3 fit against a per-start scipy loop.

Same data (Epoch's 245 points extracted from Hoffmann et al.'s Figure 4, or a synthetic
245-point set when ../shared/data is absent), same grid (Hoffmann's 4500 starts), same
objective (summed Huber, delta 1e-3, on log residuals). The baseline is the published
procedure: ``scipy.optimize.minimize(method="L-BFGS-B")`` once per start with scipy's default
tolerances, each call given the objective and its analytic gradient as a lean 1-D numpy function.

One core: BLAS threads are pinned to 1 before numpy loads. (With OpenBLAS's default threads
on this shared 2-core machine, scipy's L-BFGS-B spends ~0.7 ms per iteration spinning threads,
which would inflate the baseline ~20x.)

Both are timed ``runs`` times, interleaved round by round (bench/_harness.time_interleaved), and
the medians compared.

Usage: pygzlaw bench fit [--quick] [--json PATH]   (or python bench/bench_fit.py ...)
Summary: fit_seconds_4500, speedup_vs_loop, objective_ratio (ours / loop's best; <= 1 is equal or
better), bootstrap_1000_seconds.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the directory holding pygzlaw/ (a clone, or site-packages)

from pygzlaw.bench._harness import median, quantiles, time_interleaved, time_runs, write_json  # noqa: E402  (one BLAS thread; before numpy)

import numpy as np  # noqa: E402

from pygzlaw.laws.fit import bootstrap_chinchilla, fit_chinchilla, make_grid, scipy_loop_fit  # noqa: E402

# in a clone beside shared/; an installed package falls back to synthetic points
EPOCH_CSV = ROOT.parent / "shared" / "data" / "chinchilla-epoch2024" / "svg_extracted_data.csv"


def load_points():
    if EPOCH_CSV.is_file():
        from pygzlaw.laws.io import read_epoch_chinchilla

        return read_epoch_chinchilla(EPOCH_CSV, drop_highest_loss=0), "epoch2024 (245 points)"
    from pygzlaw.laws.forms import ChinchillaParams, chinchilla_loss

    rng = np.random.default_rng(0)
    n = 10 ** rng.uniform(7.5, 10.2, 245)
    d = 10 ** rng.uniform(9, 11.5, 245)
    p = ChinchillaParams(E=1.82, A=482.0, B=2085.0, alpha=0.348, beta=0.366)
    return (n, d, chinchilla_loss(n, d, p) * np.exp(rng.normal(0, 0.02, 245))), "synthetic (245 points)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats; the loop runs every 3rd start "
                                                         "(1500) and its time is scaled to 4500")
    ap.add_argument("--json", help="write the JSON document here")
    args = ap.parse_args(argv)

    (n, d, loss), source = load_points()
    runs = 2 if args.quick else 3
    rows = []

    # ours (4500 starts, batched) and the baseline (one scipy L-BFGS-B call per start), interleaved
    # round by round and timed the same number of times, so drift on this shared machine hits both.
    grid = make_grid("hoffmann")
    sub = grid[::3] if args.quick else grid
    results, loop_results = [], []
    times = time_interleaved({"ours": lambda: results.append(fit_chinchilla(n, d, loss, grid="hoffmann")),
                              "loop": lambda: loop_results.append(scipy_loop_fit(n, d, loss, grid=sub))},
                             runs=runs, warmup=0 if args.quick else 1)
    ours = results[-1]
    t_ours = median(times["ours"])
    rows.append({"name": "pygzlaw fit_chinchilla (4500 starts, batched)", "unit": "s", **quantiles(times["ours"]),
                 "objective": ours.objective, "params": ours.params.to_dict()})
    print(f"ours: {t_ours:.3f} s, objective {ours.objective:.12g}", file=sys.stderr)
    _, f_loop, _ = loop_results[-1]
    scale = grid.shape[0] / sub.shape[0]
    t_loop = median(times["loop"]) * scale
    rows.append({"name": "scipy L-BFGS-B per start", "unit": "s", "starts_run": int(sub.shape[0]),
                 **quantiles(times["loop"]), "seconds_4500": t_loop, "objective": f_loop})
    print(f"loop: {median(times['loop']):.2f} s for {sub.shape[0]} starts ({t_loop:.1f} s for 4500), "
          f"objective {f_loop:.12g}", file=sys.stderr)

    # 1000 bootstrap refits, warm-started from the full fit's best minima
    btimes = time_runs(lambda: bootstrap_chinchilla(n, d, loss, ours, n_boot=1000, seed=0),
                       runs=1 if args.quick else 3, warmup=0)
    rows.append({"name": "pygzlaw bootstrap_chinchilla (1000 refits)", "unit": "s", **quantiles(btimes)})
    print(f"bootstrap: {median(btimes):.2f} s", file=sys.stderr)

    summary = {"fit_seconds_4500": round(t_ours, 4), "speedup_vs_loop": round(t_loop / t_ours, 2),
               "objective_ratio": ours.objective / f_loop, "bootstrap_1000_seconds": round(median(btimes), 3)}
    write_json(args.json, {"bench": "fit", "data": source, "quick": args.quick,
                           "threads": os.environ.get("OPENBLAS_NUM_THREADS"), "summary": summary, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
