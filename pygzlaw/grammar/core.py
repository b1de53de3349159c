"""PCFG data structure, the paper's random construction, and named presets.

A :class:`Grammar` is stored as flat CSR arrays so the native sampler can take it
as-is (``pygzlaw.sampler`` compiles it to alias tables once):

* ``rule_offsets`` int64 (n_nonterminals + 1,): rules of nonterminal i are
  ``rule_offsets[i]:rule_offsets[i + 1]``;
* ``rule_probs`` float64 (n_rules,): probability of each rule, summing to 1 per
  nonterminal;
* ``rhs_offsets`` int64 (n_rules + 1,): right-hand side of rule r is
  ``rhs_symbols[rhs_offsets[r]:rhs_offsets[r + 1]]``;
* ``rhs_symbols`` int32 (n_rhs_symbols,): ``s >= 0`` is terminal index s,
  ``s < 0`` is nonterminal ``-s - 1``.

Terminal index t becomes a token id at sampling time (``t + 1`` when the
separator 0 is reserved, ``t`` in the research code's convention).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

PROB_SUM_TOL = 1e-6


@dataclass(frozen=True)
class GrammarSpec:
    """The paper's four syntactic knobs (Pandey 2024, section 2).

    Attributes:
        n_nonterminals: k, nonterminals N0..N{k-1} (the start symbol S is extra).
        n_terminals: T, terminal symbols 0..T-1.
        rhs_max_options: each nonterminal has uniform 1..rhs_max_options rules.
        rhs_max_len: each rule's right-hand side has uniform 1..rhs_max_len symbols.
    """

    n_nonterminals: int
    n_terminals: int
    rhs_max_options: int
    rhs_max_len: int

    def __post_init__(self) -> None:
        for name in ("n_nonterminals", "n_terminals", "rhs_max_options", "rhs_max_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"GrammarSpec.{name}={value!r} must be an int")
            if value < 1:
                raise ValueError(f"GrammarSpec.{name}={value} must be >= 1")
        if self.n_terminals + 1 > 2**31 - 1:
            raise ValueError(f"GrammarSpec.n_terminals={self.n_terminals} does not fit int32 token ids")

    def as_tuple(self) -> tuple[int, int, int, int]:
        """(k, T, rhs_max_options, rhs_max_len), the order the research code uses."""
        return (self.n_nonterminals, self.n_terminals, self.rhs_max_options, self.rhs_max_len)


# Configurations from the research code (k, T, rhs_max_options, rhs_max_len).
_MAIN = [(3, 20, 2, 2), (10, 150, 5, 3), (20, 300, 10, 5), (30, 400, 10, 8),
         (50, 500, 20, 15), (100, 2000, 100, 30)]
_EQUAL_VOCAB = [(3, 300, 2, 2), (10, 300, 5, 3), (20, 300, 10, 5), (50, 300, 20, 10),
                (100, 300, 100, 30), (200, 300, 200, 50)]
_NEAR_EQUAL_H = [(10, 600, 5, 10), (20, 300, 15, 5), (30, 200, 10, 15), (50, 100, 20, 20),
                 (10, 500, 5, 10), (30, 200, 15, 20)]

#: Named presets: ``main-1..6`` (the paper's six datasets, increasing complexity),
#: ``vocab300-1..6`` (equal vocabulary, T = 300), ``neareq-1..6`` (near-equal
#: compressibility with different knobs).
PRESETS: dict[str, GrammarSpec] = {}
for _family, _rows in (("main", _MAIN), ("vocab300", _EQUAL_VOCAB), ("neareq", _NEAR_EQUAL_H)):
    for _i, _row in enumerate(_rows, start=1):
        PRESETS[f"{_family}-{_i}"] = GrammarSpec(*_row)
MAIN_PRESETS: tuple[str, ...] = tuple(f"main-{i}" for i in range(1, 7))


def preset(name: str) -> GrammarSpec:
    """Spec of a named preset; raises KeyError listing the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


# ---------------------------------------------------------------------------
# Deterministic draws for grammar construction: counter-based SplitMix64,
# vectorised, identical on every platform and numpy version.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


