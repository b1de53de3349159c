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
import re
from typing import Iterable, Sequence

import numpy as np

from pygzlaw.grammar.core import PROB_SUM_TOL, Grammar, GrammarSpec

__all__ = [
    "to_nltk_text", "from_nltk_text", "save_nltk", "load_nltk",
    "to_nltk", "from_nltk", "to_pcfg_package", "format_prob",
]

# NLTK's nonterminal syntax (nltk.grammar._STANDARD_NONTERM_RE).
_NONTERM_RE = re.compile(r"[\w/][\w/^<>-]*")
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
    if not _NONTERM_RE.fullmatch(name):
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

class _Parsed:
    """Rules collected from text, with the line each nonterminal was first defined on."""

    def __init__(self) -> None:
        self.rules: dict[str, list[tuple[list[tuple[bool, str]], float]]] = {}
        self.lhs_line: dict[str, int] = {}
        self.used_line: dict[str, int] = {}  # first line using each nonterminal in an rhs
        self.terminal_order: list[str] = []
        self._terminal_seen: set[str] = set()
        self.start: str | None = None
        self.meta: dict = {}


_PROB_RE = re.compile(r"\[([^\]]*)\]")
_TERM_RE = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_ARROW_RE = re.compile(r"\s*->\s*")


def _parse_line(line: str, lineno: int, source: str, out: _Parsed) -> None:
    where = f"{source} line {lineno}"
    m = _NONTERM_RE.match(line)
    if not m:
        raise ValueError(f"{where}: expected a nonterminal name at the start of the rule, "
                         f"found {line[:40]!r}")
    lhs = m.group(0)
    pos = m.end()
    m = _ARROW_RE.match(line, pos)
    if not m:
        raise ValueError(f"{where}: expected '->' after {lhs!r}, found {line[pos:pos + 20]!r}")
    pos = m.end()
    alts: list[tuple[list[tuple[bool, str]], float]] = []
    rhs: list[tuple[bool, str]] = []  # (is_terminal, name)
    prob: float | None = None
    n = len(line)

    def close_alt() -> None:
        alt_no = len(alts) + 1
        if not rhs:
            raise ValueError(f"{where}: alternative {alt_no} of {lhs!r} has an empty right-hand "
                             "side; epsilon rules are not supported")
        if prob is None:
            raise ValueError(f"{where}: alternative {alt_no} of {lhs!r} has no probability; "
                             "end each alternative with [p]")
        alts.append((list(rhs), prob))

    def check_symbol_allowed() -> None:
        # a symbol may not follow its alternative's probability
        if prob is not None:
            raise ValueError(f"{where}: symbol after the probability of alternative "
                             f"{len(alts) + 1} of {lhs!r}; separate alternatives with |")

    while pos < n:
        c = line[pos]
        if c.isspace():
            pos += 1
        elif c == "[":
            m = _PROB_RE.match(line, pos)
            if not m:
                raise ValueError(f"{where}: unterminated probability starting at column {pos + 1}")
            if prob is not None:
                raise ValueError(f"{where}: alternative {len(alts) + 1} of {lhs!r} has two "
                                 "probabilities")
            text = m.group(1).strip()
            try:
                prob = float(text)
            except ValueError:
                raise ValueError(f"{where}: probability [{text}] of {lhs!r} is not a number") from None
            if not math.isfinite(prob) or prob <= 0 or prob > 1:
                raise ValueError(f"{where}: probability [{text}] of {lhs!r} (alternative "
                                 f"{len(alts) + 1}) must be finite and in (0, 1]")
            pos = m.end()
        elif c in "'\"":
            m = _TERM_RE.match(line, pos)
            if not m:
                raise ValueError(f"{where}: unterminated quoted terminal starting at column {pos + 1}")
            check_symbol_allowed()
            name = m.group(1) if m.group(1) is not None else m.group(2)
            rhs.append((True, name))
            if name not in out._terminal_seen:
                out._terminal_seen.add(name)
                out.terminal_order.append(name)
            pos = m.end()
        elif c == "|":
            close_alt()
            rhs, prob = [], None
            pos += 1
        else:
            m = _NONTERM_RE.match(line, pos)
            if not m:
                raise ValueError(f"{where}: unexpected character {c!r} at column {pos + 1}")
            check_symbol_allowed()
            rhs.append((False, m.group(0)))
            out.used_line.setdefault(m.group(0), lineno)
            pos = m.end()
    close_alt()
    if lhs not in out.rules:
        out.rules[lhs] = []
        out.lhs_line[lhs] = lineno
    out.rules[lhs].extend(alts)


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """(first line number, line) with NLTK's backslash continuation joined."""
    pending, start = "", 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending:
            start = lineno
        line = pending + line
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        pending = ""
        yield start, line
    if pending:
        yield start, pending.rstrip()


