"""NLTK PCFG interoperability: the text format and ``nltk.PCFG`` objects.

The research code renders its grammars in NLTK's PCFG text format and samples
them with the ``pcfg`` package (a subclass of ``nltk.grammar.PCFG``), so this
module reads and writes exactly that format::

    # pygzlaw: {"n_terminals": 20, "spec": [3, 20, 2, 2], "seed": 0}
    %start S
    N0 -> N1 '17' [0.42] | '5' [0.58]
    S -> N0 [0.3333333333333333] | ...

Terminals are quoted, nonterminals bare, each alternative ends in ``[p]``.
Probabilities are written as the shortest decimal that parses back to the same
float64 (positional, never exponent notation, because NLTK's reader only
accepts ``[\\d.]+``), so text → Grammar → text is exact. The ``# pygzlaw:``
comment carries what the format cannot (terminals no rule uses, spec, seed);
NLTK ignores it.
"""
from __future__ import annotations

import json
import math
import os
from typing import Sequence

import numpy as np
import regex

from pygzlaw.grammar.core import PROB_SUM_TOL, Grammar, GrammarSpec

__all__ = [
    "GrammarWarning", "to_nltk_text", "from_nltk_text", "save_nltk", "load_nltk",
    "to_nltk", "from_nltk", "to_pcfg_package", "format_prob",
]

_HEADER = "# pygzlaw:"
# Canonical integer terminals ("0".."T-1") keep their value as the terminal id when
# imported, as in the research code, unless the largest one is absurdly large.
_MAX_IMPLICIT_TERMINALS = 1 << 24


def format_prob(p: float) -> str:
    """Shortest positional decimal that parses back to exactly ``p`` (float64)."""
    return np.format_float_positional(float(p), unique=True, trim="-")


# ---------------------------------------------------------------------------
# Writing

def _quote_terminal(name: str, where: str) -> str:
    if "\n" in name or "\r" in name:
        raise ValueError(f"{where}: terminal {name!r} contains a line break; NLTK's text format "
                         "cannot hold it")
    if "'" not in name:
        return f"'{name}'"
    if '"' not in name:
        return f'"{name}"'
    raise ValueError(f"{where}: terminal {name!r} contains both quote characters; NLTK's text "
                     "format cannot hold it (use the JSON form)")


def _check_nonterminal_name(name: str, where: str) -> None:
    if not regex.fullmatch(_NT_PATTERN, name):
        raise ValueError(f"{where}: nonterminal name {name!r} is not valid in NLTK's text format "
                         r"(must match [\w/][\w/^<>-]*); rename it or use the JSON form")


def _default_terminal_names(n: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(n))


def to_nltk_text(grammar: Grammar, *, header: bool = True) -> str:
    """Render a grammar in NLTK's PCFG text format (one line per nonterminal).

    Args:
        grammar: the grammar to write.
        header: write the ``# pygzlaw:`` comment (terminal list, spec, seed) so
            that :func:`from_nltk_text` gives back an equal Grammar even when
            some terminals appear in no rule.

    Returns:
        The text, ending in a newline. ``nltk.PCFG.fromstring`` and
        ``pcfg.PCFG.fromstring`` read it directly.

    Raises:
        ValueError: a nonterminal name NLTK cannot parse, or a terminal name
            holding a line break or both quote characters.
    """
    for name in grammar.nonterminal_names:
        _check_nonterminal_name(name, "to_nltk_text")
    quoted = [_quote_terminal(t, "to_nltk_text") for t in grammar.terminal_names]
    lines = []
    if header:
        meta: dict = {}
        if grammar.terminal_names == _default_terminal_names(grammar.n_terminals):
            meta["n_terminals"] = grammar.n_terminals
        else:
            meta["terminals"] = list(grammar.terminal_names)
        if grammar.spec is not None:
            meta["spec"] = list(grammar.spec.as_tuple())
        if grammar.seed is not None:
            meta["seed"] = grammar.seed
        lines.append(f"{_HEADER} {json.dumps(meta)}")
    lines.append(f"%start {grammar.nonterminal_names[grammar.start]}")
    nt_names = grammar.nonterminal_names
    for i in range(grammar.n_nonterminals):
        alts = []
        for p, rhs in grammar.rules_of(i):
            syms = " ".join(quoted[s] if s >= 0 else nt_names[-s - 1] for s in rhs)
            alts.append(f"{syms} [{format_prob(p)}]")
        lines.append(f"{nt_names[i]} -> " + " | ".join(alts))
    return "\n".join(lines) + "\n"


