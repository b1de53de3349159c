"""`pygzlaw grammar show --grammar FILE` on the grammar files of issue 13 (cases 02, 04, 05)."""
import json

import nltk
import pytest

from pygzlaw.cli import main

CASES = {
    "02_comment_backslash.pcfg": "# grammars live in C:\\grammars\\\nS -> 'a' [0.5] | 'b' [0.5]\n",
    "04_u2028_terminal.pcfg": "S -> 'a' [0.5] | 'x\u2028y' [0.5]\n",
    "05_rounded_probs.pcfg": "S -> 'x' [0.333] | 'y' [0.333] | 'z' [0.333]\n",
    "05b_unreachable.pcfg": "S -> 'a' [1.0]\nA -> 'a' [1.0]\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_grammars_show_like_nltk_reads_them(tmp_path, capsys, name):
    p = tmp_path / name
    p.write_text(CASES[name], encoding="utf-8")
    assert main(["grammar", "show", "--grammar", str(p)]) == 0
    out, err = capsys.readouterr()
    want = nltk.PCFG.fromstring(CASES[name])
    got = nltk.PCFG.fromstring(out)  # what we print, NLTK reads back
    assert sorted((str(q.lhs()), q.rhs()) for q in got.productions()) == \
        sorted((str(q.lhs()), q.rhs()) for q in want.productions())
    if name.startswith("05_"):
        assert err.startswith(f"pygzlaw grammar: warning: {p} line 1: probabilities for 'S' sum "
                              "to 0.999")
    else:
        assert err == ""


def test_grammar_written_by_pygzlaw_is_read_back(tmp_path, capsys):
    """Case 04: a terminal holding U+2028, saved by pygzlaw (JSON -> NLTK text) and loaded."""
    from pygzlaw.grammar import Grammar, load, save

    g = Grammar.from_rules({"S": [(["a"], 0.5), (["x\u2028y"], 0.5)]}, start="S")
    save(g, tmp_path / "g.json")
    save(load(tmp_path / "g.json"), tmp_path / "g.pcfg")
    assert load(tmp_path / "g.pcfg") == g
    assert main(["grammar", "show", "--grammar", str(tmp_path / "g.pcfg"), "--format",
                 "json"]) == 0
    assert json.loads(capsys.readouterr().out)["terminals"] == ["a", "x\u2028y"]


def test_grammar_errors_name_file_line_and_fix(tmp_path, capsys):
    p = tmp_path / "bad.pcfg"
    p.write_text("S -> 'a' [0.5] | B [0.4]\nB -> 'b' [1.0]\n")
    assert main(["grammar", "show", "--grammar", str(p)]) == 2
    err = capsys.readouterr().err
    assert f"{p} line 1: probabilities for 'S' sum to 0.9; NLTK accepts 1 ± 0.01 (edit the " \
           "probabilities on that line" in err
    p.write_bytes("S -> 'caf\u00e9' [1]\n".encode("latin-1"))
    assert main(["grammar", "show", "--grammar", str(p)]) == 2
    assert "line 1 column 10: byte 0xe9 is not valid UTF-8" in capsys.readouterr().err
