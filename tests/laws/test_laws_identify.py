"""Identifiability of Chinchilla fits (issue 13, case 08): degenerate designs are refused or flagged,
and allocate warns when it extrapolates far beyond the fitted runs."""
import json

import numpy as np
import pytest
from lawsdata import REPO, TRUE_PARAMS, synthetic_runs

from pygzlaw.laws.forms import chinchilla_loss
from pygzlaw.laws.identify import FitWarning, IdentifiabilityReport, NotIdentifiableError, identifiability_report
from pygzlaw.laws.law import ChinchillaLaw
from pygzlaw.laws.report import allocation_report

CASES = REPO.parent / "shared" / "cases" / "new-user-2"


def _loss(n, d, seed=0):
    return chinchilla_loss(n, d, TRUE_PARAMS) * np.exp(np.random.default_rng(seed).normal(0, 0.002, np.size(n)))


def test_full_grid_is_identified():
    n, d, _ = synthetic_runs()
    rep = identifiability_report(n, d)
    assert rep.ok and rep.n_distinct_n == 8 and rep.n_distinct_d == 8 and rep.allocation == "identified"


@pytest.mark.parametrize("k_d", [1, 2])
def test_too_few_distinct_d(k_d):
    n = np.repeat(np.logspace(7, 9, 6), k_d)
    d = np.tile(np.logspace(9, 10, k_d), 6)
    rep = identifiability_report(n, d)
    assert rep.n_distinct_d == k_d
    assert rep.unidentified == ["E", "B", "beta"] and rep.allocation == "unidentified"
    assert "distinct D (n_tokens)" in rep.reasons[0]


def test_too_few_distinct_n():
    rep = identifiability_report(np.full(6, 1e8), np.logspace(9, 11, 6))
    assert rep.unidentified == ["E", "A", "alpha"]


@pytest.mark.parametrize("ratio", [20.0, 5.0])
def test_fixed_tokens_per_param_is_collinear(ratio):
    n = np.logspace(7, 10, 7)
    rep = identifiability_report(n, ratio * n)
    assert rep.unidentified == ["A", "B", "alpha", "beta"] and rep.verdict["E"] == "identified"
    assert rep.allocation == "unidentified" and "linear function of log N" in rep.reasons[0]


def test_power_law_d_of_n_is_collinear_too():
    n = np.logspace(7, 10, 7)
    rep = identifiability_report(n, 3.0 * n ** 1.2)       # log D affine in log N, slope != 1
    assert "alpha" in rep.unidentified


def test_near_collinear_is_weak():
    n = np.logspace(7, 10, 12)
    jitter = np.exp(np.random.default_rng(0).normal(0, 0.05, 12))
    rep = identifiability_report(n, 20 * n * jitter)
    assert not rep.unidentified and set(rep.weak) == {"A", "B", "alpha", "beta"} and rep.allocation == "weak"


def test_bootstrap_spread_marks_weak():
    n, d, _ = synthetic_runs()
    boot = np.tile([1.8, 480.0, 2000.0, 0.35, 0.37], (50, 1))
    boot[:, 2] = np.geomspace(100, 1e5, 50)                # B spans a factor 1000
    rep = identifiability_report(n, d, bootstrap=boot)
    assert rep.weak == ["B"] and rep.boot_spread["B"]["hi"] > 1e4
    with pytest.raises(ValueError, match=r"bootstrap has shape \(50, 4\)"):
        identifiability_report(n, d, bootstrap=boot[:, :4])


def test_report_round_trips_through_json():
    n = np.logspace(7, 10, 7)
    rep = identifiability_report(n, 20 * n)
    back = IdentifiabilityReport.from_dict(json.loads(json.dumps(rep.to_dict())))
    assert back.verdict == rep.verdict and back.unidentified == rep.unidentified


def test_fit_refuses_single_d_and_names_parameters():
    n = np.array([5.33e7, 6.39e7, 1.596e8, 2.065e8, 3.229e8, 4.817e8])
    d = np.full(6, 4.4e9)
    with pytest.raises(NotIdentifiableError, match=r"cannot identify E, B, beta: 1 distinct D.*--allow-unidentified"):
        ChinchillaLaw.fit(n, d, _loss(n, d), grid="muennighoff")


def test_fit_allowed_records_and_warns():
    n = np.logspace(7, 10, 7)
    d = 20 * n
    with pytest.warns(FitWarning, match=r"A \(unidentified\), B \(unidentified\)"):
        law = ChinchillaLaw.fit(n, d, _loss(n, d), grid="muennighoff", allow_unidentified=True)
    assert law.identifiability.allocation == "unidentified"
    assert law.fit_info["range"]["n_params"] == [1e7, 1e10]
    rep = allocation_report(law, np.array([1e19, 1e25]))
    assert any("cannot determine the compute-optimal split" in w for w in rep["warnings"])


def test_well_posed_fit_is_quiet(fitted):
    assert fitted.identifiability.ok


def test_allocate_warns_only_when_extrapolating_far(fitted):
    # fitted on N in [1e7, 1e10], D in [1e8, 1e12]
    near = allocation_report(fitted, np.array([1e20]))
    assert near["warnings"] == []
    far = allocation_report(fitted, np.array([1e20, 1e30]))
    assert len(far["warnings"]) == 1 and far["warnings"][0].startswith("C=1e+30: extrapolating far")
    assert "x the largest fitted" in far["warnings"][0]


