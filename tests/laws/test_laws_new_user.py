"""Faults a new user hit with the laws CLI (follow-up to issues 12 and 13 case 08).

1. E driven to 0 underflowed exp(log E) and crashed the fit; now log E has a floor and the fit says
   "E driven to its bound". 2. fit, predict and a data-dependent allocate warned about nothing.
3. A, B regressed linearly on H went <= 0 inside the fitted H range; regress="log" and a message
   naming where the law is defined. 4. CLI tables glued large numbers together.
"""
import csv
import json
import math
import re
import warnings

import numpy as np
import pytest

from pygzlaw.cli import main
from pygzlaw.laws.data_dependent import (
    DataDependentLaw,
    fit_data_dependent,
    regress_params,
)
from pygzlaw.laws.fit import (
    E_ZERO_FRAC,
    bootstrap_chinchilla,
    fit_chinchilla,
    params_at_bound,
)
from pygzlaw.laws.forms import E_FLOOR, LOG_BOUNDS, ChinchillaParams, chinchilla_loss
from pygzlaw.laws.identify import FitWarning, identifiability_report
from pygzlaw.laws.io import law_from_dict, save_law
from pygzlaw.laws.law import ChinchillaLaw
from pygzlaw.laws.report import allocation_report, prediction_report

# The new user's runs: loss falling linearly, 3.0 -> 2.3, never flattening (so E wants to be <= 0).
LIN_N = np.arange(1000.0, 8001.0, 1000.0)
LIN_D = np.linspace(10000.0, 45000.0, 8)
LIN_L = np.linspace(3.0, 2.3, 8)


@pytest.fixture(scope="module")
def linear_csv(tmp_path_factory):
    p = tmp_path_factory.mktemp("lin") / "lin.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["N", "D", "loss"])
        w.writerows(zip(LIN_N, LIN_D, LIN_L))
    return p


# ------------------------------------------------------------------ 1. E to its bound
def test_from_log_clips_instead_of_underflowing():
    p = ChinchillaParams.from_log([800.0, -800.0, -184.0, 0.3, 0.4])   # exp(-184) = 1e-80, exp(800) = inf
    assert p.E == pytest.approx(E_FLOOR) and p.E > 0
    assert p.A == pytest.approx(math.exp(LOG_BOUNDS["A"][1])) and math.isfinite(p.A)
    assert p.B == pytest.approx(math.exp(LOG_BOUNDS["B"][0])) and p.B > 0
    q = ChinchillaParams.from_log([math.log(406.4), math.log(410.7), math.log(1.69), 0.34, 0.28])
    assert q.E == pytest.approx(1.69) and q.A == pytest.approx(406.4)       # inside the bounds: unchanged


def test_linear_loss_fit_drives_e_to_its_floor_and_says_so():
    with pytest.warns(FitWarning, match=r"E driven to its bound"):
        law = ChinchillaLaw.fit(LIN_N, LIN_D, LIN_L, grid="muennighoff", name="lin")
    assert law.params.E == pytest.approx(E_FLOOR)
    assert "E" in law.fit_info["at_bound"]
    rep = law.identifiability
    assert "E" in rep.at_bound and rep.verdict["E"] != "identified" and not rep.ok
    assert any(r.startswith("E driven to its bound") for r in rep.reasons)
    # the law still describes the runs (a power law through a straight line: within 5%)
    assert np.abs(np.log(law.predict(LIN_N, LIN_D) / LIN_L)).max() < 0.05
    # JSON round trip keeps the verdict
    again = law_from_dict(json.loads(json.dumps(law.to_json_dict())))
    assert again.identifiability.at_bound == rep.at_bound


def test_bootstrap_ends_stay_at_the_floor_not_underflowed():
    res = fit_chinchilla(LIN_N, LIN_D, LIN_L, grid="muennighoff")
    boot = bootstrap_chinchilla(LIN_N, LIN_D, LIN_L, res, n_boot=40, seed=3)
    ok = np.isfinite(boot).all(axis=1)
    assert ok.sum() >= 30
    assert (boot[ok, 0] >= E_FLOOR * (1 - 1e-12)).all()                      # never 1e-80 or 0
    assert (boot[ok, :3] > 0).all()


