"""Grammar import/export: NLTK text, nltk.PCFG, pcfg.PCFG, JSON; errors on bad input."""
import json
import os

import nltk
import numpy as np
import pcfg
import pytest

from pygzlaw.grammar import (
    PRESETS,
    Grammar,
    from_json,
    from_nltk,
    from_nltk_text,
    load,
    random_pcfg,
    save,
    to_json,
    to_nltk,
    to_nltk_text,
    to_pcfg_package,
)
from pygzlaw.grammar.nltk_io import GrammarWarning, format_prob


def _same(a: Grammar, b: Grammar):
    assert a == b
    assert a.rule_probs.tobytes() == b.rule_probs.tobytes()  # bit-exact probabilities
    assert a.spec == b.spec and a.seed == b.seed


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_text_and_json_round_trip_exact(name):
    g = random_pcfg(name, 3)
    _same(from_nltk_text(to_nltk_text(g)), g)
    _same(from_json(to_json(g)), g)
    assert to_nltk_text(from_nltk_text(to_nltk_text(g))) == to_nltk_text(g)


@pytest.mark.parametrize("name", ["main-1", "main-3", "main-6", "neareq-4"])
def test_nltk_and_pcfg_objects_round_trip(name):
    g = random_pcfg(name, 11)
    for obj in (to_nltk(g), to_pcfg_package(g), nltk.PCFG.fromstring(to_nltk_text(g)),
                pcfg.PCFG.fromstring(to_nltk_text(g))):
        assert isinstance(obj, nltk.PCFG)
        back = from_nltk(obj, terminals=g.terminal_names)
        assert back == g
        assert back.rule_probs.tobytes() == g.rule_probs.tobytes()
    assert isinstance(to_pcfg_package(g), pcfg.PCFG)


def test_nltk_reads_our_text_with_same_probabilities():
    g = random_pcfg("main-4", 0)
    n = nltk.PCFG.fromstring(to_nltk_text(g))
    assert str(n.start()) == "S"
    probs = {(str(p.lhs()), tuple(str(s) for s in p.rhs())): p.prob() for p in n.productions()}
    for i, name in enumerate(g.nonterminal_names):
        for p, rhs in g.rules_of(i):
            assert probs[(name, tuple(g.symbol_name(s) for s in rhs))] == p


def test_tiny_probabilities_never_use_exponents():
    # NLTK's reader accepts only [\d.]+ inside brackets
    for p in [1e-5, 1 / 3, 2.5e-9, 1.0, 0.1]:
        s = format_prob(p)
        assert "e" not in s.lower() and float(s) == p


def test_pcfg_package_generates_from_our_grammar():
    import random

    g = random_pcfg("main-2", 0)
    random.seed(0)
    sents = list(to_pcfg_package(g).generate(50))
    assert len(sents) == 50
    assert all(w in g.terminal_names for s in sents for w in s.split())


HAND = """\
# a hand-written NLTK grammar: comments, two lines for one lhs, continuation, both quotes
S -> NP VP [1.0]
NP -> Det N [0.5] | 'John' [0.3]
NP -> "Mary's" [0.2]
VP -> V NP [0.7] \\
    | 'sleeps' [0.3]
Det -> 'the' [0.6] | 'a' [0.4]
N -> 'dog' [0.5] | 'cat' [0.5]
V -> 'saw' [1.0]
"""


def test_hand_written_grammar():
    g = from_nltk_text(HAND)
    assert g.nonterminal_names == ("S", "NP", "VP", "Det", "N", "V")
    assert g.nonterminal_names[g.start] == "S"
    assert g.terminal_names[:2] == ("John", "Mary's")  # first-seen order for word terminals
    assert [p for p, _ in g.rules_of(1)] == [0.5, 0.3, 0.2]
    assert from_nltk(nltk.PCFG.fromstring(HAND)) == g
    # our writer quotes Mary's with double quotes, and NLTK reads it back
    back = from_nltk(nltk.PCFG.fromstring(to_nltk_text(g)), terminals=g.terminal_names)
    assert back == g


