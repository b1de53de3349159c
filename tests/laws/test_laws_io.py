
import numpy as np
import pytest

from pygzlaw.laws.io import read_points


def test_csv_with_d(tmp_path):
    p = tmp_path / "runs.csv"
    p.write_text("N,D,loss\n1e8,2e9,3.1\n1e9,2e10,2.6\n")
    pts = read_points(p)
    np.testing.assert_array_equal(pts.n_params, [1e8, 1e9])
    np.testing.assert_array_equal(pts.n_tokens, [2e9, 2e10])
    assert pts.h is None and pts.dataset is None and pts.lines == [2, 3]


def test_csv_with_c_and_aliases(tmp_path):
    p = tmp_path / "runs.csv"
    p.write_text("n_params,budget_flops,Loss,gzip,dataset\n1e8,1.2e18,3.1,0.4,a\n1e9,1.2e20,2.6,0.4,a\n")
    pts = read_points(p)
    np.testing.assert_allclose(pts.n_tokens, [2e9, 2e10])
    assert pts.h.tolist() == [0.4, 0.4] and pts.dataset == ["a", "a"]
    (g,) = pts.groups()
    assert g["name"] == "a" and g["h"] == 0.4 and g["loss"].size == 2


def test_jsonl(tmp_path):
    p = tmp_path / "runs.jsonl"
    p.write_text('{"N": 1e8, "D": 2e9, "loss": 3.1}\n\n{"N": 1e9, "D": 2e10, "loss": 2.6}\n')
    pts = read_points(p)
    assert len(pts) == 2 and pts.lines == [1, 3]


@pytest.mark.parametrize("content, suffix, msg", [
    ("N,D,loss\n1e8,2e9,3.1\n1e9,-2e10,2.6\n", ".csv", r"runs.csv:3: D='-2e10' must be > 0"),
    ("N,D,loss\n1e8,2e9,abc\n", ".csv", r"runs.csv:2: loss='abc' is not a number"),
    ("N,D,loss\n1e8,2e9,nan\n", ".csv", r"runs.csv:2: loss='nan' is not finite"),
    ("N,loss\n1e8,3.0\n", ".csv", r"needs columns N .* found \['N', 'loss'\]"),
    ("N,D,C,loss\n1e8,2e9,1e30,3.1\n", ".csv", r"runs.csv:2: C=1e\+30 disagrees with 6\*N\*D"),
    ('{"N": 1e8, "D": 2e9, "loss": 3.1}\n{"N": 1e8,\n', ".jsonl", r"runs.jsonl:2: not valid JSON"),
    ('[1, 2]\n', ".jsonl", r"runs.jsonl:1: expected a JSON object per line"),
    ("", ".csv", r"empty file; expected a header row"),
    ("N,D,loss\n", ".csv", r"no data rows"),
    ("x", ".txt", r"unknown extension '.txt'; use .csv or .jsonl"),
])
def test_errors_name_file_and_line(tmp_path, content, suffix, msg):
    p = tmp_path / f"runs{suffix}"
    p.write_text(content)
    with pytest.raises(ValueError, match=msg):
        read_points(p)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such points file"):
        read_points(tmp_path / "nope.csv")


def test_dataset_with_two_h_values(tmp_path):
    p = tmp_path / "runs.csv"
    p.write_text("N,D,loss,H,dataset\n1e8,2e9,3.1,0.4,a\n1e9,2e10,2.6,0.5,a\n")
    with pytest.raises(ValueError, match="dataset 'a' has 2 different H values"):
        read_points(p).groups()

