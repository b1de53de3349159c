"""Unroll a compiled grammar into derivation blocks: several rule choices per draw.

Random PCFG sentences are short (2–40 tokens on the paper's presets) and most
of a naive sampler's time goes to one random draw, one alias lookup and one
stack push per rule. A *block* of nonterminal X is a derivation fragment: X's
rule with some of the nonterminals it produced already expanded in turn. X's
blocks partition X's derivations by their first rule choices, and a block's
probability is the product of those choices' probabilities, so drawing one
block from X's blocks is distributed exactly as drawing the rules one by one
(the sentences have the same distribution; the random stream is consumed
differently).

Blocks are grown like a Tunstall code: start from X's rules and repeatedly
replace the most probable block by the expansions of its leftmost pending
nonterminal, while the budget allows. Each nonterminal gets two tables:

- ``fast``: the unrolled blocks (up to the budget);
- ``plain``: its rules as they are (one rule per block).

Depth guard, exactly: a block records the deepest nesting it expanded inside
(``height``). The sampler uses X's fast table at depth d only when
d + height_max(X) <= max_depth, otherwise the plain one; pending nonterminals
carry their own depth. The terminals and the depth checks therefore happen in
the same left-to-right order as in rule-by-rule sampling, and a sentence is
rejected (by depth or by length) exactly when rule-by-rule sampling rejects it.

A block is stored as segments: a run of terminals then one pending
nonterminal with its depth relative to the block's root (none in a block's
last segment, unless it is a tail call). The native sampler copies runs in
32-byte chunks.

Documents add one more table: the stream D -> S sep D unrolled the same way
(``_unroll_stream``). One of its entries holds several complete sentences
with their separators as one run, then at most one partial sentence, so a
single draw writes several short sentences. After any sentence the rest of
the stream is again D, which is why a rejected partial sentence may simply
discard the rest of its entry and continue with a fresh draw.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

_TWO64 = float(2**64)
_MAX_U64 = (1 << 64) - 1

# Budgets chosen with bench/bench_sampler.py (see ARCHITECTURE.md, Sampler):
# the start symbol's table decides most short sentences in one draw.
DEFAULT_START_BLOCKS = 4096
DEFAULT_NT_BLOCKS = 64
DEFAULT_MAX_HEIGHT = 8
# The document stream's table: entries of several short sentences each, built
# over a smaller start table (so more than one sentence fits in the budget).
DEFAULT_STREAM_ENTRIES = 4096
DEFAULT_STREAM_SENTENCE_BLOCKS = 512
STREAM_MAX_TOKENS = 1 << 17
# An entry stops growing at this many tokens: longer ones would outgrow a
# document, and on near-deterministic grammars the most probable entry would
# otherwise absorb the whole budget (quadratic to build).
STREAM_MAX_ENTRY_TOKENS = 256
# Extra tokens after the last run, so runs may be copied in fixed-size chunks.
TOKEN_PAD = 32


# One alias column: threshold, then the first segment of the column's own block
# and of its alias (both resolved, so a draw costs one 16-byte load).
ALIAS_DTYPE = np.dtype([("threshold", "=u8"), ("keep", "=i4"), ("other", "=i4")])
# A run of `length` tokens at tokens[token:], then pending nonterminal `nt` at
# relative `depth` (nt = -1: none). `last` marks a block's final segment; only
# a final segment may have nt = -1, and a final one with nt >= 0 is a tail call.
SEGMENT_DTYPE = np.dtype([("token", "=i4"), ("length", "=i4"), ("nt", "=i4"), ("depth", "=i2"),
                          ("last", "=i2")])
# One entry of the document stream's table: `length` tokens at tokens[token:]
# hold its n_complete sentences, each followed by the separator; then the
# partial sentence's segments from `partial` (-1: none). The sentences'
# lengths are stream_sentence_lengths[sentences : sentences + n_complete].
STREAM_ENTRY_DTYPE = np.dtype([("token", "=i4"), ("length", "=i4"), ("n_complete", "=i4"),
                               ("n_terminals", "=i4"), ("partial", "=i4"), ("sentences", "=i4")])
# What the native sampler reads: one 64-byte (cache-line aligned) alias column
# holding both candidate entries, so a draw costs one cache line.
STREAM_COLUMN_DTYPE = np.dtype([("threshold", "=u8"), ("entry", STREAM_ENTRY_DTYPE, (2,)),
                                ("pad", "=u8")])


@dataclass(frozen=True)
class BlockTables:
    """Flat tables of derivation blocks (see module docstring).

    Attributes:
        n_nonterminals: k (the start symbol included).
        start: index of the start nonterminal.
        table_ranges: int64 (2 * n_nonterminals, 2), [lo, hi) alias columns of
            nt's fast table (row nt) and of its plain table (row n + nt). A fast
            table that inlines nothing is the plain one (the same rows), so
            tables that are touched stay few and cache-resident.
        alias: ALIAS_DTYPE (n_blocks,). With r a 64-bit draw and m the table's
            size, column j = (r * m) >> 64 gives block j (segments from
            alias[j].keep) when (r * m) mod 2**64 < alias[j].threshold, else the
            block starting at alias[j].other.
        segments: SEGMENT_DTYPE (n_segments,).
        tokens: int32 (n_tokens + TOKEN_PAD,), the runs' token ids (equal runs stored once).
        height: int32 (n_nonterminals,), deepest relative depth expanded inside
            any fast block of nt (0 when no fast block inlines anything).
        block_segment: int64 (n_blocks,), first segment of each block.
        probs: float64 (n_blocks,), each block's probability within its table.
        stream_entries: STREAM_ENTRY_DTYPE (n_entries,).
        stream_columns: STREAM_COLUMN_DTYPE (n_entries,), 64-byte aligned: the
            alias columns with entry[0] = the column's entry, entry[1] = its alias.
        stream_sentence_lengths: int32, complete sentences' lengths (tokens).
        stream_probs: float64 (n_entries,).
        stream_separator: the separator token in the entries' runs.
        stream_max_depth: deepest absolute depth expanded inside any entry
            (the stream table is used only when this is <= max_depth).
        stream_max_sentence: longest complete sentence in any entry (the
            table is used only when this is <= max_sentence_tokens).
    """

    n_nonterminals: int
    start: int
    table_ranges: np.ndarray
    alias: np.ndarray
    segments: np.ndarray
    tokens: np.ndarray
    height: np.ndarray
    block_segment: np.ndarray
    probs: np.ndarray
    stream_entries: np.ndarray
    stream_columns: np.ndarray
    stream_sentence_lengths: np.ndarray
    stream_probs: np.ndarray
    stream_separator: int
    stream_max_depth: int
    stream_max_sentence: int

    @property
    def n_blocks(self) -> int:
        return len(self.alias)

    def table(self, nt: int, fast: bool) -> tuple[int, int]:
        """[lo, hi) block range of nt's fast or plain table."""
        lo, hi = self.table_ranges[nt if fast else self.n_nonterminals + nt]
        return int(lo), int(hi)

    def block(self, b: int) -> list[tuple[int, ...]]:
        """Segments (token_ids, nt, depth) of block b, for tests and analysis."""
        out, i = [], int(self.block_segment[b])
        while True:
            s = self.segments[i]
            out.append((tuple(self.tokens[s["token"]:s["token"] + s["length"]].tolist()),
                        int(s["nt"]), int(s["depth"])))
            if s["last"]:
                return out
            i += 1


