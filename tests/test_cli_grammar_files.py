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


# ------------------------------------------------ --renormalize (sums off by more than NLTK's 0.01)
OFF = "S -> 'a' [0.3] | B [0.6]\nB -> 'b' [0.5] | 'c' [0.4]\n"      # S sums to 0.9, B to 0.9
RESCALED = "S -> 'a' [0.3333333333333333] | B [0.6666666666666666]\n" \
           "B -> 'b' [0.5555555555555556] | 'c' [0.4444444444444444]\n"


def _off(tmp_path, name="off.pcfg"):
    p = tmp_path / name
    p.write_text(OFF)
    return p


@pytest.mark.parametrize("verb", [["grammar", "show"], ["grammar", "analyze"],
                                  ["grammar", "export", "x.json"], ["generate", "--tokens", "1K"]])
def test_off_sums_are_refused_naming_renormalize(tmp_path, capsys, verb):
    p = _off(tmp_path)
    assert main([*verb, "--grammar", str(p)]) == 2
    err = capsys.readouterr().err
    assert f"{p} line 1: probabilities for 'S' sum to 0.9; NLTK accepts 1 ± 0.01" in err
    assert "--renormalize on the command line" in err


def test_renormalize_show_export_analyze(tmp_path, capsys):
    from pygzlaw.grammar import load

    p = _off(tmp_path)
    assert main(["grammar", "show", "--grammar", str(p), "--renormalize", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    want = load(tmp_path / _off(tmp_path, "want.pcfg").name, renormalize=True)
    assert want.rule_probs.tolist() == pytest.approx([1 / 3, 2 / 3, 5 / 9, 4 / 9], rel=1e-15)
    out = tmp_path / "fixed.pcfg"
    assert main(["grammar", "export", str(out), "--grammar", str(p), "--renormalize"]) == 0
    assert load(out) == want                                 # now loads without the flag
    nltk.PCFG.fromstring(out.read_text())                    # and NLTK accepts it
    ref = nltk.PCFG.fromstring(RESCALED)
    assert {(str(q.lhs()), q.rhs()): q.prob() for q in ref.productions()} == pytest.approx(
        {(str(q.lhs()), q.rhs()): q.prob() for q in nltk.PCFG.fromstring(out.read_text()).productions()},
        rel=1e-12)
    assert main(["grammar", "analyze", "--grammar", str(p), "--renormalize", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_rules"] == 4
    from pygzlaw.grammar import from_json

    assert from_json(json.dumps(doc)) == want                # what show printed is the rescaled grammar


def test_renormalize_generate_equals_the_rescaled_file(tmp_path, capsys):
    """generate --renormalize samples exactly what the rescaled grammar, saved and reloaded, gives."""
    from pygzlaw.grammar import load, save

    p = _off(tmp_path)
    save(load(p, renormalize=True), tmp_path / "fixed.json")
    for src, extra, out in ((p, ["--renormalize"], "a"), (tmp_path / "fixed.json", [], "b")):
        assert main(["generate", "--grammar", str(src), *extra, "--tokens", "4K", "--doc-tokens", "32",
                     "--shard-docs", "64", "--threads", "1", "--out", str(tmp_path / out), "--quiet"]) == 0
    capsys.readouterr()
    shards = sorted(f.name for f in (tmp_path / "a").iterdir() if f.suffix == ".npy")
    assert shards and shards == sorted(f.name for f in (tmp_path / "b").iterdir() if f.suffix == ".npy")
    for name in shards:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_renormalize_is_refused_where_it_does_not_apply(tmp_path, capsys):
    from pygzlaw.grammar import random_pcfg, save

    assert main(["grammar", "show", "--preset", "main-1", "--renormalize"]) == 2
    assert "--renormalize applies to --grammar FILE" in capsys.readouterr().err
    save(random_pcfg("main-1", 0), tmp_path / "g.json")
    assert main(["grammar", "show", "--grammar", str(tmp_path / "g.json"), "--renormalize"]) == 2
    assert "--renormalize applies to NLTK PCFG text (.txt, .cfg, .pcfg); a .json grammar's" in \
        capsys.readouterr().err


def test_train_renormalize_trains_on_and_records_the_rescaled_grammar(tmp_path, capsys):
    pytest.importorskip("torch")
    from pygzlaw.grammar import load

    p = _off(tmp_path)
    common = ["train", "--model", "w16", "--grammar", str(p), "--tokens", "128", "--batch-docs", "2",
              "--seq-len", "32", "--val-docs", "2", "--h-docs", "0", "--device", "cpu", "--threads", "1",
              "--quiet", "--json"]
    assert main(common) == 2
    err = capsys.readouterr().err
    assert "sum to 0.9; NLTK accepts 1 ± 0.01" in err and "--renormalize on the command line" in err
    out = tmp_path / "run"
    assert main([*common, "--renormalize", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    saved = out / "grammar-renormalized.json"
    assert load(saved) == load(p, renormalize=True)
    assert record["grammar"] == str(saved) and record["vocab_size"] >= 4
    assert f"{p} rescaled (--renormalize); training on {saved}" in captured.err
    assert main([*common[:3], "--grammar", "vocab300-3", *common[5:], "--renormalize"]) == 2
    assert "--renormalize applies to --grammar FILE" in capsys.readouterr().err