class _Draws:
    """Stream of uniform integers: draw j is mix64(base + (j + 1) * golden)."""

    def __init__(self, seed: int) -> None:
        with np.errstate(over="ignore"):
            self._base = _mix64(np.array([seed & (2**64 - 1)], dtype=np.uint64) ^ np.uint64(0xC2B2AE3D27D4EB4F))[0]
        self._count = 0

    def integers(self, low: int, high: np.ndarray | int, n: int) -> np.ndarray:
        """n integers uniform in [low, high] (inclusive; high may be an array).

        Uses the top 32 bits times the range (Lemire); the bias is below
        range / 2**32, under 3e-8 for every range a grammar uses.
        """
        j = np.arange(self._count + 1, self._count + n + 1, dtype=np.uint64)
        self._count += n
        with np.errstate(over="ignore"):
            r = _mix64(self._base + j * _GOLDEN) >> np.uint64(32)
        span = (np.asarray(high, dtype=np.int64) - low + 1).astype(np.uint64)
        return (low + ((r * span) >> np.uint64(32)).astype(np.int64)).astype(np.int64)


class Grammar:
    """A probabilistic context-free grammar in flat arrays (see module docstring).

    Build one with :func:`random_pcfg`, :meth:`Grammar.from_rules`, or the
    importers in :mod:`pygzlaw.grammar` (NLTK text, ``nltk.PCFG``, JSON).
    Arrays are read-only; a Grammar is immutable.
    """

    def __init__(
        self,
        *,
        nonterminal_names: Sequence[str],
        terminal_names: Sequence[str],
        start: int,
        rule_offsets: np.ndarray,
        rule_probs: np.ndarray,
        rhs_offsets: np.ndarray,
        rhs_symbols: np.ndarray,
        spec: GrammarSpec | None = None,
        seed: int | None = None,
    ) -> None:
        self.nonterminal_names = tuple(str(n) for n in nonterminal_names)
        self.terminal_names = tuple(str(t) for t in terminal_names)
        self.start = int(start)
        self.rule_offsets = _frozen(rule_offsets, np.int64)
        self.rule_probs = _frozen(rule_probs, np.float64)
        self.rhs_offsets = _frozen(rhs_offsets, np.int64)
        self.rhs_symbols = _frozen(rhs_symbols, np.int32)
        self.spec = spec
        self.seed = seed
        self._check_structure()

    # -- sizes -------------------------------------------------------------
    @property
    def n_nonterminals(self) -> int:
        """Number of nonterminals, the start symbol included."""
        return len(self.nonterminal_names)

    @property
    def n_terminals(self) -> int:
        return len(self.terminal_names)

    @property
    def n_rules(self) -> int:
        return len(self.rule_probs)

    def rules_of(self, nt: int) -> list[tuple[float, list[int]]]:
        """Rules of nonterminal ``nt`` as (probability, rhs symbols) pairs."""
        out = []
        for r in range(self.rule_offsets[nt], self.rule_offsets[nt + 1]):
            rhs = self.rhs_symbols[self.rhs_offsets[r]:self.rhs_offsets[r + 1]].tolist()
            out.append((float(self.rule_probs[r]), rhs))
        return out

    def symbol_name(self, s: int) -> str:
        return self.terminal_names[s] if s >= 0 else self.nonterminal_names[-s - 1]

    def __repr__(self) -> str:
        origin = f", spec={self.spec.as_tuple()}, seed={self.seed}" if self.spec else ""
        return (f"Grammar(n_nonterminals={self.n_nonterminals}, n_terminals={self.n_terminals}, "
                f"n_rules={self.n_rules}, start={self.nonterminal_names[self.start]!r}{origin})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grammar):
            return NotImplemented
        return (self.nonterminal_names == other.nonterminal_names
                and self.terminal_names == other.terminal_names
                and self.start == other.start
                and np.array_equal(self.rule_offsets, other.rule_offsets)
                and np.array_equal(self.rule_probs, other.rule_probs)
                and np.array_equal(self.rhs_offsets, other.rhs_offsets)
                and np.array_equal(self.rhs_symbols, other.rhs_symbols))

    __hash__ = None  # type: ignore[assignment]

    # -- construction from named rules ------------------------------------
    @classmethod
    def from_rules(
        cls,
        rules: Mapping[str, Sequence[tuple[Sequence[str | int], float]]],
        *,
        start: str,
        terminals: Sequence[str] | None = None,
        source: str = "grammar",
        allow_unreachable: bool = False,
    ) -> "Grammar":
        """Build a grammar from ``{lhs: [(rhs, prob), ...]}``.

        A symbol in an rhs is a nonterminal if it is a key of ``rules`` and a
        terminal otherwise (ints and strings alike). Terminal index order is
        ``terminals`` when given, else integer-valued terminals by value and the
        rest in first-seen order. ``source`` prefixes error messages (a file
        name, say).

        Raises:
            ValueError: empty grammar, an lhs without rules, an empty rhs, a
                non-finite or non-positive probability, probabilities of a
                nonterminal not summing to 1 (within 1e-6), a start symbol
                without rules, or (unless ``allow_unreachable``) a nonterminal
                the start symbol cannot reach.
        """
        if not rules:
            raise ValueError(f"{source}: no rules")
        nt_names = [str(k) for k in rules]
        nt_index = {n: i for i, n in enumerate(nt_names)}
        if str(start) not in nt_index:
            raise ValueError(f"{source}: start symbol {start!r} has no rules")
        term_index: dict[str, int] = {}
        if terminals is not None:
            term_index = {str(t): i for i, t in enumerate(terminals)}
        else:
            seen: list[str] = []
            seen_set: set[str] = set()
            for alts in rules.values():
                for rhs, _ in alts:
                    for s in rhs:
                        s = str(s)
                        if s not in nt_index and s not in seen_set:
                            seen.append(s)
                            seen_set.add(s)
            ints = sorted((s for s in seen if _is_int(s)), key=int)
            others = [s for s in seen if not _is_int(s)]
            if ints and not others and [int(s) for s in ints] == list(range(len(ints))):
                order = ints  # terminals 0..T-1 keep their ids
            else:
                order = ints + others
            term_index = {s: i for i, s in enumerate(order)}
        rule_offsets = [0]
        probs: list[float] = []
        rhs_offsets = [0]
        symbols: list[int] = []
        for lhs, alts in rules.items():
            if len(alts) == 0:
                raise ValueError(f"{source}: nonterminal {lhs!r} has no rules")
            total = 0.0
            for j, (rhs, p) in enumerate(alts):
                p = float(p)
                if not math.isfinite(p) or p <= 0:
                    raise ValueError(f"{source}: rule {j} of {lhs!r} has probability {p}; "
                                     "probabilities must be finite and > 0")
                if len(rhs) == 0:
                    raise ValueError(f"{source}: rule {j} of {lhs!r} has an empty right-hand side; "
                                     "epsilon rules are not supported")
                for s in rhs:
                    s = str(s)
                    if s in nt_index:
                        symbols.append(-nt_index[s] - 1)
                    elif s in term_index:
                        symbols.append(term_index[s])
                    else:
                        raise ValueError(f"{source}: rule {j} of {lhs!r} uses {s!r}, which is neither "
                                         "a nonterminal with rules nor a listed terminal")
                probs.append(p)
                total += p
                rhs_offsets.append(len(symbols))
            if abs(total - 1.0) > PROB_SUM_TOL:
                raise ValueError(f"{source}: probabilities for {lhs!r} sum to {total:.6g} "
                                 f"(expected 1.0 ± {PROB_SUM_TOL:g})")
            rule_offsets.append(len(probs))
        terms = sorted(term_index, key=term_index.get)
        g = cls(nonterminal_names=nt_names, terminal_names=terms, start=nt_index[str(start)],
                rule_offsets=np.array(rule_offsets), rule_probs=np.array(probs),
                rhs_offsets=np.array(rhs_offsets), rhs_symbols=np.array(symbols, dtype=np.int32))
        if not allow_unreachable:
            unreachable = [g.nonterminal_names[i] for i in np.flatnonzero(~g.reachable())]
            if unreachable:
                raise ValueError(f"{source}: nonterminals unreachable from {start!r}: "
                                 f"{', '.join(map(repr, unreachable[:10]))}"
                                 f"{' ...' if len(unreachable) > 10 else ''}; remove them or pass "
                                 "allow_unreachable=True")
        return g

    def to_rules(self) -> dict[str, list[tuple[list[str], float]]]:
        """The inverse of :meth:`from_rules`: ``{lhs: [(rhs names, prob), ...]}``."""
        return {self.nonterminal_names[i]: [([self.symbol_name(s) for s in rhs], p)
                                            for p, rhs in self.rules_of(i)]
                for i in range(self.n_nonterminals)}

    def reachable(self) -> np.ndarray:
        """bool (n_nonterminals,): which nonterminals the start symbol can reach."""
        k = self.n_nonterminals
        is_nt = self.rhs_symbols < 0
        rule_of_symbol = np.repeat(np.arange(self.n_rules), np.diff(self.rhs_offsets))
        lhs_of_rule = np.repeat(np.arange(k), np.diff(self.rule_offsets))
        adj = np.zeros((k, k), dtype=bool)  # adj[i, j]: some rule of i uses j
        adj[lhs_of_rule[rule_of_symbol[is_nt]], -self.rhs_symbols[is_nt].astype(np.int64) - 1] = True
        seen = np.zeros(k, dtype=bool)
        seen[self.start] = True
        frontier = seen.copy()
        while frontier.any():
            frontier = adj[frontier].any(axis=0) & ~seen
            seen |= frontier
        return seen

    def _check_structure(self) -> None:
        k, n_rules = self.n_nonterminals, len(self.rule_probs)
        if k == 0 or n_rules == 0:
            raise ValueError("grammar has no nonterminals or no rules")
        if not 0 <= self.start < k:
            raise ValueError(f"start={self.start} is not a nonterminal index in [0, {k})")
        ro, rh = self.rule_offsets, self.rhs_offsets
        if len(ro) != k + 1 or ro[0] != 0 or ro[-1] != n_rules or np.any(np.diff(ro) < 1):
            raise ValueError("rule_offsets must start at 0, end at n_rules, and give every "
                             "nonterminal at least one rule")
        if len(rh) != n_rules + 1 or rh[0] != 0 or rh[-1] != len(self.rhs_symbols) or np.any(np.diff(rh) < 1):
            raise ValueError("rhs_offsets must start at 0, end at len(rhs_symbols), and give every "
                             "rule a non-empty right-hand side")
        sym = self.rhs_symbols
        if sym.size and (sym.max() >= self.n_terminals or sym.min() < -k):
            raise ValueError("rhs_symbols refers to a terminal or nonterminal that does not exist")
        p = self.rule_probs
        if not np.all(np.isfinite(p)) or np.any(p <= 0):
            bad = int(np.flatnonzero(~np.isfinite(p) | (p <= 0))[0])
            raise ValueError(f"rule {bad} has probability {p[bad]}; probabilities must be finite and > 0")
        sums = np.add.reduceat(p, ro[:-1])
        off = np.flatnonzero(np.abs(sums - 1.0) > PROB_SUM_TOL)
        if off.size:
            i = int(off[0])
            raise ValueError(f"probabilities for {self.nonterminal_names[i]!r} sum to {sums[i]:.6g} "
                             f"(expected 1.0 ± {PROB_SUM_TOL:g})")


def random_pcfg(spec: GrammarSpec | str, seed: int) -> Grammar:
    """Random PCFG by the paper's construction (Pandey 2024, section 2), fully seeded.

    For each nonterminal N0..N{k-1}: the number of rules is uniform in
    [1, rhs_max_options]; each rule's weight is uniform in [1, 100] and its
    probability is weight / sum of weights; each rule's length is uniform in
    [1, rhs_max_len]; each rhs symbol is uniform over nonterminals ∪ terminals
    (so P(nonterminal) = k / (k + T)). The start symbol S rewrites to each Ni
    with probability 1/k. Same (spec, seed) → the same grammar on every platform.

    Args:
        spec: a GrammarSpec or a preset name (see ``PRESETS``).
        seed: any integer (taken mod 2**64).
    """
    if isinstance(spec, str):
        spec = preset(spec)
    k, t = spec.n_nonterminals, spec.n_terminals
    draws = _Draws(int(seed))
    n_opts = draws.integers(1, spec.rhs_max_options, k)
    n_rules = int(n_opts.sum())
    weights = draws.integers(1, 100, n_rules).astype(np.float64)
    lengths = draws.integers(1, spec.rhs_max_len, n_rules)
    raw = draws.integers(0, k + t - 1, int(lengths.sum()))
    # union order: nonterminals first, then terminals
    symbols = np.where(raw < k, -raw - 1, raw - k).astype(np.int32)
    rule_offsets = np.concatenate([[0], np.cumsum(n_opts)])
    sums = np.add.reduceat(weights, rule_offsets[:-1])
    probs = weights / np.repeat(sums, n_opts)
    # start symbol S (index k): S -> N0 | ... | N{k-1}, each 1/k
    rule_offsets = np.concatenate([rule_offsets, [n_rules + k]])
    probs = np.concatenate([probs, np.full(k, 1.0 / k)])
    rhs_offsets = np.concatenate([[0], np.cumsum(lengths), len(raw) + np.arange(1, k + 1)])
    symbols = np.concatenate([symbols, -np.arange(1, k + 1, dtype=np.int32)])
    return Grammar(nonterminal_names=[f"N{i}" for i in range(k)] + ["S"],
                   terminal_names=[str(i) for i in range(t)], start=k,
                   rule_offsets=rule_offsets, rule_probs=probs, rhs_offsets=rhs_offsets,
                   rhs_symbols=symbols, spec=spec, seed=int(seed))


def _frozen(a: Iterable, dtype) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(a, dtype=dtype))
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


def _is_int(s: str) -> bool:
    try:
        int(s)
        return True
    except ValueError:
        return False