def save_nltk(grammar: Grammar, path: str | os.PathLike) -> None:
    """Write :func:`to_nltk_text` to ``path`` atomically (temp file + os.replace)."""
    from pygzlaw.atomic import write_text

    write_text(path, to_nltk_text(grammar))


# ---------------------------------------------------------------------------
# Reading

class GrammarWarning(UserWarning):
    """A grammar file was read with a change NLTK makes silently (rescaled sums, zero rules)."""


# NLTK's PCFG text syntax (nltk.grammar.read_grammar, _read_production and
# standard_nonterm_parser, NLTK 3.10), matched token by token with the `regex` engine NLTK
# 3.10 uses, so \w, \d and \s mean what they mean there (Unicode properties). Each token
# eats the whitespace after it. Tested against nltk.PCFG.fromstring on a generated corpus
# (tests/grammar/test_nltk_differential.py).
_NT_PATTERN = r"[\w/][\w/^<>-]*"
# nltk.PCFG.EPSILON: NLTK accepts a nonterminal whose probabilities sum within this of 1
# (not imported: importing nltk costs ~1 s; a test checks the value).
NLTK_EPSILON = 0.01
_NT_RX = regex.compile(rf"({_NT_PATTERN})\s*")
_ARROW_RX = regex.compile(r"\s*->\s*")
# One alternative per token kind, tried in NLTK's order: probability, quoted terminal,
# disjunction, nonterminal.
_TOKEN_RX = regex.compile(rf"""(\[[\d.]+\])\s*|("[^"]*"|'[^']*')\s*|(\|)\s*|({_NT_PATTERN})\s*""")


class _Syntax(ValueError):
    """A line NLTK's reader refuses (message as specific as NLTK's own)."""


def _logical_lines(text: str):
    """(first line, last line, logical line, is_comment) as NLTK's reader joins them.

    Lines are split on "\n" only (U+2028 and friends are text inside a line) and stripped;
    a line that then starts with "#" is a comment, even when it ends in a backslash; any
    other line ending in a backslash continues on the next one."""
    pending, first = "", 0
    for lineno, raw in enumerate(text.split("\n"), start=1):
        if not pending:
            first = lineno
        line = pending + raw.strip()
        if line.startswith("#") or line == "":
            yield first, lineno, line, True
        elif line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
        else:
            pending = ""
            yield first, lineno, line, False


def _nonterminal(line: str, pos: int) -> tuple[str, int]:
    m = _NT_RX.match(line, pos)
    if m is None:
        raise _Syntax(f"expected a nonterminal, found {line[pos:pos + 40]!r}")
    return m.group(1), m.end()


def _parse_rule(line: str) -> tuple[str, list[tuple[list[tuple[bool, str]], float]]]:
    """One production line -> (lhs, [(rhs, p), ...]); a missing [p] is 0, as in NLTK."""
    lhs, pos = _nonterminal(line, 0)
    m = _ARROW_RX.match(line, pos)
    if m is None:
        raise _Syntax(f"expected '->' after {lhs!r}")
    pos = m.end()
    alts: list[tuple[list[tuple[bool, str]], float]] = [([], 0.0)]
    n = len(line)
    while pos < n:
        m = _TOKEN_RX.match(line, pos)
        if m is None:
            if line[pos] in "'\"":
                raise _Syntax(f"unterminated quoted terminal at column {pos + 1}")
            raise _Syntax(f"expected a nonterminal, found {line[pos:pos + 40]!r}")
        k = m.lastindex
        if k == 1:
            text = m.group(1)[1:-1]
            try:
                p = float(text)
            except ValueError:
                raise _Syntax(f"probability [{text}] is not a number") from None
            if p > 1.0:
                raise _Syntax(f"probability [{text}] of {lhs!r} is greater than 1")
            alts[-1] = (alts[-1][0], p)  # a second [p] replaces the first, as in NLTK
        elif k == 2:
            alts[-1][0].append((True, m.group(2)[1:-1]))
        elif k == 3:
            alts.append(([], 0.0))
        else:
            alts[-1][0].append((False, m.group(4)))
        pos = m.end()
    return lhs, alts