def test_allocate_interval_uses_flops_per_token_param(fitted):
    a6 = fitted.allocate_interval(np.array([1e21]))
    a3 = fitted.allocate_interval(np.array([1e21]), flops_per_token_param=3.0)
    assert a3["n_params"][0][0] > a6["n_params"][0][0]       # C/3 > C/6: a bigger model
    with pytest.raises(ValueError, match="flops_per_token_param=0"):
        fitted.allocate_interval(np.array([1e21]), flops_per_token_param=0)


@pytest.mark.parametrize("name", ["08_single_D.csv", "08b_D_equals_20N.csv"])
def test_case_08_cli(name, tmp_path, capsys):
    path = CASES / name
    if not path.is_file():
        pytest.skip(f"case input absent: {path}")
    from pygzlaw.cli import main

    out = tmp_path / "law.json"
    assert main(["fit", str(path), "-o", str(out)]) != 0
    err = capsys.readouterr().err
    assert "cannot identify" in err and "--allow-unidentified" in err and not out.exists()
    assert main(["fit", str(path), "-o", str(out), "--allow-unidentified", "--grid", "muennighoff"]) == 0
    assert "warning:" in capsys.readouterr().err
    assert main(["allocate", "--law", str(out), "--compute", "1e23"]) == 0
    cap = capsys.readouterr()
    assert "cannot determine the compute-optimal split" in cap.err and "extrapolating far" in cap.err


def test_data_dependent_fit_reports_each_dataset():
    from pygzlaw.laws.data_dependent import fit_data_dependent

    n, d, _ = synthetic_runs()
    good = [{"name": f"grid{i}", "h": h, "n_params": n, "n_tokens": d, "loss": _loss(n, d, seed=i)}
            for i, h in enumerate((0.2, 0.3))]
    n2 = np.logspace(7, 10, 8)
    bad = {"name": "ratio20", "h": 0.5, "n_params": n2, "n_tokens": 20 * n2, "loss": _loss(n2, 20 * n2)}
    with pytest.warns(FitWarning, match=r"dataset 'ratio20' \(H=0.5\): A \(unidentified\)"):
        law = fit_data_dependent(good + [bad], grid="muennighoff")
    assert law.datasets[0]["identifiability"]["unidentified"] == []
    assert law.datasets[2]["identifiability"]["allocation"] == "unidentified"


def test_data_dependent_allocate_intervals_and_far_h_warning():
    from pygzlaw.laws.data_dependent import DataDependentLaw, regress_params
    from pygzlaw.laws.forms import ChinchillaParams

    hs = [0.2, 0.35, 0.5]
    ps = [ChinchillaParams(E=0.5 + 2 * h, A=300 - 200 * h, B=500 - 300 * h, alpha=0.45 - 0.3 * h, beta=0.25 + 0.1 * h)
          for h in hs]
    regs = regress_params(hs, ps)
    coef = np.array([[regs[k].slope, regs[k].intercept] for k in ("E", "A", "B", "alpha", "beta")])
    boot = coef[None] * np.exp(np.random.default_rng(0).normal(0, 0.01, size=(200, 5, 2)))
    law = DataDependentLaw(regressions=regs, h_range=(0.2, 0.5), bootstrap=boot, name="dd")
    c = np.array([1e20, 1e22])
    rep = allocation_report(law, c, h=0.3)
    a = rep["allocation"]
    for k in ("n_params", "n_tokens", "loss"):
        lo, hi = rep["intervals"][k]
        assert (lo <= getattr(a, k)).all() and (getattr(a, k) <= hi).all() and (lo < hi).all()
    assert rep["warnings"] == []
    far = allocation_report(law, c, h=0.9, h_name="--gzip")
    assert far["warnings"] and "--gzip=0.9 is far outside" in far["warnings"][0]


def test_prediction_report_one_rule_for_every_kind(fitted):
    from pygzlaw.laws.family_law import FamilyLaw
    from pygzlaw.laws.report import prediction_report

    rep = prediction_report(fitted, np.array([1e9, 2e9]), 2e10)
    assert rep["loss"].shape == (2,) and (rep["lo"] <= rep["loss"]).all() and (rep["loss"] <= rep["hi"]).all()
    with pytest.raises(ValueError, match="--gzip and epsilon apply to data-dependent laws"):
        prediction_report(fitted, 1e9, 2e10, h=0.4, h_name="--gzip")
    ot = FamilyLaw("overtrain", {"E": 1.9, "a": 150.0, "b": 700.0, "eta": 0.12}, name="ot")
    assert float(prediction_report(ot, 1e9, 2e10)["loss"]) == pytest.approx(ot.predict(n_params=1e9, n_tokens=2e10)[0])
    err = FamilyLaw("error", {"epsilon": 0.8, "k": 1.6, "gamma": 0.5}, name="err")
    with pytest.raises(ValueError, match="takes other inputs than \\(N, D\\)"):
        prediction_report(err, 1e9, 2e10)


def test_points_drop_highest_loss(tmp_path):
    from pygzlaw.laws.io import read_points

    p = tmp_path / "runs.csv"
    p.write_text("N,D,loss\n1e7,1e9,3.0\n2e7,1e9,5.0\n3e7,1e9,2.5\n4e7,1e9,4.0\n")
    pts = read_points(p).drop_highest_loss(2)
    assert pts.loss.tolist() == [3.0, 2.5] and pts.lines == [2, 4] and pts.n_params.tolist() == [1e7, 3e7]
    with pytest.raises(ValueError, match="--drop-highest-loss=4 must be in 1..3 for 4 points"):
        read_points(p).drop_highest_loss(4, flag="--drop-highest-loss")
