"""pygzlaw fit --law isoflop: the library's --min-points, --edge-margin and nominal budgets
(--budgets hoffmann|LIST, --budget-tol-dex, --recentre) from the command line."""
import json
import re

import numpy as np
import pytest

from pygzlaw.cli import main
from pygzlaw.laws.isoflop import HOFFMANN_ISOFLOP_BUDGETS

# Hoffmann et al. 2022's Approach 3 constants: the IsoFLOP optimum is N* = G (C/6)^a, a = beta/(alpha+beta)
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28
A_TRUE = BETA / (ALPHA + BETA)
G = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))


def _runs(budgets, *, offsets=np.linspace(-1.5, 1.5, 9), jitter_dex=0.0, shift_dex=0.0, seed=0):
    """(N, D, loss) on IsoFLOP curves of the Chinchilla law: at each budget, N at N* e^offset; each
    run's FLOPs are then moved by shift_dex plus uniform +-jitter_dex in log10 (FLOPs read off a figure)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in budgets:
        n_star = G * (c / 6) ** A_TRUE
        for u in offsets:
            n = n_star * np.exp(u)
            d = c / (6 * n)
            loss = E + A / n ** ALPHA + B / d ** BETA
            c_read = c * 10 ** (shift_dex + rng.uniform(-jitter_dex, jitter_dex))
            rows.append((float(n), float(c_read / (6 * n)), float(loss)))
    return rows


def _write(path, rows):
    path.write_text("N,D,loss\n" + "".join(f"{n!r},{d!r},{l!r}\n" for n, d, l in rows))
    return path


def _fit(path, *flags, capsys):
    assert main(["fit", str(path), "--law", "isoflop", "--format", "json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def test_budgets_hoffmann_snaps_figure_flops_and_drops_strays(tmp_path, capsys):
    rows = _runs(HOFFMANN_ISOFLOP_BUDGETS, jitter_dex=0.03, seed=1)
    rows += [(1e9, 2e20 / 6e9, 3.0), (2e9, 2e20 / 12e9, 2.9)]     # C = 2e20: 0.18 dex from any budget
    p = _write(tmp_path / "runs.csv", rows)
    # grouped by relative tolerance, the jittered FLOPs break the nine curves apart
    loose = _fit(p, capsys=capsys)
    assert len(loose["fit"]["budget_flops"]) + len(loose["fit"]["skipped"]) > 9
    doc = _fit(p, "--budgets", "hoffmann", capsys=capsys)
    info = doc["fit"]
    assert info["budget_flops"] == pytest.approx(list(HOFFMANN_ISOFLOP_BUDGETS)) and not info["skipped"]
    assert info["snap_to_budgets"] == {"budgets": list(HOFFMANN_ISOFLOP_BUDGETS), "budget_tol_dex": 0.05,
                                       "recentre": False, "n_runs_off_budgets": 2}
    assert info["n_points"] == 81
    assert doc["params"]["a"] == pytest.approx(A_TRUE, abs=0.01)
    # the same budgets as a list give the same law
    listed = _fit(p, "--budgets", ",".join(f"{c:g}" for c in HOFFMANN_ISOFLOP_BUDGETS), capsys=capsys)
    assert listed["params"] == doc["params"]


def test_recentre_keeps_curves_whose_flops_are_offset_as_a_whole(tmp_path, capsys):
    budgets = (1e19, 1e20, 1e21)
    p = _write(tmp_path / "runs.csv", _runs(budgets, jitter_dex=0.01, shift_dex=0.03, seed=2))
    nominal = _fit(p, "--budgets", "1e19,1e20,1e21", "--budget-tol-dex", "0.035", capsys=capsys)
    assert nominal["fit"]["snap_to_budgets"]["n_runs_off_budgets"] > 0
    centred = _fit(p, "--budgets", "1e19,1e20,1e21", "--budget-tol-dex", "0.035", "--recentre", capsys=capsys)
    assert centred["fit"]["snap_to_budgets"]["n_runs_off_budgets"] == 0
    assert centred["fit"]["snap_to_budgets"]["recentre"] is True and centred["fit"]["n_points"] == 27


def test_edge_margin_keeps_a_budget_whose_minimum_lies_past_its_runs(tmp_path, capsys):
    budgets = (1e19, 1e20, 1e21)
    rows = _runs(budgets[:2]) + _runs(budgets[2:], offsets=np.linspace(-2.5, -0.3, 9))
    p = _write(tmp_path / "runs.csv", rows)
    plain = _fit(p, capsys=capsys)
    assert [s["budget_flops"] for s in plain["fit"]["skipped"]] == pytest.approx([1e21])
    wide = _fit(p, "--edge-margin", "0.5", capsys=capsys)
    assert not wide["fit"]["skipped"] and wide["fit"]["edge_margin"] == 0.5
    assert wide["fit"]["budget_flops"] == pytest.approx(list(budgets))


def test_min_points_is_passed_and_recorded(tmp_path, capsys):
    p = _write(tmp_path / "runs.csv", _runs((1e19, 1e20, 1e21), offsets=np.linspace(-2, 2, 13)))
    default = _fit(p, "--window", "0.2", capsys=capsys)
    wide = _fit(p, "--window", "0.2", "--min-points", "11", capsys=capsys)
    assert default["fit"]["min_points"] == 5 and wide["fit"]["min_points"] == 11
    # 11 of 13 sizes in each window: a different parabola, hence (slightly) different optima
    assert wide["fit"]["n_opt"] != default["fit"]["n_opt"]


def test_chinchilla_isoflop_takes_the_same_flags(tmp_path, capsys):
    rows = _runs(HOFFMANN_ISOFLOP_BUDGETS, jitter_dex=0.03, seed=3)
    p = _write(tmp_path / "runs.csv", rows)
    assert main(["fit", str(p), "--isoflop", "--budgets", "hoffmann", "--min-points", "4", "--format",
                 "json"]) == 0
    iso = json.loads(capsys.readouterr().out)["isoflop"]
    assert iso["a"] == pytest.approx(A_TRUE, abs=0.01) and iso["min_points"] == 4
    assert iso["snap_to_budgets"]["n_runs_off_budgets"] == 0 and len(iso["budget_flops"]) == 9


@pytest.mark.parametrize("flags, message", [
    (["--law", "overtrain", "--min-points", "4"], "--min-points applies to --law isoflop"),
    (["--budgets", "hoffmann"], r"--budgets applies to --law isoflop \(or --law chinchilla with --isoflop\)"),
    (["--law", "isoflop", "--min-points", "2"], "--min-points 2: must be an integer >= 3"),
    (["--law", "isoflop", "--edge-margin", "-1"], "--edge-margin -1.0: must be a finite number >= 0"),
    (["--law", "isoflop", "--budgets", "1e19,lots"], "--budgets 'lots': expected FLOPs > 0"),
    (["--law", "isoflop", "--budgets", "1e19"], "--budgets: needs at least two distinct budgets"),
    (["--law", "isoflop", "--recentre"], "--recentre applies with --budgets"),
    (["--law", "isoflop", "--budget-tol-dex", "0.1"], "--budget-tol-dex applies with --budgets"),
    (["--law", "isoflop", "--budgets", "hoffmann", "--budget-tol-dex", "0.3"],
     r"--budget-tol-dex 0.3: tol_dex=0.3 must be in \(0, 0.1109\]"),
])
def test_bad_isoflop_flags_name_the_flag(tmp_path, capsys, flags, message):
    p = _write(tmp_path / "runs.csv", _runs((1e19, 1e20, 1e21)))
    assert main(["fit", str(p), *flags]) != 0
    assert re.search("pygzlaw fit: error: " + message, capsys.readouterr().err)


def test_no_run_near_the_budgets_says_so(tmp_path, capsys):
    p = _write(tmp_path / "runs.csv", _runs((2e19, 2e20, 2e21)))
    assert main(["fit", str(p), "--law", "isoflop", "--budgets", "1e19,1e20,1e21"]) != 0
    assert re.search(r"no run lies within budget_tol_dex=0.05 .* span C in \[2e\+19, 2e\+21\]",
                     capsys.readouterr().err)
