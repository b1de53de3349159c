import csv
import json

import numpy as np
import pytest
from lawsdata import TRUE_PARAMS, synthetic_runs

from pygzlaw.cli import main
from pygzlaw.laws.forms import ChinchillaParams, chinchilla_loss


@pytest.fixture(scope="module")
def points_csv(tmp_path_factory):
    n, d, loss = synthetic_runs()
    p = tmp_path_factory.mktemp("pts") / "runs.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["N", "C", "loss"])
        for row in zip(n, 6 * n * d, loss):
            w.writerow(row)
    return p


@pytest.fixture(scope="module")
def dd_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    p = tmp_path_factory.mktemp("dd") / "dd.csv"
    n = np.array([4.2e6, 8.8e6, 20.3e6, 59e6, 275.3e6, 1.39e9])
    d = np.array([1e5, 1e6, 5e6, 2e7, 5e7, 1e8])
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["N", "D", "loss", "H", "dataset"])
        for i, h in enumerate((0.2, 0.35, 0.5)):
            q = ChinchillaParams(E=0.5 + 2 * h, A=300 - 200 * h, B=500 - 300 * h, alpha=0.45 - 0.3 * h,
                                 beta=0.25 + 0.1 * h)
            for nn in n:
                for dd in d:
                    w.writerow([nn, dd, float(chinchilla_loss(nn, dd, q)) * np.exp(rng.normal(0, 0.001)), h, f"d{i}"])
    return p


@pytest.fixture(scope="module")
def law_file(points_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("law") / "synthetic.json"
    assert main(["fit", str(points_csv), "-o", str(out), "--grid", "muennighoff", "--bootstrap", "50"]) == 0
    return out


def test_fit_json_output(points_csv, capsys, tmp_path):
    rc = main(["fit", str(points_csv), "--grid", "muennighoff", "--format", "json", "-o", str(tmp_path / "l.json")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "chinchilla"
    assert out["params"]["alpha"] == pytest.approx(TRUE_PARAMS.alpha, rel=0.05)
    assert json.loads((tmp_path / "l.json").read_text())["params"] == out["params"]


def test_predict_table_and_json(law_file, capsys):
    assert main(["predict", "--law", str(law_file), "--n-params", "1e8", "1e9", "--n-tokens", "1e10"]) == 0
    table = capsys.readouterr().out
    assert "loss" in table and "lo" in table and len(table.strip().splitlines()) == 3
    assert main(["predict", "--law", str(law_file), "--n-params", "1e9", "--n-tokens", "1e10", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["lo"][0] <= out["loss"][0] <= out["hi"][0]
    assert out["loss"][0] == pytest.approx(float(chinchilla_loss(1e9, 1e10, TRUE_PARAMS)), rel=0.01)


def test_allocate_default_law_and_with_file(law_file, capsys):
    assert main(["allocate", "--compute", "5.76e23", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["law"] == "hoffmann2022" and 35e9 < out["n_params"][0] < 45e9
    assert main(["allocate", "--compute", "1e21", "--law", str(law_file), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["intervals"]["n_params"]["lo"][0] <= out["n_params"][0] <= out["intervals"]["n_params"]["hi"][0]


def test_allocate_gzip_without_law_explains(capsys):
    assert main(["allocate", "--compute", "1e21", "--gzip", "0.45"]) == 2
    err = capsys.readouterr().err
    assert "no published per-H coefficients" in err and "--law FILE" in err


def test_bad_values_exit_2(law_file, capsys):
    assert main(["allocate", "--compute", "-1"]) == 2
    assert "--compute[0]=-1.0 must be a positive finite number" in capsys.readouterr().err
    assert main(["predict", "--law", str(law_file), "--n-params", "1e8", "2e8", "--n-tokens", "1", "2", "3"]) == 2
    assert main(["fit", "/nonexistent/runs.csv"]) == 2


def test_data_dependent_fit_allocate_plot(dd_csv, tmp_path, capsys):
    law = tmp_path / "dd.json"
    assert main(["fit", str(dd_csv), "-o", str(law), "--grid", "muennighoff", "--bootstrap", "20"]) == 0
    text = capsys.readouterr().out
    assert "data-dependent law from 3 datasets" in text and "alpha" in text
    assert main(["predict", "--law", str(law), "--n-params", "1e8", "--n-tokens", "1e7", "--gzip", "0.3",
                 "--format", "json"]) == 0
    pred = json.loads(capsys.readouterr().out)
    assert pred["lo"][0] <= pred["loss"][0] <= pred["hi"][0]
    assert main(["allocate", "--compute", "1e21", "--gzip", "0.45", "--law", str(law), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["h"] == 0.45 and out["n_params"][0] > 0
    assert main(["allocate", "--compute", "1e21", "--law", str(law)]) == 2
    assert "is data-dependent; give --gzip (gzip compressibility H)" in capsys.readouterr().err
    assert main(["plot", "--law", str(law), "--points", str(dd_csv), "--out-dir", str(tmp_path / "figs")]) == 0
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert names == ["fit_d0.png", "fit_d1.png", "fit_d2.png", "frontier.png", "params_vs_h.png"]
    assert all((tmp_path / "figs" / n).read_bytes()[:4] == b"\x89PNG" for n in names)


def test_plot_chinchilla(law_file, points_csv, tmp_path, capsys):
    assert main(["plot", "--law", str(law_file), "--points", str(points_csv), "--out-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["fit.png", "frontier.png", "loss_vs_tokens.png"]


def test_isoflop_fit_and_plot(tmp_path, capsys):
    from pygzlaw.laws.allocate import compute_optimal

    rows = []
    for c in np.logspace(18, 21, 4):
        n_opt, _ = compute_optimal(c, TRUE_PARAMS)
        for n in n_opt * np.logspace(-0.5, 0.5, 7):
            rows.append((float(n), float(c / (6 * n)), float(chinchilla_loss(n, c / (6 * n), TRUE_PARAMS))))
    p = tmp_path / "iso.csv"
    p.write_text("N,D,loss\n" + "".join(f"{a!r},{b!r},{c!r}\n" for a, b, c in rows))
    law = tmp_path / "iso.json"
    assert main(["fit", str(p), "--grid", "muennighoff", "--isoflop", "--format", "json", "-o", str(law)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["isoflop"]["a"] == pytest.approx(TRUE_PARAMS.beta / (TRUE_PARAMS.alpha + TRUE_PARAMS.beta), abs=0.01)
    assert main(["plot", "--law", str(law), "--points", str(p), "--out-dir", str(tmp_path / "f"), "--isoflop"]) == 0
    assert (tmp_path / "f" / "isoflop.png").read_bytes()[:4] == b"\x89PNG"


def test_datasets_without_h_rejected(tmp_path, capsys):
    p = tmp_path / "mixed.csv"
    p.write_text("N,D,loss,dataset\n" + "".join(f"{1e8 * (i + 1)},{1e9},{3.0},d{i % 2}\n" for i in range(8)))
    assert main(["fit", str(p)]) == 2
    assert "has a dataset column (2 datasets) but no H" in capsys.readouterr().err
