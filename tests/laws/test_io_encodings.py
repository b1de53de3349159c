"""Runs tables and law files as spreadsheets and editors save them (issue 13, case 07):
UTF-8 with a byte-order mark, CRLF line ends; other encodings refused naming line and byte."""
import json

import numpy as np
import pytest

from pygzlaw.laws.io import load_law, read_points
from pygzlaw.textio import decode_text

ROWS = [("1e7", "2e8", "4.10"), ("1e7", "1e9", "3.80"), ("1e8", "2e8", "3.70"),
        ("1e8", "1e9", "3.30"), ("1e9", "2e8", "3.50"), ("1e9", "1e9", "3.05"),
        ("1e9", "5e9", "2.80")]
BOM = b"\xef\xbb\xbf"


def _csv(eol: str) -> bytes:
    return ("N,D,loss" + eol + "".join(",".join(r) + eol for r in ROWS)).encode()


def _jsonl(eol: str) -> bytes:
    return "".join(json.dumps({"N": float(n), "D": float(d), "loss": float(l)}) + eol
                   for n, d, l in ROWS).encode()


@pytest.mark.parametrize("make, ext", [(_csv, "csv"), (_jsonl, "jsonl")])
@pytest.mark.parametrize("bom", [b"", BOM])
@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_runs_read_alike_whatever_the_bom_and_line_ends(tmp_path, make, ext, bom, eol):
    plain = tmp_path / f"plain.{ext}"
    plain.write_bytes(make("\n"))
    other = tmp_path / f"other.{ext}"
    other.write_bytes(bom + make(eol))
    a, b = read_points(plain), read_points(other)
    for k in ("n_params", "n_tokens", "loss"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert a.lines == b.lines and len(b) == len(ROWS)


def test_excel_csv_is_fitted_like_the_plain_one(tmp_path, capsys):
    """Case 07 as given: `pygzlaw fit` on the spreadsheet's file gives the plain file's law."""
    from pygzlaw.cli import main

    (tmp_path / "excel.csv").write_bytes(BOM + _csv("\r\n"))
    (tmp_path / "plain.csv").write_bytes(_csv("\n"))
    outs = []
    for name in ("excel.csv", "plain.csv"):
        assert main(["fit", str(tmp_path / name), "--grid", "muennighoff", "--format", "json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0]["params"] == outs[1]["params"]


def test_law_file_with_bom_and_crlf_loads(tmp_path):
    from pygzlaw.laws.forms import ChinchillaParams
    from pygzlaw.laws.io import save_law
    from pygzlaw.laws.law import ChinchillaLaw

    save_law(ChinchillaLaw(params=ChinchillaParams(E=1.7, A=400.0, B=410.0, alpha=0.34,
                                                   beta=0.28)), tmp_path / "a.json")
    raw = (tmp_path / "a.json").read_bytes()
    (tmp_path / "b.json").write_bytes(BOM + raw.replace(b"\n", b"\r\n"))
    assert load_law(tmp_path / "b.json").params == load_law(tmp_path / "a.json").params


@pytest.mark.parametrize("name, data, pattern", [
    ("latin1.csv", "N,D,loss\n1e7,2e8,4.1\n# caf\u00e9\n".encode("latin-1"),
     r"latin1\.csv line 3 column 6: byte 0xe9 is not valid UTF-8.*re-save it as UTF-8"),
    ("utf16.csv", "N,D,loss\n1e7,2e8,4.1\n".encode("utf-16"),
     r"utf16\.csv: the file is UTF-16LE .*re-save it as UTF-8"),
    ("cp1252.jsonl", b'{"N": 1e7, "D": 2e8, "loss": 4.1, "note": "\x93q\x94"}\n',
     r"cp1252\.jsonl line 1 column 44: byte 0x93"),
    ("law.json", b'{"format": "pygzlaw.law", "name": "\xff"}', r"law\.json line 1 column 36: byte 0xff"),
])
def test_other_encodings_are_refused_naming_line_byte_and_fix(tmp_path, name, data, pattern):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ValueError, match=pattern):
        (load_law if name.endswith(".json") else read_points)(tmp_path / name)


def test_decode_text_line_ends_and_bom():
    assert decode_text(BOM + b"a\r\nb\rc\n", "x") == "a\nb\nc\n"
    assert decode_text("\u2028 stays".encode(), "x") == "\u2028 stays"  # not a line end here
    assert decode_text(BOM, "x") == ""