def test_integer_terminals_keep_their_ids_without_header():
    # research-code grammar: terminal '7' is token 7 even if 0..6 are unused
    g = from_nltk_text("S -> '7' [0.5] | '2' S [0.5]\n")
    assert g.n_terminals == 8 and g.terminal_names == tuple(str(i) for i in range(8))
    assert g.rules_of(0) == [(0.5, [7]), (0.5, [2, -1])]


def test_unused_terminals_survive_via_header():
    g = random_pcfg("main-1", 0)
    used = np.unique(g.rhs_symbols[g.rhs_symbols >= 0]).size
    assert used < g.n_terminals  # the point of the header: some terminals appear in no rule
    assert from_nltk_text(to_nltk_text(g)).n_terminals == g.n_terminals
    assert from_nltk_text(to_nltk_text(g, header=False)).n_terminals < g.n_terminals


def test_start_directive_and_default_start():
    text = "A -> 'x' [1]\nS -> A [1]\n"
    g = from_nltk_text(text)  # start defaults to the first lhs, A; S is unreachable (NLTK keeps it)
    assert g.nonterminal_names[g.start] == "A" and not g.reachable()[1]
    with pytest.raises(ValueError, match=r"line 2: nonterminal 'S' is unreachable"):
        from_nltk_text(text, allow_unreachable=False)
    assert from_nltk_text("%start S\n" + text).nonterminal_names == ("A", "S")


# Every refusal names the file and line; syntax errors are NLTK's own reader's.
@pytest.mark.parametrize("text,pattern,nltk_refuses", [
    ("S -> 'a' [1]\nA 'b' [1]\n", r"g\.pcfg line 2: expected '->' after 'A' in \"A 'b' \[1\]\"", True),
    ("S -> 'a' [0.5] | 'b'\n", r"g\.pcfg line 1: probabilities for 'S' sum to 0.5; NLTK accepts", True),
    ("S -> 'a [1]\n", r"line 1: unterminated quoted terminal at column 6", True),
    ("S -> 'a' [abc]\n", r"line 1: expected a nonterminal, found '\[abc\]'", True),
    ("S -> 'a' [nan]\n", r"line 1: expected a nonterminal, found '\[nan\]'", True),
    ("S -> 'a' [0]\n", r"line 1: probabilities for 'S' sum to 0;", True),
    ("S -> 'a' [-0.5]\n", r"line 1: expected a nonterminal, found '\[-0.5\]'", True),
    ("S -> 'a' [1.5]\n", r"line 1: probability \[1.5\] of 'S' is greater than 1", True),
    ("S -> 'a' [0.5] | [0.5]\n", r"line 1: alternative 2 of 'S' has an empty right-hand side", False),
    ("S -> 'a' [1]\n%begin S\n", r"line 2: the only directive is '%start NAME'", True),
    ("S -> A [1]\n\n\nB -> 'x' [1]\nS2 -> A [1]\n", r"line 1: nonterminal 'A' is used but has no rules", False),
    ("S -> 'a' [0.6] | 'b' [0.3]\n", r"line 1: probabilities for 'S' sum to 0.9; NLTK accepts 1 ± 0.01", True),
    ("S -> 'a' [0.5] [0.5]\n", r"line 1: probabilities for 'S' sum to 0.5", True),
    ("# pygzlaw: [1, 2]\nS -> 'a' [1]\n", r"line 1: malformed '# pygzlaw:' header", False),
    ("# pygzlaw: {\"n_terminals\": 3}\nS -> '5' [1]\n", r"terminal '5' is used in a rule but not", False),
    ("S -> 'S' [1]\n", r"line 1: terminal 'S' has the same name as the nonterminal", False),
    ("S -> 'a' [0.5] \\\n | 'b' [0.5] ,\n", r"line 1-2: expected a nonterminal, found ','", True),
    ("", r"no rules found", True),
])
def test_text_errors_name_source_and_line(text, pattern, nltk_refuses):
    with pytest.raises(ValueError, match=pattern):
        from_nltk_text(text, source="g.pcfg")
    if nltk_refuses:  # else: NLTK reads it, but pygzlaw cannot sample it (or it is our header)
        with pytest.raises(ValueError):
            nltk.PCFG.fromstring(text)


