"""Pure-Python reference sampler: the same algorithm and random stream as
csrc/sampler, one token at a time. Slow (~1M tokens/s at best); it is the
oracle for token-exact tests and the definition of the native sampler's output.
"""
from __future__ import annotations

import numpy as np

from pygzlaw.sampler.blocks import BlockTables
from pygzlaw.sampler.compile import CompiledTables

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix64(z: int) -> int:
    """SplitMix64 finaliser (csrc/common/rng.h: mix64)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def stream_state(seed: int, index: int) -> int:
    """Initial state of item ``index``'s stream (csrc/common/rng.h: stream_state)."""
    return (mix64((mix64((seed ^ 0x5851F42D4C957F2D) & MASK64) + index * GOLDEN) & MASK64)) & MASK64


class SplitMix64:
    def __init__(self, state: int) -> None:
        self.state = state & MASK64

    def next(self) -> int:
        self.state = (self.state + GOLDEN) & MASK64
        return mix64(self.state)


class RejectedDepth(Exception):
    pass


class RejectedLength(Exception):
    pass


def fast_limits(b: BlockTables, max_depth: int) -> list[int]:
    """Depths up to which each nonterminal's fast table is used."""
    return [max_depth - int(h) for h in b.height]


def choose_block(b: BlockTables, nt: int, depth: int, limits: list[int], rng: SplitMix64) -> int:
    """First segment of a block of nt drawn at ``depth`` (csrc: Expander::choose_block)."""
    lo, hi = b.table(nt, depth <= limits[nt])
    m = hi - lo
    if m == 1:
        return int(b.alias[lo]["keep"])
    x = rng.next() * m
    a = b.alias[lo + (x >> 64)]
    return int(a["keep"]) if (x & MASK64) < int(a["threshold"]) else int(a["other"])


def choose_entry(b: BlockTables, rng: SplitMix64):
    """One entry (a STREAM_ENTRY_DTYPE record) of the document stream's table,
    read from the same alias columns as csrc's Expander::choose_entry."""
    m = len(b.stream_columns)
    if m == 1:
        return b.stream_columns[0]["entry"][0]
    x = rng.next() * m
    c = b.stream_columns[x >> 64]
    return c["entry"][0 if (x & MASK64) < int(c["threshold"]) else 1]


def uses_stream(b: BlockTables, separator: int, max_depth: int, max_sentence_tokens: int) -> bool:
    """Whether documents come from the stream's table (csrc: sample_docs_impl)."""
    return (len(b.stream_entries) > 0 and separator == b.stream_separator
            and max_depth >= b.stream_max_depth and max_sentence_tokens >= b.stream_max_sentence)


class _Lists:
    """The block tables as Python lists (indexing numpy scalars is ~10x slower)."""

    def __init__(self, b: BlockTables, max_depth: int) -> None:
        self.segments = b.segments.tolist()
        self.tokens = b.tokens.tolist()
        self.limits = fast_limits(b, max_depth)


def sentence_reference(t: CompiledTables, rng: SplitMix64, max_depth: int,
                       max_sentence_tokens: int, first_segment: int | None = None,
                       lists: _Lists | None = None) -> list[int]:
    """One sentence, blocks expanded recursively (depth-first, left to right).

    ``first_segment``: the sentence's first block (of the start symbol) when
    already chosen (a stream entry's partial sentence); else it is drawn.
    ``lists``: the tables as lists, when the caller samples many sentences.
    Raises RejectedDepth / RejectedLength at the same point the native sampler
    abandons the attempt.
    """
    b = t.blocks
    lists = lists or _Lists(b, max_depth)
    limits, segs, toks = lists.limits, lists.segments, lists.tokens
    out: list[int] = []

    def walk(i: int, depth: int) -> None:
        while True:
            token, length, child, rel, last = segs[i]
            for tok in toks[token:token + length]:
                if len(out) + 1 > max_sentence_tokens:
                    raise RejectedLength
                out.append(tok)
            if child >= 0:
                if depth + rel > max_depth:
                    raise RejectedDepth
                walk(choose_block(b, child, depth + rel, limits, rng), depth + rel)
            if last:
                return
            i += 1

    walk(choose_block(b, t.start, 1, limits, rng) if first_segment is None else first_segment, 1)
    return out


def sample_docs_reference(t: CompiledTables, seed: int, first_doc: int, n_docs: int,
                          doc_tokens: int, *, max_depth: int, max_sentence_tokens: int,
                          separator_token: int = 0) -> tuple[np.ndarray, dict]:
    """Documents first_doc .. first_doc + n_docs - 1 as int64 (n_docs, doc_tokens).

    A document is its accepted sentences joined by the separator, cut at exactly
    doc_tokens; rejected attempts are discarded and resampled from the same
    stream. Sentences come from the document stream's table when the guards
    allow it (several per draw), else one by one.
    """
    import sys

    b = t.blocks
    stream = uses_stream(b, separator_token, max_depth, max_sentence_tokens)
    toks = b.tokens.tolist()
    lengths = b.stream_sentence_lengths.tolist()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, max_depth + 100))
    counts = {"n_sentences": 0, "n_rejected_depth": 0, "n_rejected_length": 0}
    out = np.zeros((n_docs, doc_tokens), dtype=np.int64)

    lists = _Lists(b, max_depth)

    def attempt(doc: list, rng: SplitMix64, first_segment: int | None) -> None:
        try:
            sent = sentence_reference(t, rng, max_depth, max_sentence_tokens, first_segment, lists)
        except RejectedDepth:
            counts["n_rejected_depth"] += 1
            return
        except RejectedLength:
            counts["n_rejected_length"] += 1
            return
        counts["n_sentences"] += 1
        doc.extend(sent)
        if len(doc) < doc_tokens:
            doc.append(separator_token)

    try:
        for i in range(n_docs):
            rng = SplitMix64(stream_state(seed, first_doc + i))
            doc: list[int] = []
            while len(doc) < doc_tokens:
                if not stream:
                    attempt(doc, rng, None)
                    continue
                token, _, n_complete, _, partial, first = choose_entry(b, rng)
                for n in lengths[first:first + n_complete]:
                    if len(doc) >= doc_tokens:
                        break
                    counts["n_sentences"] += 1
                    doc.extend(toks[token:token + n])
                    if len(doc) < doc_tokens:
                        doc.append(separator_token)
                    token += n + 1
                if partial >= 0 and len(doc) < doc_tokens:
                    attempt(doc, rng, int(partial))
            out[i] = doc[:doc_tokens]
    finally:
        sys.setrecursionlimit(limit)
    return out, counts


def sample_sentences_reference(t: CompiledTables, seed: int, first_sentence: int,
                               n_sentences: int, *, max_depth: int,
                               max_sentence_tokens: int) -> list[list[int]]:
    """Unpacked sentences, sentence i from stream (seed, first_sentence + i)."""
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, max_depth + 100))
    sentences = []
    lists = _Lists(t.blocks, max_depth)
    try:
        for i in range(n_sentences):
            rng = SplitMix64(stream_state(seed, first_sentence + i))
            while True:
                try:
                    sentences.append(sentence_reference(t, rng, max_depth, max_sentence_tokens,
                                                        lists=lists))
                    break
                except (RejectedDepth, RejectedLength):
                    continue
    finally:
        sys.setrecursionlimit(limit)
    return sentences