class _Rule:
    """One alternative as read: left-hand side, typed rhs, probability, where it was."""

    __slots__ = ("lhs", "rhs", "p", "line", "shown")

    def __init__(self, lhs, rhs, p, line, shown):
        self.lhs, self.rhs, self.p, self.line, self.shown = lhs, rhs, p, line, shown


def from_nltk_text(text: str, *, source: str = "<string>", renormalize: bool = False,
                   allow_unreachable: bool = True) -> Grammar:
    r"""Parse NLTK's PCFG text format into a Grammar: what ``nltk.PCFG.fromstring`` reads.

    The syntax is NLTK's, token for token: lines split on "\n" only (U+2028 inside a
    terminal is text), comments are lines starting with ``#`` (a trailing backslash does
    not continue them), other lines ending in ``\`` continue on the next, a missing
    ``[p]`` reads as 0, a symbol after ``[p]`` joins that alternative, and the last of
    two ``[p]`` counts. Probability sums are checked as ``nltk.PCFG`` does (within
    ``NLTK_EPSILON`` = 0.01 of 1); accepted sums off by more than 1e-6 are rescaled to 1
    with a :class:`GrammarWarning`, and zero-probability alternatives are dropped with
    one (neither changes what NLTK's samplers draw). What NLTK reads but pygzlaw cannot
    sample is refused with its line: empty right-hand sides, nonterminals without rules,
    and a terminal named like a nonterminal. Unreachable nonterminals are kept, as in
    NLTK (never sampled).

    The start symbol is the last ``%start`` directive's, else the first rule's left-hand
    side. Nonterminals are numbered in the order they first appear as a left-hand side.
    Terminal ids: the ``# pygzlaw:`` header's list when present; else, when every
    terminal is a non-negative integer such as ``'17'``, the integer itself (the
    research code's token ids); else first-seen order.

    Args:
        text: the grammar text (a leading byte-order mark is ignored).
        source: a file name or label for error messages.
        renormalize: also rescale sums that NLTK refuses (off by more than 0.01).
        allow_unreachable: False: refuse nonterminals the start symbol cannot reach.

    Raises:
        ValueError: naming ``source``, the line and what is wrong (syntax as NLTK
            refuses it, sums, epsilon rules, undefined nonterminals, the header).
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    meta: dict = {}
    start = None
    records: list[_Rule] = []
    lhs_line: dict[str, int] = {}
    used_line: dict[str, int] = {}
    for first, last, line, comment in _logical_lines(text):
        where = f"{source} line {first if first == last else f'{first}-{last}'}"
        if comment:
            if line.startswith(_HEADER):
                try:
                    m = json.loads(line[len(_HEADER):])
                    if not isinstance(m, dict):
                        raise ValueError("not an object")
                except ValueError as exc:
                    raise ValueError(f"{where}: malformed '{_HEADER}' header ({exc}); expected "
                                     "a JSON object") from None
                meta.update(m)
            continue
        try:
            if line[0] == "%":
                parts = line[1:].split(None, 1)
                if len(parts) != 2 or parts[0] != "start":
                    raise _Syntax("the only directive is '%start NAME'")
                name, end = _nonterminal(parts[1], 0)
                if end != len(parts[1]):
                    raise _Syntax(f"bad argument to %start: {parts[1]!r}")
                start = name
                continue
            lhs, alts = _parse_rule(line)
        except _Syntax as exc:
            raise ValueError(f"{where}: {exc} in {line!r}; NLTK's PCFG reader refuses this "
                             "line (rules look like N -> N1 'terminal' [0.4] | 'x' [0.6])") from None
        lhs_line.setdefault(lhs, first)
        for rhs, p in alts:
            for is_term, name in rhs:
                if not is_term:
                    used_line.setdefault(name, first)
            records.append(_Rule(lhs, rhs, p, where, None))
    if not records:
        raise ValueError(f"{source}: no rules found")
    if start is None:
        start = records[0].lhs
    for name, lineno in used_line.items():
        if name not in lhs_line:
            raise ValueError(f"{source} line {lineno}: nonterminal {name!r} is used but has no "
                             "rules, so no sentence can be sampled through it (quote it if it "
                             "is a terminal)")
    return _grammar_from_records(records, start, meta, source, renormalize=renormalize,
                                 allow_unreachable=allow_unreachable,
                                 fix="edit the probabilities on that line")


def _grammar_from_records(records: list[_Rule], start: str, meta: dict, source: str, *,
                          renormalize: bool, allow_unreachable: bool, fix: str,
                          terminals: Sequence[str] | None = None) -> Grammar:
    """Shared by text and nltk.PCFG input: NLTK's sum rule, zero and epsilon rules, ids."""
    import warnings

    rules: dict[str, list[tuple[list[tuple[bool, str]], float]]] = {}
    where: dict[str, str] = {}
    n_alt: dict[str, int] = {}
    seen_terms: list[str] = []
    seen_set: set[str] = set()
    for r in records:
        where.setdefault(r.lhs, r.line)
        alt = n_alt[r.lhs] = n_alt.get(r.lhs, 0) + 1
        rules.setdefault(r.lhs, [])
        for is_term, name in r.rhs:
            if is_term and name not in seen_set:
                seen_set.add(name)
                seen_terms.append(name)
        if not math.isfinite(r.p) or r.p < 0 or r.p > 1:
            raise ValueError(f"{r.line}: alternative {alt} of {r.lhs!r} has probability {r.p}; "
                             "probabilities must be in [0, 1]")
        if r.p == 0:
            warnings.warn(f"{r.line}: alternative {alt} of {r.lhs!r} has probability 0 (a missing "
                          "[p] reads as 0) and is never sampled; dropped", GrammarWarning,
                          stacklevel=3)
            continue
        if not r.rhs:
            raise ValueError(f"{r.line}: alternative {alt} of {r.lhs!r} has an empty right-hand "
                             "side; NLTK reads epsilon rules but pygzlaw cannot sample them")
        rules[r.lhs].append((r.rhs, r.p))
    if start not in rules:
        raise ValueError(f"{source}: start symbol {start!r} has no rules")
    clash = [t for t in seen_terms if t in rules]
    if clash:
        raise ValueError(f"{where[clash[0]]}: terminal {clash[0]!r} has the same name as the "
                         "nonterminal defined there; rename one of them")
    for lhs, alts in rules.items():
        total = math.fsum(p for _, p in alts)
        if abs(total - 1.0) <= PROB_SUM_TOL:
            continue
        accepted = (1 - NLTK_EPSILON) < total < (1 + NLTK_EPSILON)
        if not accepted and not renormalize:
            raise ValueError(f"{where[lhs]}: probabilities for {lhs!r} sum to {total:.9g}; NLTK "
                             f"accepts 1 ± {NLTK_EPSILON:g} ({fix}, or rescale every "
                             "nonterminal's to sum to 1: --renormalize on the command line, "
                             "renormalize=True from Python)")
        if total <= 0:
            raise ValueError(f"{where[lhs]}: probabilities for {lhs!r} sum to {total}")
        if accepted:
            warnings.warn(f"{where[lhs]}: probabilities for {lhs!r} sum to {total:.9g} (within "
                          f"NLTK's ± {NLTK_EPSILON:g}); rescaled to sum to 1", GrammarWarning,
                          stacklevel=3)
        rules[lhs] = [(rhs, p / total) for rhs, p in alts]
    if terminals is not None:
        terms = [str(t) for t in terminals]
        missing = [t for t in seen_terms if t not in set(terms)]
        if missing:
            raise ValueError(f"{source}: terminal {missing[0]!r} is not in `terminals`")
    else:
        terms = _terminal_list(meta, seen_terms, source)
    g = _build(rules, start, terms, source, meta=meta)
    if not allow_unreachable:
        bad = np.flatnonzero(~g.reachable())
        if bad.size:
            name = g.nonterminal_names[bad[0]]
            raise ValueError(f"{where[name]}: nonterminal {name!r} is unreachable from the start "
                             f"symbol {start!r} ({bad.size} unreachable in all); remove it")
    return g