def test_params_at_bound_rule():
    x = [math.log(400.0), math.log(400.0), math.log(3.8e-14), 0.3, 0.3]
    assert params_at_bound(x, 2.3) == ("E",)
    x[2] = math.log(2.3 * E_ZERO_FRAC * 2)                                   # above the threshold
    assert params_at_bound(x, 2.3) == ()
    assert params_at_bound([-900.0, 1.0, 0.5, 0.3, 0.3], 2.3) == ("A",)
    assert params_at_bound([1.0, 1.0, -40.0, 0.3, 0.3], 2.3, fixed=("E",)) == ()
    rep = identifiability_report(LIN_N, LIN_D + np.arange(8) * 3e3, at_bound=("E",))
    assert rep.at_bound == ["E"] and rep.verdict["E"] == "weak"


def test_cli_fit_warns_about_e_without_bootstrap(linear_csv, tmp_path, capsys):
    out = tmp_path / "lin.json"
    assert main(["fit", str(linear_csv), "-o", str(out), "--grid", "muennighoff"]) == 0
    cap = capsys.readouterr()
    assert "warning:" in cap.err and "E driven to its bound" in cap.err
    assert "error" not in cap.err
    assert re.search(r"E\s+=\s+1e-08\s+\(at its bound\)", cap.out)
    doc = json.loads(out.read_text())
    assert doc["params"]["E"] == pytest.approx(E_FLOOR) and doc["fit"]["at_bound"][0] == "E"


# ------------------------------------------------------ 2. predict and allocate warn
def _law_with_range():
    return ChinchillaLaw(params=ChinchillaParams(E=1.8, A=480.0, B=2000.0, alpha=0.35, beta=0.37), name="r",
                         fit_info={"range": {"n_params": [1e3, 8e3], "n_tokens": [1e4, 4.5e4]}})


def test_prediction_report_warns_past_10x_of_n_and_d():
    law = _law_with_range()
    far = prediction_report(law, np.array([1e9]), np.array([2e10]))
    assert len(far["warnings"]) == 1
    w = far["warnings"][0]
    assert "N 1e+09 is 1.25e+05x the largest fitted (8e+03)" in w and "D 2e+10" in w
    near = prediction_report(law, np.array([5e4, 5e3]), np.array([3e5, 2e3]))   # 6.25x above, 5x below
    assert near["warnings"] == []
    below = prediction_report(law, np.array([50.0]), np.array([2e4]))
    assert "below the smallest fitted" in below["warnings"][0]