def test_what_nltk_reads_oddly_we_read_the_same():
    # NLTK appends a symbol after [p] to the same alternative, and keeps the last of two [p]s.
    g = from_nltk_text("S -> 'a' [0.5] 'b' | 'c' [0.2] [0.5]\n")
    assert g.to_rules() == {"S": [(["a", "b"], 0.5), (["c"], 0.5)]}


def test_rounded_probabilities_nltk_accepts_are_rescaled_with_a_warning():
    text = "S -> 'a' [0.333] | 'b' [0.333] | 'c' [0.333]\n"
    with pytest.warns(GrammarWarning, match=r"g\.pcfg line 1: probabilities for 'S' sum to 0.999"):
        g = from_nltk_text(text, source="g.pcfg")
    np.testing.assert_allclose(g.rule_probs, [1 / 3] * 3, rtol=1e-15)
    n = nltk.PCFG.fromstring(text)  # NLTK accepts this grammar (tolerance 0.01), and so do we
    with pytest.warns(GrammarWarning):
        assert from_nltk(n) == g
    # Off by more than NLTK's 0.01: refused (as NLTK does) unless renormalize=True.
    with pytest.raises(ValueError, match="sum to 0.9; NLTK accepts"):
        from_nltk_text("S -> 'a' [0.3] | 'b' [0.6]\n")
    g2 = from_nltk_text("S -> 'a' [0.3] | 'b' [0.6]\n", renormalize=True)
    np.testing.assert_allclose(g2.rule_probs, [1 / 3, 2 / 3], rtol=1e-15)


def test_zero_probability_alternatives_are_dropped_with_a_warning():
    with pytest.warns(GrammarWarning, match="alternative 2 of 'S'.*probability 0"):
        g = from_nltk_text("S -> 'a' [1.0] | 'b' [0.0]\n")
    assert g.to_rules() == {"S": [(["a"], 1.0)]}
    assert g.terminal_names == ("a", "b")  # ids do not depend on the probabilities


def test_from_nltk_rejects_non_pcfg():
    with pytest.raises(TypeError, match="expects an nltk.PCFG"):
        from_nltk("S -> 'a' [1]")
    with pytest.raises(TypeError, match="no probability"):
        from_nltk(nltk.CFG.fromstring("S -> 'a'"))


def test_writer_rejects_names_nltk_cannot_hold():
    g = Grammar.from_rules({"my start": [(["x"], 1.0)]}, start="my start")
    with pytest.raises(ValueError, match="nonterminal name 'my start' is not valid"):
        to_nltk_text(g)
    g = Grammar.from_rules({"S": [(["it's \"x\""], 1.0)]}, start="S")
    with pytest.raises(ValueError, match="both quote characters"):
        to_nltk_text(g)
    assert from_json(to_json(g)) == g  # the JSON form holds any name


# -- JSON -------------------------------------------------------------------

def _json_dict(name="main-1"):
    return json.loads(to_json(random_pcfg(name, 0)))


def test_json_schema_fields():
    d = _json_dict()
    assert d["format"] == "pygzlaw-grammar" and d["version"] == 1
    assert d["start"] == "S" and d["nonterminals"][-1] == "S" and d["n_terminals"] == 20
    assert "terminals" not in d  # default names 0..T-1 are implied
    assert d["spec"] == {"n_nonterminals": 3, "n_terminals": 20, "rhs_max_options": 2,
                         "rhs_max_len": 2} and d["seed"] == 0
    assert d["rules"]["N0"][0] == {"p": 41 / 59, "rhs": [4]}


