"""Compile a Grammar into the flat tables the native sampler and the reference use.

Both implementations read the very same tables, so they draw the same rules
from the same random numbers: the reference is token-exact, not just
statistically equal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pygzlaw.grammar import Grammar

SEPARATORS = ("reserve", "research")
_TWO32 = float(2**32)


@dataclass(frozen=True)
class CompiledTables:
    """Alias tables and token-mapped right-hand sides.

    Attributes:
        start: index of the start nonterminal.
        rule_offsets: int64 (n_nonterminals + 1,).
        alias_threshold: uint32 (n_rules,); local rule j is kept when the low 32
            bits of the draw are < alias_threshold[j], else alias_other[j].
        alias_other: int32 (n_rules,), local rule indices.
        rhs_offsets: int64 (n_rules + 1,).
        rhs_symbols: int32, token id (>= 0) or -(nonterminal + 1).
        skip: int64 (n_rhs_symbols,), index of the first nonterminal at or after
            each symbol within its rule, or the rule's end (see skip_table).
        token_offset: added to terminal indices (1 when 0 is the reserved separator).
        vocab_size: number of distinct token ids including the separator.
    """

    start: int
    rule_offsets: np.ndarray
    alias_threshold: np.ndarray
    alias_other: np.ndarray
    rhs_offsets: np.ndarray
    rhs_symbols: np.ndarray
    skip: np.ndarray
    token_offset: int
    vocab_size: int


def alias_table(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table for one distribution, quantised to 32 bits.

    Args:
        probs: float64 (n,), positive, summing to 1.

    Returns:
        (threshold uint32 (n,), other int32 (n,)). Column j (chosen uniformly)
        yields j with probability threshold[j] / 2**32 and other[j] otherwise;
        the quantisation error is below 2**-32 per rule.
    """
    n = len(probs)
    scaled = np.asarray(probs, dtype=np.float64) * n / float(np.sum(probs))
    keep = np.ones(n, dtype=np.float64)
    other = np.arange(n, dtype=np.int32)
    small = [j for j in range(n) if scaled[j] < 1.0]
    large = [j for j in range(n) if scaled[j] >= 1.0]
    while small and large:
        s, l = small.pop(), large.pop()
        keep[s] = scaled[s]
        other[s] = l
        scaled[l] = (scaled[l] + scaled[s]) - 1.0
        (small if scaled[l] < 1.0 else large).append(l)
    # leftovers are 1 up to rounding: they never alias (other[j] = j)
    threshold = np.minimum(np.round(keep * _TWO32), _TWO32 - 1).astype(np.uint32)
    return threshold, other


def compile_grammar(grammar: Grammar, separator: str = "reserve") -> CompiledTables:
    """Tables for sampling ``grammar`` with the given separator convention.

    Args:
        grammar: the PCFG.
        separator: "reserve" (default): token 0 is only the separator and
            terminal t becomes token t + 1, vocabulary T + 1. "research": the
            research code's convention, terminal t is token t and 0 is both a
            terminal and the separator, vocabulary T.
    """
    if separator not in SEPARATORS:
        raise ValueError(f"separator={separator!r}; choose one of {SEPARATORS}")
    offset = 1 if separator == "reserve" else 0
    thresholds = np.empty(grammar.n_rules, dtype=np.uint32)
    others = np.empty(grammar.n_rules, dtype=np.int32)
    ro = grammar.rule_offsets
    for nt in range(grammar.n_nonterminals):
        lo, hi = int(ro[nt]), int(ro[nt + 1])
        thresholds[lo:hi], others[lo:hi] = alias_table(grammar.rule_probs[lo:hi])
    sym = grammar.rhs_symbols.astype(np.int32, copy=True)
    sym[sym >= 0] += offset
    tables = CompiledTables(start=grammar.start, rule_offsets=np.ascontiguousarray(ro),
                            alias_threshold=thresholds, alias_other=others,
                            rhs_offsets=np.ascontiguousarray(grammar.rhs_offsets),
                            rhs_symbols=sym,
                            skip=skip_table(grammar.rhs_offsets, grammar.rhs_symbols),
                            token_offset=offset,
                            vocab_size=grammar.n_terminals + offset)
    for a in (tables.alias_threshold, tables.alias_other, tables.rhs_symbols, tables.skip):
        a.setflags(write=False)
    return tables


def skip_table(rhs_offsets: np.ndarray, rhs_symbols: np.ndarray) -> np.ndarray:
    """For each rhs symbol, the index of the first nonterminal at or after it in
    its rule, or the rule's end (= the next rule's first index).

    Once a document is full the sampler finishes the cut sentence (the guards
    must see all of it) but needs only how many terminals it has: this table
    jumps over each run of terminals in one step.

    Returns:
        int64 (n_rhs_symbols,).
    """
    # Doubled coordinates: a nonterminal at j stops every i <= j (key 2j); a
    # rule end e stops every i < e (key 2e - 1). The first key >= 2i wins.
    keys = np.concatenate([2 * np.flatnonzero(np.asarray(rhs_symbols) < 0),
                           2 * np.asarray(rhs_offsets[1:], dtype=np.int64) - 1])
    keys.sort()
    i = np.arange(len(rhs_symbols), dtype=np.int64)
    return (keys[np.searchsorted(keys, 2 * i, side="left")] + 1) // 2
