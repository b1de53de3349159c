"""The JSON form of a grammar, and ``save``/``load`` by file extension.

Schema (version 1)::

    {
      "format": "pygzlaw-grammar", "version": 1,
      "start": "S",
      "nonterminals": ["N0", "N1", "S"],
      "n_terminals": 20,
      "terminals": ["a", "b", ...],          # only when names are not "0".."T-1"
      "rules": {"N0": [{"p": 0.42, "rhs": ["N1", 17]}, {"p": 0.58, "rhs": [5]}], ...},
      "spec": {"n_nonterminals": 3, "n_terminals": 20, "rhs_max_options": 2,
               "rhs_max_len": 2},               # optional, with "seed"
      "seed": 0
    }

In an rhs a JSON string is a nonterminal name and a JSON integer a terminal
index in ``[0, n_terminals)``. Probabilities are JSON numbers written with
Python's repr, so the round trip is exact.
"""
from __future__ import annotations

import json
import math
import os
import re

import numpy as np

from pygzlaw.atomic import write_text
from pygzlaw.grammar.core import Grammar, GrammarSpec

_SURROGATE_RE = re.compile("[\ud800-\udfff]")
__all__ = ["FORMAT", "VERSION", "grammar_to_dict", "grammar_from_dict", "to_json", "from_json",
           "save", "load", "NLTK_EXTENSIONS", "JSON_EXTENSIONS"]

FORMAT = "pygzlaw-grammar"
VERSION = 1
JSON_EXTENSIONS = (".json",)
NLTK_EXTENSIONS = (".txt", ".cfg", ".pcfg")


def grammar_to_dict(grammar: Grammar) -> dict:
    """The JSON form (see module docstring) as a plain dict."""
    names = grammar.nonterminal_names
    rules = {}
    for i in range(grammar.n_nonterminals):
        rules[names[i]] = [{"p": p, "rhs": [int(s) if s >= 0 else names[-s - 1] for s in rhs]}
                           for p, rhs in grammar.rules_of(i)]
    d: dict = {"format": FORMAT, "version": VERSION, "start": names[grammar.start],
               "nonterminals": list(names), "n_terminals": grammar.n_terminals}
    if grammar.terminal_names != tuple(str(i) for i in range(grammar.n_terminals)):
        d["terminals"] = list(grammar.terminal_names)
    d["rules"] = rules
    if grammar.spec is not None:
        s = grammar.spec
        d["spec"] = {"n_nonterminals": s.n_nonterminals, "n_terminals": s.n_terminals,
                     "rhs_max_options": s.rhs_max_options, "rhs_max_len": s.rhs_max_len}
    if grammar.seed is not None:
        d["seed"] = grammar.seed
    return d