def test_cli_predict_prints_extrapolation_warning(tmp_path, capsys):
    p = tmp_path / "law.json"
    save_law(_law_with_range(), p)
    assert main(["predict", "--law", str(p), "--n-params", "1e9", "--n-tokens", "2e10"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "extrapolating far beyond the fitted runs" in err
    assert main(["predict", "--law", str(p), "--n-params", "4e3", "--n-tokens", "2e4"]) == 0
    assert capsys.readouterr().err == ""


def _dd_law(**kw):
    """A data-dependent law whose A, B span orders of magnitude across H (as real fits do)."""
    hs = [0.23, 0.37, 0.51]
    params = [ChinchillaParams(E=2.0 - 2 * h, A=math.exp(12 - 14 * h), B=math.exp(18 - 24 * h),
                               alpha=0.5 - 0.2 * h, beta=0.5 - 0.3 * h) for h in hs]
    records = [{"name": f"g{i}", "h": h, "params": q.to_dict(), "n_points": 9,
                "range": {"n_params": [3e3, 1.5e5], "n_tokens": [1.6e4, 2.6e5]}} for i, (h, q) in
               enumerate(zip(hs, params))]
    return DataDependentLaw(regressions=regress_params(hs, params, **kw), h_range=(0.23, 0.51), datasets=records,
                            name="dd")


def test_data_dependent_allocate_and_predict_warn():
    law = _dd_law(regress="log")
    rep = allocation_report(law, np.array([1e18]), h=0.45)
    assert any("N_opt" in w and "largest fitted" in w for w in rep["warnings"])
    rep = allocation_report(law, np.array([1e12]), h=0.6)
    assert any("--" not in w and "outside the fitted datasets' H range [0.23, 0.51]" in w for w in rep["warnings"])
    pr = prediction_report(law, np.array([1e9]), np.array([1e5]), h=0.4, h_name="--gzip")
    assert len(pr["warnings"]) == 1 and "N 1e+09" in pr["warnings"][0]
    pr = prediction_report(law, np.array([1e4]), np.array([1e5]), h=0.55, h_name="--gzip")
    assert pr["warnings"] == [("--gzip=0.55 is outside the fitted datasets' H range [0.23, 0.51]: the "
                               "regressions on H are extrapolated")]


# --------------------------------------------------------- 3. regress="log", domain
def test_linear_regression_goes_negative_inside_range_and_names_the_subrange():
    law = _dd_law()
    assert law.regress == "linear"
    lo, hi = law.domain()
    assert 0.23 < hi < 0.51 and lo == -math.inf
    b = law.regressions["B"]
    assert hi == pytest.approx(min(-b.intercept / b.slope, -law.regressions["A"].intercept
                                   / law.regressions["A"].slope))
    law.params_at(hi - 1e-3)                                                   # defined just inside
    with pytest.raises(ValueError, match=rf"<= 0 here.*defined \(E, A, B > 0\) only for H < {hi:.4g}.*"
                                         r"regress='log'"):
        law.params_at(0.5)                                                      # in the fitted range
    (w,) = law.domain_warnings()
    assert "not across the H range it was fitted on [0.23, 0.51]" in w


def test_log_regression_stays_positive_and_fits_the_points():
    law = _dd_law(regress="log")
    assert law.regress == "log" and law.domain() == (-math.inf, pytest.approx(1.0))   # E(H) = 2 - 2H
    assert law.domain_warnings() == []
    for d in law.datasets:                                                      # exact in log space
        p = law.params_at(d["h"])
        assert p.A == pytest.approx(d["params"]["A"], rel=1e-9) and p.B == pytest.approx(d["params"]["B"], rel=1e-9)
    assert law.params_at(0.5).B > 0 and law.params_at(0.45).B < law.params_at(0.3).B
    again = law_from_dict(json.loads(json.dumps(law.to_json_dict())))
    assert again.regressions["A"].scale == "log" and again.regressions["E"].scale == "linear"
    assert again.params_at(0.4) == law.params_at(0.4)
    with pytest.raises(ValueError, match=r"^E\(H=80\) = -158 <= 0 here.*only for H < 1; it was fitted"):
        law.params_at(80.0)                     # exp(log A) clipped, not 0: only E is named
    with pytest.raises(ValueError, match="regress='nope'"):
        regress_params([0.2, 0.3, 0.4], [law.params_at(0.3)] * 3, regress="nope")


@pytest.fixture(scope="module")
def spread_csv(tmp_path_factory):
    """Three datasets whose A and B span 10^2 / 10^3 across H (a line through them goes <= 0)."""
    rng = np.random.default_rng(0)
    p = tmp_path_factory.mktemp("spread") / "dd.csv"
    n = np.geomspace(3e3, 1.5e5, 6)
    d = np.geomspace(1.6e4, 2.6e5, 6)
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "H", "N", "D", "loss"])
        for i, h in enumerate((0.23, 0.37, 0.51)):
            q = ChinchillaParams(E=2.0 - 2 * h, A=math.exp(12 - 14 * h), B=math.exp(18 - 24 * h),
                                 alpha=0.9 - 0.4 * h, beta=0.9 - 0.4 * h)
            for nn in n:
                for dd in d:
                    w.writerow([f"g{i}", h, nn, dd, float(chinchilla_loss(nn, dd, q)) * math.exp(rng.normal(0, 1e-3))])
    return p