def from_nltk_text(text: str, *, source: str = "<string>", renormalize: bool = False,
                   allow_unreachable: bool = False) -> Grammar:
    """Parse NLTK's PCFG text format into a Grammar.

    The start symbol is the ``%start`` directive's, else the first rule's
    left-hand side (NLTK's convention). Nonterminals are numbered in the order
    they first appear as a left-hand side. Terminal ids: the ``# pygzlaw:``
    header's list when present; else, when every terminal is a non-negative
    integer such as ``'17'``, the integer itself (the research code's token
    ids); else first-seen order.

    Args:
        text: the grammar text.
        source: a file name or label for error messages.
        renormalize: rescale each nonterminal's probabilities to sum to 1
            (for hand-written grammars with rounded probabilities). Off by
            default: a sum off by more than 1e-6 is an error.
        allow_unreachable: keep nonterminals the start symbol cannot reach.

    Raises:
        ValueError: naming ``source``, the line and what is wrong: syntax,
            a probability that is missing, non-finite, <= 0 or > 1, a
            nonterminal used without rules, probabilities not summing to 1,
            or an unreachable nonterminal.
    """
    out = _Parsed()
    for lineno, line in _logical_lines(text):
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith(_HEADER):
                try:
                    meta = json.loads(line[len(_HEADER):])
                    if not isinstance(meta, dict):
                        raise ValueError("not an object")
                except ValueError as exc:
                    raise ValueError(f"{source} line {lineno}: malformed '{_HEADER}' header "
                                     f"({exc}); expected a JSON object") from None
                out.meta.update(meta)
            continue
        if line.startswith("%"):
            parts = line[1:].split()
            if len(parts) != 2 or parts[0] != "start" or not _NONTERM_RE.fullmatch(parts[1]):
                raise ValueError(f"{source} line {lineno}: bad directive {line!r}; the only "
                                 "directive is '%start NAME'")
            out.start = parts[1]
            continue
        _parse_line(line, lineno, source, out)
    if not out.rules:
        raise ValueError(f"{source}: no rules found")
    start = out.start if out.start is not None else next(iter(out.rules))
    if start not in out.rules:
        raise ValueError(f"{source}: start symbol {start!r} has no rules")
    for name, lineno in out.used_line.items():
        if name not in out.rules:
            raise ValueError(f"{source} line {lineno}: nonterminal {name!r} is used but has no "
                             "rules (quote it if it is a terminal)")
    clash = [t for t in out.terminal_order if t in out.rules]
    if clash:
        raise ValueError(f"{source}: terminal {clash[0]!r} has the same name as a nonterminal; "
                         "rename one of them")
    for lhs, alts in out.rules.items():
        total = math.fsum(p for _, p in alts)
        if renormalize:
            out.rules[lhs] = [(rhs, p / total) for rhs, p in alts]
        elif abs(total - 1.0) > PROB_SUM_TOL:
            raise ValueError(f"{source} line {out.lhs_line[lhs]}: probabilities for {lhs!r} sum "
                             f"to {total:.9g} (expected 1.0 ± {PROB_SUM_TOL:g}); fix them or "
                             "pass renormalize=True")
    terminals = _terminal_list(out.meta, out.terminal_order, source)
    g = _build(out.rules, start, terminals, source, meta=out.meta)
    if not allow_unreachable:
        unreachable = [i for i in np.flatnonzero(~g.reachable())]
        if unreachable:
            name = g.nonterminal_names[unreachable[0]]
            raise ValueError(f"{source} line {out.lhs_line[name]}: nonterminal {name!r} is "
                             f"unreachable from the start symbol {start!r} "
                             f"({len(unreachable)} unreachable in all); remove it or pass "
                             "allow_unreachable=True")
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
    """Read a grammar file in NLTK's PCFG text format (see :func:`from_nltk_text`)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return from_nltk_text(text, source=os.fspath(path), **kwargs)


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
              allow_unreachable: bool = False, source: str = "nltk.PCFG") -> Grammar:
    """Convert an ``nltk.PCFG`` (``pcfg.PCFG`` included) to a Grammar.

    Nonterminals are numbered in order of first appearance as a left-hand side
    in ``obj.productions()``; terminal ids as in :func:`from_nltk_text` unless
    ``terminals`` gives the full list in id order.

    Raises:
        TypeError: ``obj`` is not an NLTK probabilistic grammar.
        ValueError: probabilities not summing to 1 within 1e-6 (NLTK allows
            0.01; pass ``renormalize=True`` to rescale), non-finite or
            non-positive probabilities, epsilon rules, unreachable
            nonterminals.
    """
    from nltk.grammar import Nonterminal

    if not (hasattr(obj, "productions") and hasattr(obj, "start")):
        raise TypeError(f"from_nltk expects an nltk.PCFG, got {type(obj).__name__}")
    rules: dict[str, list[tuple[list[tuple[bool, str]], float]]] = {}
    seen_terms: list[str] = []
    seen_set: set[str] = set()
    for prod in obj.productions():
        if not hasattr(prod, "prob"):
            raise TypeError(f"{source}: production {prod} has no probability; from_nltk needs "
                            "an nltk.PCFG, not a CFG")
        lhs = str(prod.lhs().symbol())
        rhs = []
        for s in prod.rhs():
            if isinstance(s, Nonterminal):
                rhs.append((False, str(s.symbol())))
            else:
                name = str(s)
                rhs.append((True, name))
                if name not in seen_set:
                    seen_set.add(name)
                    seen_terms.append(name)
        p = float(prod.prob())
        if not math.isfinite(p) or p <= 0:
            raise ValueError(f"{source}: rule {prod} has probability {p}; probabilities must "
                             "be finite and > 0")
        if not rhs:
            raise ValueError(f"{source}: rule {prod} has an empty right-hand side; epsilon rules "
                             "are not supported")
        rules.setdefault(lhs, []).append((rhs, p))
    if not rules:
        raise ValueError(f"{source}: no productions")
    start = str(obj.start().symbol())
    if start not in rules:
        raise ValueError(f"{source}: start symbol {start!r} has no rules")
    for alts in rules.values():
        for rhs, _ in alts:
            for is_term, name in rhs:
                if not is_term and name not in rules:
                    raise ValueError(f"{source}: nonterminal {name!r} is used but has no rules")
    clash = [t for t in seen_terms if t in rules]
    if clash:
        raise ValueError(f"{source}: terminal {clash[0]!r} has the same name as a nonterminal")
    for lhs, alts in rules.items():
        total = math.fsum(p for _, p in alts)
        if renormalize:
            rules[lhs] = [(rhs, p / total) for rhs, p in alts]
        elif abs(total - 1.0) > PROB_SUM_TOL:
            raise ValueError(f"{source}: probabilities for {lhs!r} sum to {total:.9g} (expected "
                             f"1.0 ± {PROB_SUM_TOL:g}; NLTK accepts ± 0.01); pass "
                             "renormalize=True to rescale")
    if terminals is not None:
        terms = [str(t) for t in terminals]
        missing = [t for t in seen_terms if t not in set(terms)]
        if missing:
            raise ValueError(f"{source}: terminal {missing[0]!r} is not in `terminals`")
    else:
        terms = _implicit_terminals(seen_terms)
    g = _build(rules, start, terms, source)
    if not allow_unreachable:
        bad = np.flatnonzero(~g.reachable())
        if bad.size:
            raise ValueError(f"{source}: nonterminal {g.nonterminal_names[bad[0]]!r} is "
                             f"unreachable from {start!r} ({bad.size} in all); pass "
                             "allow_unreachable=True to keep them")
    return g