def grammar_from_dict(d: dict, *, source: str = "grammar JSON",
                      allow_unreachable: bool = True) -> Grammar:
    """Inverse of :func:`grammar_to_dict`, validating every field.

    Raises:
        ValueError: naming ``source`` and the JSON path of the bad field
            (``rules["N3"][1].p``, say): wrong format or newer version, missing
            fields, unknown nonterminals, terminal indices out of range,
            non-finite or non-positive probabilities, sums other than 1,
            unreachable nonterminals.
    """
    def fail(msg: str) -> ValueError:
        return ValueError(f"{source}: {msg}")

    if not isinstance(d, dict):
        raise fail(f"expected a JSON object, got {type(d).__name__}")
    if d.get("format") != FORMAT:
        raise fail(f"format={d.get('format')!r}; expected {FORMAT!r}")
    version = d.get("version")
    if not isinstance(version, int) or version < 1:
        raise fail(f"version={version!r} must be a positive int")
    if version > VERSION:
        raise fail(f"version={version} was written by a newer pygzlaw (this one reads up to "
                   f"{VERSION}); upgrade pygzlaw")
    for key in ("start", "nonterminals", "n_terminals", "rules"):
        if key not in d:
            raise fail(f"missing field {key!r}")
    names = d["nonterminals"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise fail("nonterminals must be a non-empty list of strings")
    if len(set(names)) != len(names):
        raise fail("nonterminals lists a name twice")
    nt_index = {n: i for i, n in enumerate(names)}
    n_terms = d["n_terminals"]
    if isinstance(n_terms, bool) or not isinstance(n_terms, int) or n_terms < 1:
        raise fail(f"n_terminals={n_terms!r} must be an int >= 1")
    terms = d.get("terminals")
    if terms is None:
        terms = [str(i) for i in range(n_terms)]
    elif not isinstance(terms, list) or len(terms) != n_terms:
        raise fail(f"terminals must be a list of n_terminals={n_terms} names")
    for field, values in (("nonterminals", names), ("terminals", terms)):
        for i, v in enumerate(values):
            # A JSON escape of half a surrogate pair ("\ud83d") is no Unicode text: no file
            # could hold it later (UTF-8 refuses it).
            if isinstance(v, str) and not v.isascii() and _SURROGATE_RE.search(v):
                raise fail(f"{field}[{i}]={v!r} holds an unpaired UTF-16 surrogate (a JSON "
                           "\\u escape without its other half); fix that name")
    if d["start"] not in nt_index:
        raise fail(f"start={d['start']!r} is not in nonterminals")
    rules = d["rules"]
    if not isinstance(rules, dict):
        raise fail("rules must be an object {nonterminal: [{p, rhs}, ...]}")
    extra = [k for k in rules if k not in nt_index]
    if extra:
        raise fail(f'rules["{extra[0]}"]: not listed in nonterminals')
    rule_offsets, probs, rhs_offsets, symbols = [0], [], [0], []
    for name in names:
        alts = rules.get(name)
        if not isinstance(alts, list) or not alts:
            raise fail(f'rules["{name}"]: nonterminal has no rules')
        total = 0.0
        for j, alt in enumerate(alts):
            where = f'rules["{name}"][{j}]'
            if not isinstance(alt, dict) or "p" not in alt or "rhs" not in alt:
                raise fail(f"{where}: expected {{\"p\": prob, \"rhs\": [...]}}")
            p = alt["p"]
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p <= 0:
                raise fail(f"{where}.p={p!r}; probabilities must be finite and > 0")
            rhs = alt["rhs"]
            if not isinstance(rhs, list) or not rhs:
                raise fail(f"{where}.rhs must be a non-empty list (epsilon rules are not supported)")
            for s in rhs:
                if isinstance(s, str):
                    if s not in nt_index:
                        raise fail(f"{where}.rhs uses nonterminal {s!r}, which has no rules")
                    symbols.append(-nt_index[s] - 1)
                elif isinstance(s, int) and not isinstance(s, bool):
                    if not 0 <= s < n_terms:
                        raise fail(f"{where}.rhs has terminal index {s}, outside [0, {n_terms})")
                    symbols.append(s)
                else:
                    raise fail(f"{where}.rhs element {s!r} must be a nonterminal name (string) "
                               "or a terminal index (int)")
            probs.append(float(p))
            total += float(p)
            rhs_offsets.append(len(symbols))
        rule_offsets.append(len(probs))
    spec = None
    if d.get("spec") is not None:
        try:
            spec = GrammarSpec(**d["spec"])
        except (TypeError, ValueError) as exc:
            raise fail(f"spec={d['spec']!r}: {exc}") from None
    seed = d.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise fail(f"seed={seed!r} must be an int")
    try:
        g = Grammar(nonterminal_names=names, terminal_names=terms, start=nt_index[d["start"]],
                    rule_offsets=np.array(rule_offsets), rule_probs=np.array(probs, dtype=np.float64),
                    rhs_offsets=np.array(rhs_offsets), rhs_symbols=np.array(symbols, dtype=np.int32),
                    spec=spec, seed=seed)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if not allow_unreachable:
        bad = np.flatnonzero(~g.reachable())
        if bad.size:
            raise fail(f"nonterminal {names[bad[0]]!r} is unreachable from {d['start']!r} "
                       f"({bad.size} in all); remove it")
    return g


def to_json(grammar: Grammar, *, indent: int | None = 1) -> str:
    """The JSON form as text (floats in repr precision: exact round trip)."""
    return json.dumps(grammar_to_dict(grammar), indent=indent, allow_nan=False) + "\n"


def from_json(text: str, *, source: str = "<string>", **kwargs) -> Grammar:
    """Parse the JSON form; errors name ``source`` (and the JSON line on syntax errors)."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} line {exc.lineno}: invalid JSON ({exc.msg})") from None
    return grammar_from_dict(d, source=source, **kwargs)


def _kind(path: str) -> str:
    low = path.lower()
    if low.endswith(JSON_EXTENSIONS):
        return "json"
    if low.endswith(NLTK_EXTENSIONS):
        return "nltk"
    raise ValueError(f"{path}: unknown grammar file extension; use one of "
                     f"{', '.join(JSON_EXTENSIONS + NLTK_EXTENSIONS)} (.json = pygzlaw JSON, "
                     "the others = NLTK PCFG text)")


def save(grammar: Grammar, path: str | os.PathLike) -> None:
    """Write a grammar atomically; the format follows the extension.

    ``.json`` → the JSON form; ``.txt``, ``.cfg``, ``.pcfg`` → NLTK PCFG text.
    """
    from pygzlaw.grammar.nltk_io import to_nltk_text

    path = os.fspath(path)
    text = to_json(grammar) if _kind(path) == "json" else to_nltk_text(grammar)
    write_text(path, text)


def load(path: str | os.PathLike, **kwargs) -> Grammar:
    """Read a grammar written by :func:`save`, the research code or NLTK.

    Keyword arguments go to :func:`from_json` or
    :func:`pygzlaw.grammar.nltk_io.from_nltk_text` (``allow_unreachable``, default True:
    unreachable nonterminals are kept, as NLTK keeps them; ``renormalize`` for text only).
    """
    from pygzlaw.grammar.nltk_io import from_nltk_text

    from pygzlaw.textio import read_text

    path = os.fspath(path)
    kind = _kind(path)
    text = read_text(path)  # UTF-8, BOM dropped; other encodings refused naming line and byte
    if kind == "json":
        return from_json(text, source=path, **kwargs)
    return from_nltk_text(text, source=path, **kwargs)