def test_fit_data_dependent_log_with_bootstrap(spread_csv):
    from pygzlaw.laws.io import read_points

    groups = read_points(spread_csv).groups()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        law = fit_data_dependent(groups, grid="muennighoff", regress="log", n_boot=20, seed=1)
    assert law.regress == "log" and law.fitted_range["n_params"] == [pytest.approx(3e3), pytest.approx(1.5e5)]
    lo, hi = law.predict_interval(np.array([1e4]), np.array([1e5]), 0.45)
    mid = law.predict(np.array([1e4]), np.array([1e5]), 0.45)
    assert lo[0] <= mid[0] <= hi[0] and hi[0] / lo[0] < 1.5


def test_cli_fit_regress_log_and_predict_in_range(spread_csv, tmp_path, capsys):
    lin, lg = tmp_path / "lin.json", tmp_path / "log.json"
    assert main(["fit", str(spread_csv), "-o", str(lin), "--grid", "muennighoff"]) == 0
    cap = capsys.readouterr()
    assert "regress=linear" in cap.out and "law is defined (E, A, B > 0) only for H <" in cap.err
    assert main(["predict", "--law", str(lin), "--n-params", "1e4", "--n-tokens", "1e5", "--gzip", "0.5"]) == 2
    assert "--regress log" in capsys.readouterr().err
    assert main(["fit", str(spread_csv), "-o", str(lg), "--grid", "muennighoff", "--regress", "log"]) == 0
    cap = capsys.readouterr()
    assert "regress=log" in cap.out and "law is defined" not in cap.err
    for h in ("0.45", "0.5"):
        assert main(["predict", "--law", str(lg), "--n-params", "1e4", "--n-tokens", "1e5", "--gzip", h,
                     "--format", "json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert 0.5 < out["loss"][0] < 5 and out["warnings"] == []
    assert main(["allocate", "--law", str(lg), "--gzip", "0.45", "--compute", "1e18"]) == 0
    assert "extrapolating far beyond the fitted runs" in capsys.readouterr().err
    assert main(["fit", str(spread_csv).replace("dd.csv", "nope.csv"), "--regress", "log"]) == 2


# ------------------------------------------------------------------- 4. tables
def _columns_ok(lines, n_cols):
    for line in lines:
        assert len(line.split()) == n_cols, line                   # no two numbers glued together
        assert "  " in line.strip() or n_cols == 1


def test_predict_table_keeps_columns_apart_for_large_numbers(tmp_path, capsys):
    law = ChinchillaLaw(params=ChinchillaParams(E=1e-3, A=1e12, B=1e12, alpha=0.3, beta=0.3), name="big")
    p = tmp_path / "big.json"
    save_law(law, p)
    assert main(["predict", "--law", str(p), "--n-params", "1.6437", "1e9", "--n-tokens", "1.037036e6", "1e10"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    _columns_ok(lines, 3)
    cells = lines[1].split()
    assert float(cells[0]) == pytest.approx(1.6437, rel=1e-3) and float(cells[2]) == pytest.approx(
        float(chinchilla_loss(1.6437, 1.037036e6, law.params)), rel=1e-4)


def test_allocate_and_fit_tables_aligned(tmp_path, capsys):
    law = ChinchillaLaw(params=ChinchillaParams(E=1e-3, A=1e9, B=1e9, alpha=0.05, beta=0.05), name="big")
    p = tmp_path / "big.json"
    save_law(law, p)
    assert main(["allocate", "--law", str(p), "--compute", "1e30", "1e12"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].split()[:2] == ["C", "(FLOPs)"]
    _columns_ok(lines[2:], 5)


def test_data_dependent_fit_summary_columns(spread_csv, capsys):
    assert main(["fit", str(spread_csv), "--grid", "muennighoff", "--regress", "log"]) == 0
    lines = capsys.readouterr().out.splitlines()
    i = next(j for j, s in enumerate(lines) if s.startswith("dataset"))
    _columns_ok(lines[i:i + 4], 7)
    k = next(j for j, s in enumerate(lines) if s.startswith("param"))
    _columns_ok(lines[k:k + 6], 7)
    widths = {len(s) for s in lines[k:k + 6]}
    assert len(widths) == 1                                          # right-aligned to one width


# ------------------------------------------------------------------- plots
def test_params_vs_h_masks_nonpositive_a_b_on_log_axes(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from pygzlaw.laws import plots

    seen = {}
    orig = plots._save

    def spy(fig, path):
        for ax in fig.axes:
            title = ax.get_title()
            if title.startswith(("A", "B")):
                y = ax.get_lines()[0].get_ydata()
                seen[title[0]] = (ax.get_yscale(), np.asarray(y, dtype=float), [t.get_text() for t in ax.texts])
        return orig(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    out = plots.plot_params_vs_h(_dd_law(), tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0 and out.endswith("p.png")
    scale, y, notes = seen["B"]
    assert scale == "log" and np.isnan(y).any() and (y[~np.isnan(y)] > 0).all()
    assert notes and "not drawn" in notes[0]
    plots.plot_params_vs_h(_dd_law(regress="log"), tmp_path / "q.png")
    scale, y, notes = seen["B"]
    assert not np.isnan(y).any() and notes == []


def test_service_predict_body_warns_like_the_cli():
    from types import SimpleNamespace

    from pygzlaw.serve.handlers import predict_body

    req = SimpleNamespace(n_params=[1e9, 4e3], n_tokens=[2e10, 2e4], h=None, epsilon=None, level=0.95)
    out = predict_body(_law_with_range(), req)
    assert len(out["warnings"]) == 1 and out["warnings"][0].startswith("N=1e+09, D=2e+10: extrapolating")
    req = SimpleNamespace(n_params=1e4, n_tokens=1e5, h=0.6, epsilon=None, level=0.95)
    out = predict_body(_dd_law(regress="log"), req)
    assert out["warnings"] == [("h=0.6 is outside the fitted datasets' H range [0.23, 0.51]: the regressions "
                                "on H are extrapolated")]
    many = prediction_report(_law_with_range(), np.full(25, 1e9), np.full(25, 1e4))["warnings"]
    assert len(many) == 11 and many[-1].startswith("... and 15 more points")


def test_regress_replicates_matches_the_fit_path():
    """The study builds its law from its own fits: regress_replicates(..., regress="log") must give what
    fit_data_dependent stores (replicates regressed in log space for A, B)."""
    from pygzlaw.laws import regress_replicates

    rng = np.random.default_rng(5)
    hs = np.array([0.23, 0.37, 0.51])
    base = np.array([[1.5, math.exp(12 - 14 * h), math.exp(18 - 24 * h), 0.4, 0.3] for h in hs])   # (3, 5)
    boots = base[:, None, :] * np.exp(rng.normal(0, 0.05, (3, 30, 5)))
    coef = regress_replicates(hs, boots, regress="log")
    assert coef.shape == (30, 5, 2)
    j = 2                                                                       # B, log-regressed
    slope = np.polyfit(hs, np.log(boots[:, 0, j]), 1)[0]
    assert coef[0, j, 0] == pytest.approx(slope, rel=1e-9)
    assert coef[0, 0, 0] == pytest.approx(np.polyfit(hs, boots[:, 0, 0], 1)[0], rel=1e-9)   # E linear
    lin = regress_replicates(hs, boots)
    assert lin[0, j, 0] == pytest.approx(np.polyfit(hs, boots[:, 0, j], 1)[0], rel=1e-9)
    with pytest.raises(ValueError, match="expected \\(n_datasets, n_boot, 5\\)"):
        regress_replicates(hs, boots[:, :, :4])
