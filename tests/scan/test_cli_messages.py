"""Every `pygzlaw scan` / `pygzlaw score` error names the command line's own flag."""
import json

import pytest

from pygzlaw.cli import main


@pytest.fixture
def doc(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"text": "a few words of text, " * 10}) + "\n")
    return str(p)


@pytest.mark.parametrize("argv, flag", [
    (["--window-bytes", "0"], "--window-bytes"),
    (["--window-tokens", "-3"], "--window-tokens"),
    (["--window-tokens", "5"], "--window-tokens"),          # text inputs need --tokenizer
    (["--per-window"], "--per-window"),
    (["--level", "12"], "--level"),
    (["--threads", "0"], "--threads"),
    (["--batch-mb", "0"], "--batch-mb"),
    (["--tokenizer", "missing.json", "--window-tokens", "4"], "--tokenizer"),
    (["--shard", "2/2"], "--shard"),
    (["--format", "csv"], "format 'csv' is unknown"),
])
def test_scan_errors_name_the_flag(doc, capsys, argv, flag):
    try:
        code = main(["scan", doc, "--no-progress", *argv])
    except SystemExit as exc:  # argparse's own refusals exit 2
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert flag in err, err


@pytest.mark.parametrize("argv, flag", [(["--level", "10"], "--level"),
                                        (["--threads", "-2"], "--threads")])
def test_score_errors_name_the_flag(tmp_path, capsys, argv, flag):
    import numpy as np

    np.save(tmp_path / "t.npy", np.zeros((2, 4), dtype=np.int32))
    with pytest.raises(SystemExit) as exc:
        main(["score", str(tmp_path / "t.npy"), *argv])
    assert exc.value.code == 2 and flag in capsys.readouterr().err


def test_report_labels_scoring_mode_and_tails(doc, capsys):
    assert main(["scan", doc, "--window-bytes", "64", "--no-progress", "--mode", "fast"]) == 0
    out = capsys.readouterr().out
    assert "scores: fast mode, approximate" in out and "exact (zlib" not in out
    assert "not scored; --keep-tail scores them" in out
    assert main(["scan", doc, "--window-bytes", "64", "--no-progress", "--keep-tail"]) == 0
    out = capsys.readouterr().out
    assert "scores: exact (zlib level 9" in out and "scored as short windows" in out