def _terminal_list(meta: dict, seen: Sequence[str], source: str) -> list[str]:
    if "terminals" in meta:
        terms = [str(t) for t in meta["terminals"]]
    elif "n_terminals" in meta:
        n = meta["n_terminals"]
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"{source}: header n_terminals={n!r} must be an int >= 1")
        terms = list(_default_terminal_names(n))
    else:
        return _implicit_terminals(seen)
    known = set(terms)
    if len(known) != len(terms):
        raise ValueError(f"{source}: header lists a terminal twice")
    missing = [t for t in seen if t not in known]
    if missing:
        raise ValueError(f"{source}: terminal {missing[0]!r} is used in a rule but not in the "
                         f"header's terminal list ({len(terms)} terminals)")
    return terms


def _implicit_terminals(seen: Sequence[str]) -> list[str]:
    """Integer terminals keep their value as id (research code); others first-seen."""
    if seen and all(t.isdigit() and str(int(t)) == t for t in seen):
        top = max(int(t) for t in seen)
        if top < _MAX_IMPLICIT_TERMINALS:
            return list(_default_terminal_names(top + 1))
    return list(seen)


def _build(rules: dict[str, list[tuple[list[tuple[bool, str]], float]]], start: str,
           terminals: Sequence[str], source: str, meta: dict | None = None) -> Grammar:
    """Rules with typed symbols → Grammar (no name ambiguity between kinds)."""
    nt_index = {n: i for i, n in enumerate(rules)}
    t_index = {t: i for i, t in enumerate(terminals)}
    rule_offsets, probs, rhs_offsets, symbols = [0], [], [0], []
    for lhs, alts in rules.items():
        for rhs, p in alts:
            for is_term, name in rhs:
                symbols.append(t_index[name] if is_term else -nt_index[name] - 1)
            probs.append(p)
            rhs_offsets.append(len(symbols))
        rule_offsets.append(len(probs))
    spec = seed = None
    if meta:
        if meta.get("spec") is not None:
            try:
                spec = GrammarSpec(*[int(x) for x in meta["spec"]])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{source}: header spec={meta['spec']!r} is not four "
                                 f"positive ints ({exc})") from None
        if meta.get("seed") is not None:
            seed = int(meta["seed"])
    try:
        return Grammar(nonterminal_names=list(rules), terminal_names=list(terminals),
                       start=nt_index[start], rule_offsets=np.array(rule_offsets),
                       rule_probs=np.array(probs, dtype=np.float64),
                       rhs_offsets=np.array(rhs_offsets),
                       rhs_symbols=np.array(symbols, dtype=np.int32), spec=spec, seed=seed)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def load_nltk(path: str | os.PathLike, **kwargs) -> Grammar:
    """Read a grammar file in NLTK's PCFG text format (see :func:`from_nltk_text`).

    UTF-8 (a byte-order mark is ignored; ``\\r\\n`` line ends read as ``\\n``); other
    encodings are refused naming the line and byte (:func:`pygzlaw.textio.read_text`)."""
    from pygzlaw.textio import read_text

    return from_nltk_text(read_text(path), source=os.fspath(path), **kwargs)