def _aligned_empty(n: int, dtype: np.dtype, align: int) -> np.ndarray:
    """Uninitialised (n,) array of ``dtype`` whose data starts on an ``align``-byte boundary."""
    raw = np.empty(n * dtype.itemsize + align, dtype=np.uint8)
    skip = -raw.ctypes.data % align
    return raw[skip:skip + n * dtype.itemsize].view(dtype)


def alias_table_u64(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table with 64-bit thresholds.

    Args:
        probs: float64 (n,), positive (normalised here).

    Returns:
        (threshold uint64 (n,), other int32 (n,)): column j keeps j with
        probability threshold[j] / 2**64, else gives other[j].
    """
    n = len(probs)
    p = np.asarray(probs, dtype=np.float64)
    scaled = (p * (n / float(np.sum(p)))).tolist()
    keep = [1.0] * n
    other = list(range(n))
    small = [j for j in range(n) if scaled[j] < 1.0]
    large = [j for j in range(n) if scaled[j] >= 1.0]
    while small and large:
        s, l = small.pop(), large.pop()
        keep[s] = scaled[s]
        other[s] = l
        scaled[l] = (scaled[l] + scaled[s]) - 1.0
        (small if scaled[l] < 1.0 else large).append(l)
    # leftovers are 1 up to rounding: they never alias (other[j] = j)
    threshold = np.array([min(int(k * _TWO64), _MAX_U64) for k in keep], dtype=np.uint64)
    return threshold, np.array(other, dtype=np.int32)


def _rules(rule_offsets: np.ndarray, rule_probs: np.ndarray, rhs_offsets: np.ndarray,
           rhs_symbols: np.ndarray) -> list[list[tuple[float, list]]]:
    """Per nonterminal: (probability, symbols) of each rule, symbols being
    token ids (>= 0) or (nonterminal, relative depth 1) tuples."""
    out = []
    for nt in range(len(rule_offsets) - 1):
        lo, hi = int(rule_offsets[nt]), int(rule_offsets[nt + 1])
        p = np.asarray(rule_probs[lo:hi], dtype=np.float64)
        p = (p / p.sum()).tolist()
        rules = []
        for j, r in enumerate(range(lo, hi)):
            syms = rhs_symbols[rhs_offsets[r]:rhs_offsets[r + 1]].tolist()
            rules.append((p[j], [s if s >= 0 else (-s - 1, 1) for s in syms]))
        out.append(rules)
    return out


def _pending(syms: list) -> int:
    """Index of the leftmost pending nonterminal in a symbol list, or -1."""
    return next((i for i, x in enumerate(syms) if type(x) is tuple), -1)


def _expand_leftmost(syms: list, i: int, rules: list[list[tuple[float, list]]]):
    """The pending nonterminal at syms[i] replaced by each of its rules.

    Yields (rule probability, its depth, the new symbol list); the rule's own
    nonterminals become pending one level deeper.
    """
    child, depth = syms[i]
    head, tail = syms[:i], syms[i + 1:]
    for q, rhs in rules[child]:
        yield q, depth, head + [x if type(x) is not tuple else (x[0], x[1] + depth)
                                for x in rhs] + tail


def _unroll(rules: list[list[tuple[float, list]]], nt: int, max_blocks: int,
            max_height: int) -> list[tuple[float, int, list]]:
    """Blocks (probability, height, symbols) of nt, grown Tunstall-style."""
    blocks: dict[int, tuple[float, int, list]] = {}
    heap: list[tuple[float, int]] = []
    serial = 0

    def add(p: float, h: int, syms: list) -> None:
        nonlocal serial
        blocks[serial] = (p, h, syms)
        i = _pending(syms)
        if i >= 0 and syms[i][1] <= max_height:
            heapq.heappush(heap, (-p, serial))
        serial += 1

    for p, syms in rules[nt]:
        add(p, 0, syms)
    while heap:
        _, key = heapq.heappop(heap)
        p, h, syms = blocks[key]
        i = _pending(syms)
        if len(blocks) - 1 + len(rules[syms[i][0]]) > max_blocks:
            continue  # too wide for what is left; a narrower one may still fit
        del blocks[key]
        for q, depth, expanded in _expand_leftmost(syms, i, rules):
            add(p * q, max(h, depth), expanded)
    return [blocks[k] for k in sorted(blocks)]


def _unroll_stream(rules: list[list[tuple[float, list]]], sentences: list[tuple[float, int, list]],
                   max_entries: int, max_height: int,
                   max_tokens: int) -> list[tuple[float, int, list, list | None]]:
    """Entries of the document stream D -> S sep D, grown Tunstall-style.

    ``sentences`` are the start symbol's blocks the stream's sentences begin
    with. An entry is a derivation prefix of the stream: complete sentences,
    then at most one partial sentence (symbols with pending nonterminals at
    depths relative to its start symbol), then the rest of the stream
    (implicit). Returns (probability, height, complete sentences, partial or None).
    """
    # entry: (probability, height, complete sentences, partial, tokens of the complete part)
    entries: dict[int, tuple[float, int, list, list | None, int]] = {}
    heap: list[tuple[float, int]] = []
    serial, n_tokens = 0, 0

    def add(p: float, h: int, done: list, cost: int, partial: list) -> None:
        nonlocal serial, n_tokens
        i = _pending(partial)
        if i < 0:  # the sentence is complete
            done, cost, partial = done + [partial], cost + len(partial) + 1, None
        entries[serial] = (p, h, done, partial, cost)
        n_tokens += cost
        if cost < STREAM_MAX_ENTRY_TOKENS and (i < 0 or partial[i][1] <= max_height):
            heapq.heappush(heap, (-p, serial))
        serial += 1

    def options(partial: list | None) -> list:
        return sentences if partial is None else rules[partial[_pending(partial)][0]]

    def expand(key: int) -> None:
        nonlocal n_tokens
        p, h, done, partial, cost = entries.pop(key)
        n_tokens -= cost
        if partial is None:  # the stream's next sentence: one block of the start symbol
            for q, bh, syms in sentences:
                add(p * q, max(h, bh), done, cost, syms)
            return
        for q, depth, expanded in _expand_leftmost(partial, _pending(partial), rules):
            add(p * q, max(h, depth), done, cost, expanded)

    for q, bh, syms in sentences:  # the root holds nothing: always expanded
        add(q, bh, [], 0, syms)
    while heap:
        _, key = heapq.heappop(heap)
        partial, cost = entries[key][3], entries[key][4]
        width = len(options(partial))
        # each option copies the complete part; a finished sentence adds itself
        grown = (width - 1) * cost + (width * 64 if partial is None else 0)
        if len(entries) - 1 + width > max_entries or n_tokens + grown > max_tokens:
            continue  # too big for what is left; a smaller one may still fit
        expand(key)
    return [entries[k][:4] for k in sorted(entries)]


def build_blocks(start: int, rule_offsets: np.ndarray, rule_probs: np.ndarray,
                 rhs_offsets: np.ndarray, rhs_symbols: np.ndarray, *,
                 start_blocks: int = DEFAULT_START_BLOCKS, nt_blocks: int = DEFAULT_NT_BLOCKS,
                 max_height: int = DEFAULT_MAX_HEIGHT,
                 stream_entries: int = DEFAULT_STREAM_ENTRIES,
                 stream_sentence_blocks: int = DEFAULT_STREAM_SENTENCE_BLOCKS,
                 separator: int = 0) -> BlockTables:
    """Block tables of a grammar whose terminals are already mapped to token ids.

    Args:
        start: the start nonterminal.
        rule_offsets: int64 (k + 1,), rules of nonterminal i.
        rule_probs: float64 (n_rules,), each nonterminal's rule probabilities.
        rhs_offsets: int64 (n_rules + 1,).
        rhs_symbols: int32, token id (>= 0) or -(nonterminal + 1).
        start_blocks: budget of the start symbol's fast table (most short
            sentences are one of its blocks).
        nt_blocks: budget of every other nonterminal's fast table.
        max_height: deepest relative depth a block may expand inside.
        stream_entries: budget of the document stream's table.
        stream_sentence_blocks: budget of the start table its sentences begin with.
        separator: token between sentences in the stream's entries.
    """
    if min(start_blocks, nt_blocks, stream_entries, stream_sentence_blocks) < 1 or max_height < 0:
        raise ValueError(f"start_blocks={start_blocks}, nt_blocks={nt_blocks}, stream_entries="
                         f"{stream_entries}, stream_sentence_blocks={stream_sentence_blocks} must "
                         f"be >= 1 and max_height={max_height} >= 0")
    rules = _rules(rule_offsets, rule_probs, rhs_offsets, rhs_symbols)
    k = len(rules)
    fast = [_unroll(rules, nt, start_blocks if nt == start else nt_blocks, max_height)
            for nt in range(k)]
    plain = [[(p, 0, syms) for p, syms in rules[nt]] for nt in range(k)]
    stream = _unroll_stream(rules, _unroll(rules, start, stream_sentence_blocks, max_height),
                            stream_entries, max_height, STREAM_MAX_TOKENS)

    offsets = [0]
    thresholds, others, probs, block_seg, segs, tokens = [], [], [], [], [], []
    run_at: dict[tuple, int] = {}

    def store(run: list) -> int:
        key = tuple(run)
        if key not in run_at:
            run_at[key] = len(tokens)
            tokens.extend(run)
        return run_at[key]

    def store_segments(syms: list) -> int:
        first = len(segs)
        run: list = []
        for s in syms:
            if type(s) is tuple:
                segs.append((store(run), len(run), s[0], s[1], 0))
                run = []
            else:
                run.append(s)
        if run or type(syms[-1]) is not tuple:
            segs.append((store(run), len(run), -1, 0, 1))
        else:  # ends on a nonterminal: a tail call, nothing to resume
            segs[-1] = segs[-1][:4] + (1,)
        return first

    ranges = np.zeros((2 * k, 2), dtype=np.int64)
    for i, blocks in enumerate(plain + fast):  # plain first: fast ones may reuse them
        row = i - k if i >= k else k + i
        if i >= k and len(blocks) == len(plain[row]) and max(b[1] for b in blocks) == 0:
            ranges[row] = ranges[k + row]  # inlines nothing: it is the plain table
            continue
        p = np.array([b[0] for b in blocks])
        thr, oth = alias_table_u64(p)
        thresholds.append(thr)
        others.append(oth + offsets[-1])
        probs.append(p / p.sum())
        block_seg.extend(store_segments(syms) for _, _, syms in blocks)
        ranges[row] = (offsets[-1], offsets[-1] + len(blocks))
        offsets.append(offsets[-1] + len(blocks))

    entries = np.zeros(len(stream), dtype=STREAM_ENTRY_DTYPE)
    sentence_lengths: list[int] = []
    for i, (_, _, done, partial) in enumerate(stream):
        run = [x for sent in done for x in sent + [separator]]
        entries[i] = (store(run), len(run), len(done), len(run) - len(done),
                      -1 if partial is None else store_segments(partial), len(sentence_lengths))
        sentence_lengths.extend(len(sent) for sent in done)
    stream_p = np.array([e[0] for e in stream])
    s_thr, s_other = alias_table_u64(stream_p)
    columns = _aligned_empty(len(stream), STREAM_COLUMN_DTYPE, 64)
    columns["threshold"] = s_thr
    columns["entry"][:, 0] = entries
    columns["entry"][:, 1] = entries[s_other]
    columns["pad"] = 0
    tokens.extend([0] * TOKEN_PAD)
    block_seg_arr = np.array(block_seg, dtype=np.int64)
    other_arr = np.concatenate(others)
    alias = np.zeros(len(block_seg), dtype=ALIAS_DTYPE)
    alias["threshold"] = np.concatenate(thresholds)
    alias["keep"] = block_seg_arr
    alias["other"] = block_seg_arr[other_arr]
    out = BlockTables(
        n_nonterminals=k, start=int(start),
        table_ranges=ranges,
        alias=alias,
        segments=np.array(segs, dtype=SEGMENT_DTYPE),
        tokens=np.array(tokens, dtype=np.int32),
        height=np.array([max(b[1] for b in blocks) for blocks in fast], dtype=np.int32),
        block_segment=block_seg_arr,
        probs=np.concatenate(probs),
        stream_entries=entries, stream_columns=columns,
        stream_sentence_lengths=np.array(sentence_lengths + [0], dtype=np.int32),
        stream_probs=stream_p / stream_p.sum(),
        stream_separator=int(separator),
        stream_max_depth=1 + max(e[1] for e in stream),
        stream_max_sentence=max(sentence_lengths, default=0))
    for a in (out.table_ranges, out.alias, out.segments, out.tokens, out.height,
              out.block_segment, out.probs, out.stream_entries, out.stream_columns,
              out.stream_sentence_lengths, out.stream_probs):
        a.setflags(write=False)
    return out