@pytest.mark.parametrize("mutate,pattern", [
    (lambda d: d.update(format="other"), r"format='other'"),
    (lambda d: d.update(version=2), r"version=2 was written by a newer pygzlaw"),
    (lambda d: d.pop("rules"), r"missing field 'rules'"),
    (lambda d: d["rules"]["N0"][0].update(p=float("nan")), r'rules\["N0"\]\[0\]\.p=nan'),
    (lambda d: d["rules"]["N0"][0].update(p=-0.1), r'rules\["N0"\]\[0\]\.p=-0.1'),
    (lambda d: d["rules"]["N0"][0].update(rhs=["N9"]), r"uses nonterminal 'N9', which has no rules"),
    (lambda d: d["rules"]["N0"][0].update(rhs=[20]), r"terminal index 20, outside \[0, 20\)"),
    (lambda d: d["rules"]["N0"][0].update(rhs=[]), r"rhs must be a non-empty list"),
    (lambda d: d["rules"]["N0"][0].update(p=0.5), r"probabilities for 'N0' sum to"),
    (lambda d: d["rules"]["S"].pop(), r"probabilities for 'S' sum to"),
    (lambda d: d.update(start="X"), r"start='X' is not in nonterminals"),
    (lambda d: d.update(n_terminals=0), r"n_terminals=0 must be an int >= 1"),
    (lambda d: d["spec"].update(rhs_max_len=0), r"rhs_max_len=0 must be >= 1"),
])
def test_json_errors(mutate, pattern):
    d = _json_dict()
    mutate(d)
    with pytest.raises(ValueError, match="g.json: .*" + pattern):
        from_json(json.dumps(d), source="g.json")


def test_json_unreachable_and_syntax():
    d = _json_dict()
    d["rules"]["S"] = [{"p": 1.0, "rhs": ["N0"]}]
    assert not from_json(json.dumps(d), source="g.json").reachable().all()  # kept, as NLTK does
    with pytest.raises(ValueError, match="'N1' is unreachable"):
        from_json(json.dumps(d), source="g.json", allow_unreachable=False)
    with pytest.raises(ValueError, match=r"g.json line 2: invalid JSON"):
        from_json('{\n "format": }', source="g.json")


# -- files ------------------------------------------------------------------

@pytest.mark.parametrize("ext", [".json", ".txt", ".cfg", ".pcfg"])
def test_save_load_by_extension(tmp_path, ext):
    g = random_pcfg("main-3", 5)
    path = tmp_path / f"g{ext}"
    save(g, path)
    text = path.read_text()
    assert text.startswith("{") == (ext == ".json")
    _same(load(path), g)
    assert os.listdir(tmp_path) == [f"g{ext}"]  # no temp files left behind


def test_save_is_atomic_and_unknown_extension(tmp_path):
    path = tmp_path / "g.pcfg"
    save(random_pcfg("main-1", 0), path)
    before = path.read_bytes()
    bad = Grammar.from_rules({"bad name": [(["x"], 1.0)]}, start="bad name")
    with pytest.raises(ValueError):
        save(bad, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["g.pcfg"]
    with pytest.raises(ValueError, match=r"g\.yaml: unknown grammar file extension"):
        save(random_pcfg("main-1", 0), tmp_path / "g.yaml")
    with pytest.raises(ValueError, match=r"line 1"):
        (tmp_path / "broken.txt").write_text("S -> 'a' [2]\n")
        load(tmp_path / "broken.txt")


def test_research_code_style_text():
    # The research code writes S first, no %start, no header; terminals are token ids.
    g = random_pcfg("main-6", 0)  # uses all 2000 terminals
    lines = to_nltk_text(g, header=False).splitlines()[1:]  # drop "%start S"
    text = "\n".join([lines[-1]] + lines[:-1]) + "\n"
    back = from_nltk_text(text)
    assert back.nonterminal_names[back.start] == "S" and back.nonterminal_names[0] == "S"
    assert back.terminal_names == g.terminal_names
    assert back.to_rules() == g.to_rules()


def test_json_names_with_lone_surrogates_are_refused_with_their_path():
    d = _json_dict()
    d["terminals"] = [f"t{i}" for i in range(d["n_terminals"])]
    d["terminals"][1] = "x\ud83dy"
    with pytest.raises(ValueError, match=r"g\.json: terminals\[1\]=.* unpaired UTF-16 surrogate"):
        from_json(json.dumps(d), source="g.json")


def test_grammar_files_with_bom_crlf_or_latin1(tmp_path):
    text = "S -> 'caf\u00e9' [0.5] | 'b' [0.5]\n"
    (tmp_path / "a.pcfg").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    assert load(tmp_path / "a.pcfg") == from_nltk_text(text)
    (tmp_path / "b.pcfg").write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match=r"b\.pcfg line 1 column 10: byte 0xe9 is not valid UTF-8"):
        load(tmp_path / "b.pcfg")