# ---------------------------------------------------------------------------
# nltk.PCFG objects (pcfg.PCFG is a subclass)

def _productions(grammar: Grammar, production_cls, nonterminal_cls) -> list:
    nts = [nonterminal_cls(n) for n in grammar.nonterminal_names]
    terms = list(grammar.terminal_names)
    prods = []
    for i in range(grammar.n_nonterminals):
        for p, rhs in grammar.rules_of(i):
            prods.append(production_cls(nts[i], [terms[s] if s >= 0 else nts[-s - 1] for s in rhs],
                                        prob=p))
    return prods


def to_nltk(grammar: Grammar, cls=None):
    """Build an ``nltk.PCFG`` (or ``cls``, a subclass such as ``pcfg.PCFG``).

    Terminals become strings (their names, e.g. ``'17'``), nonterminals
    ``nltk.Nonterminal``; probabilities are the float64 values unchanged.
    Terminals that no rule uses are not representable in an ``nltk.PCFG``.
    """
    from nltk.grammar import PCFG, Nonterminal, ProbabilisticProduction

    cls = PCFG if cls is None else cls
    start = Nonterminal(grammar.nonterminal_names[grammar.start])
    # Left corners serve NLTK's chart parsers only; skip the O(rules^2) work.
    return cls(start, _productions(grammar, ProbabilisticProduction, Nonterminal),
               calculate_leftcorners=False)


