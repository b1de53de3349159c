"""Compile a Grammar into the flat tables the native sampler and the reference use.

Both implementations read the very same tables (the derivation blocks of
pygzlaw/sampler/blocks.py), so they draw the same blocks from the same random
numbers: the reference is token-exact, not just statistically equal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pygzlaw.grammar import Grammar
from pygzlaw.sampler.blocks import BlockTables, build_blocks

SEPARATORS = ("reserve", "research")


@dataclass(frozen=True)
class CompiledTables:
    """Token-mapped rules and the derivation blocks sampled from them.

    Attributes:
        start: index of the start nonterminal.
        rule_offsets: int64 (n_nonterminals + 1,).
        rule_probs: float64 (n_rules,).
        rhs_offsets: int64 (n_rules + 1,).
        rhs_symbols: int32, token id (>= 0) or -(nonterminal + 1).
        blocks: the block tables (what the samplers draw from).
        token_offset: added to terminal indices (1 when 0 is the reserved separator).
        vocab_size: number of distinct token ids including the separator.
    """

    start: int
    rule_offsets: np.ndarray
    rule_probs: np.ndarray
    rhs_offsets: np.ndarray
    rhs_symbols: np.ndarray
    blocks: BlockTables
    token_offset: int
    vocab_size: int


def compile_grammar(grammar: Grammar, separator: str = "reserve", **budgets) -> CompiledTables:
    """Tables for sampling ``grammar`` with the given separator convention.

    Args:
        grammar: the PCFG.
        separator: "reserve" (default): token 0 is only the separator and
            terminal t becomes token t + 1, vocabulary T + 1. "research": the
            research code's convention, terminal t is token t and 0 is both a
            terminal and the separator, vocabulary T.
        budgets: block budgets, passed to :func:`pygzlaw.sampler.blocks.build_blocks`
            (start_blocks, nt_blocks, max_height, stream_entries,
            stream_sentence_blocks). They change which random numbers give
            which sentence, never the distribution.
    """
    if separator not in SEPARATORS:
        raise ValueError(f"separator={separator!r}; choose one of {SEPARATORS}")
    offset = 1 if separator == "reserve" else 0
    sym = grammar.rhs_symbols.astype(np.int32, copy=True)
    sym[sym >= 0] += offset
    ro = np.array(grammar.rule_offsets, dtype=np.int64)  # copies: frozen below
    rhs_off = np.array(grammar.rhs_offsets, dtype=np.int64)
    probs = np.array(grammar.rule_probs, dtype=np.float64)
    blocks = build_blocks(grammar.start, ro, probs, rhs_off, sym, separator=0, **budgets)
    tables = CompiledTables(start=grammar.start, rule_offsets=ro, rule_probs=probs,
                            rhs_offsets=rhs_off, rhs_symbols=sym, blocks=blocks,
                            token_offset=offset, vocab_size=grammar.n_terminals + offset)
    for a in (tables.rule_offsets, tables.rule_probs, tables.rhs_offsets, tables.rhs_symbols):
        a.setflags(write=False)
    return tables