def to_pcfg_package(grammar: Grammar):
    """Build a ``pcfg.PCFG`` (the research code's reference sampler) of the same grammar.

    ``to_pcfg_package(g).generate(n)`` yields sentences as space-joined
    terminal names; map names back with ``grammar.terminal_names``.
    """
    try:
        import pcfg
    except ImportError:
        raise ImportError("to_pcfg_package needs the 'pcfg' package (pip install pcfg==0.1.5)") from None
    return to_nltk(grammar, cls=pcfg.PCFG)


def from_nltk(obj, *, terminals: Sequence[str] | None = None, renormalize: bool = False,
              allow_unreachable: bool = True, source: str = "nltk.PCFG") -> Grammar:
    """Convert an ``nltk.PCFG`` (``pcfg.PCFG`` included) to a Grammar.

    Nonterminals are numbered in order of first appearance as a left-hand side
    in ``obj.productions()``; terminal ids as in :func:`from_nltk_text` unless
    ``terminals`` gives the full list in id order. Probabilities, zero-probability
    and epsilon rules are treated as in :func:`from_nltk_text`.

    Raises:
        TypeError: ``obj`` is not an NLTK probabilistic grammar.
        ValueError: probabilities not summing to 1 within NLTK's 0.01 (pass
            ``renormalize=True`` to rescale), epsilon rules, nonterminals without
            rules, unreachable nonterminals when ``allow_unreachable=False``.
    """
    from nltk.grammar import Nonterminal

    if not (hasattr(obj, "productions") and hasattr(obj, "start")):
        raise TypeError(f"from_nltk expects an nltk.PCFG, got {type(obj).__name__}")
    records = []
    for prod in obj.productions():
        if not hasattr(prod, "prob"):
            raise TypeError(f"{source}: production {prod} has no probability; from_nltk needs "
                            "an nltk.PCFG, not a CFG")
        rhs = [(False, str(s.symbol())) if isinstance(s, Nonterminal) else (True, str(s))
               for s in prod.rhs()]
        records.append(_Rule(str(prod.lhs().symbol()), rhs, float(prod.prob()), source, None))
    if not records:
        raise ValueError(f"{source}: no productions")
    defined = {r.lhs for r in records}
    for r in records:
        for is_term, name in r.rhs:
            if not is_term and name not in defined:
                raise ValueError(f"{source}: nonterminal {name!r} is used but has no rules")
    return _grammar_from_records(records, str(obj.start().symbol()), {}, source,
                                 renormalize=renormalize, allow_unreachable=allow_unreachable,
                                 fix="fix the productions' probabilities", terminals=terminals)
