"""Derivation blocks (pygzlaw/sampler/blocks.py) sample the grammar's own
distribution: exact identities on the tables, exact guard semantics, and
token-exact agreement of the native sampler with the reference under any budget."""
import math
import warnings

import numpy as np
import pytest

from pygzlaw.grammar import Grammar, random_pcfg
from pygzlaw.sampler import Sampler, _native_grammar
from pygzlaw.sampler.compile import compile_grammar
from pygzlaw.sampler.reference import sample_docs_reference, uses_stream

SUBCRITICAL = ["main-1", "main-2", "main-3", "main-4", "main-5", "main-6", "vocab300-2", "neareq-2"]


def realised_probs(b, lo, hi):
    """Block probabilities the alias columns [lo, hi) actually give."""
    m = hi - lo
    by_segment = {int(b.block_segment[j]): j for j in range(lo, hi)}
    got = np.zeros(m)
    for j in range(lo, hi):
        keep = int(b.alias[j]["threshold"]) / 2**64 if m > 1 else 1.0
        got[j - lo] += keep / m
        got[by_segment[int(b.alias[j]["other"])] - lo] += (1 - keep) / m
    return got


@pytest.mark.parametrize("preset", ["main-2", "main-3", "vocab300-3"])
def test_every_table_is_a_distribution_and_its_alias_realises_it(preset):
    b = compile_grammar(random_pcfg(preset, 0)).blocks
    for nt in range(b.n_nonterminals):
        for fast in (True, False):
            lo, hi = b.table(nt, fast)
            assert hi > lo
            np.testing.assert_allclose(b.probs[lo:hi].sum(), 1.0, rtol=1e-12)
            np.testing.assert_allclose(realised_probs(b, lo, hi), b.probs[lo:hi], atol=1e-12)


def expected_token_counts(t):
    """C[X, v] = E[number of token v in a derivation from X], rule by rule:
    C = (I - M)^-1 R with M the expected-children matrix and R the expected
    terminal counts of one rule choice."""
    k, vocab = len(t.rule_offsets) - 1, t.vocab_size + 1
    m, r = np.zeros((k, k)), np.zeros((k, vocab))
    for x in range(k):
        for rule in range(t.rule_offsets[x], t.rule_offsets[x + 1]):
            p = t.rule_probs[rule] / t.rule_probs[t.rule_offsets[x]:t.rule_offsets[x + 1]].sum()
            for s in t.rhs_symbols[t.rhs_offsets[rule]:t.rhs_offsets[rule + 1]]:
                if s >= 0:
                    r[x, s] += p
                else:
                    m[x, -s - 1] += p
    return np.linalg.solve(np.eye(k) - m, r)


@pytest.mark.parametrize("preset", SUBCRITICAL)
def test_blocks_preserve_expected_token_counts(preset):
    """Each table's blocks, with their pending nonterminals expanded in
    expectation, give exactly the expected token counts of rule-by-rule
    sampling: a block with a wrong probability, a lost or duplicated token or
    pending nonterminal breaks this identity."""
    t = compile_grammar(random_pcfg(preset, 0))
    b = t.blocks
    c = expected_token_counts(t)
    for nt in range(b.n_nonterminals):
        for fast in (True, False):
            lo, hi = b.table(nt, fast)
            got = np.zeros(c.shape[1])
            for j in range(lo, hi):
                for run, child, _ in b.block(j):
                    np.add.at(got, list(run), b.probs[j])
                    if child >= 0:
                        got += b.probs[j] * c[child]
            np.testing.assert_allclose(got, c[nt], rtol=1e-9, atol=1e-12)


def test_budgets_bound_the_tables_and_one_means_plain():
    g = random_pcfg("main-4", 0)
    plain = compile_grammar(g, start_blocks=1, nt_blocks=1).blocks
    for nt in range(plain.n_nonterminals):
        assert plain.table(nt, True)[1] - plain.table(nt, True)[0] == \
            plain.table(nt, False)[1] - plain.table(nt, False)[0]
    assert plain.height.max() == 0
    big = compile_grammar(g, start_blocks=500, nt_blocks=40).blocks
    lo, hi = big.table(big.start, True)
    assert 100 < hi - lo <= 500
    for nt in range(big.n_nonterminals):
        lo, hi = big.table(nt, True)
        assert hi - lo <= max(40, len(range(*plain.table(nt, False)))) or nt == big.start
    with pytest.raises(ValueError, match="start_blocks"):
        compile_grammar(g, start_blocks=0)
    with pytest.raises(ValueError, match="stream_entries"):
        compile_grammar(g, stream_entries=0)


@pytest.mark.parametrize("preset", SUBCRITICAL)
def test_stream_table_is_a_distribution_over_sentence_sequences(preset):
    """The stream's entries partition the document stream: probabilities sum
    to 1 and the expected number of tokens per entry, partial sentences
    expanded in expectation, equals E[complete sentences] * (E[len] + 1) plus
    the partial's share (a renewal identity that a wrong entry breaks)."""
    t = compile_grammar(random_pcfg(preset, 0))
    b = t.blocks
    c = expected_token_counts(t).sum(axis=1)  # E[tokens] from each nonterminal
    e_len = c[t.start]
    np.testing.assert_allclose(b.stream_probs.sum(), 1.0, rtol=1e-12)
    p = b.stream_probs
    complete = b.stream_entries["n_complete"].astype(float)
    partial = b.stream_entries["partial"] >= 0
    # tokens an entry accounts for: its run (sentences + separators) and, for a
    # partial sentence, its expected length plus its separator
    partial_tokens = np.zeros(len(p))
    segs = b.segments
    for i in np.flatnonzero(partial):
        j = int(b.stream_entries["partial"][i])
        while True:
            partial_tokens[i] += segs["length"][j] + (c[segs["nt"][j]] if segs["nt"][j] >= 0 else 0)
            if segs["last"][j]:
                break
            j += 1
    tokens = b.stream_entries["length"] + partial_tokens + partial
    sentences = complete + partial
    # Wald: E[tokens per entry] = E[sentences per entry] * (E[len] + 1)
    np.testing.assert_allclose((p * tokens).sum(), (p * sentences).sum() * (e_len + 1), rtol=1e-9)
    lens = b.stream_sentence_lengths
    assert b.stream_max_sentence == lens.max()
    assert np.all(b.stream_entries["length"] == [
        sum(lens[s:s + n]) + n for s, n in zip(b.stream_entries["sentences"], complete.astype(int))])


def test_stream_table_is_used_only_where_the_guards_allow():
    b = compile_grammar(random_pcfg("main-3", 0)).blocks
    assert uses_stream(b, 0, 1000, 1 << 20)
    assert not uses_stream(b, 0, b.stream_max_depth - 1, 1 << 20)
    assert not uses_stream(b, 0, 1000, b.stream_max_sentence - 1)
    assert not uses_stream(b, 7, 1000, 1 << 20)


def sampler_with_budgets(g, doc_tokens, seed, **budgets):
    s = Sampler(g, doc_tokens, seed=seed, max_depth=budgets.pop("max_depth", 1000),
                max_sentence_tokens=budgets.pop("max_len", 1 << 20), dtype=np.int32)
    s.tables = compile_grammar(g, **budgets)
    s._native = _native_grammar(s.tables)
    return s


@pytest.mark.parametrize("budgets", [
    dict(start_blocks=1, nt_blocks=1, stream_entries=1, stream_sentence_blocks=1),
    dict(start_blocks=7, nt_blocks=3, max_height=1, stream_entries=5, stream_sentence_blocks=2),
    dict(start_blocks=300, nt_blocks=50, max_height=3, stream_entries=200)])
@pytest.mark.parametrize("preset", ["main-1", "main-3", "neareq-3"])
@pytest.mark.parametrize("max_depth,max_len", [(12, 400), (3, 400), (12, 5)])
def test_native_equals_reference_under_any_budget(preset, budgets, max_depth, max_len):
    g = random_pcfg(preset, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = sampler_with_budgets(g, 48, 5, max_depth=max_depth, max_len=max_len, **budgets)
    got, stats = s.sample(10, first_doc=2)
    want, counts = sample_docs_reference(s.tables, s.seed, 2, 10, 48, max_depth=max_depth,
                                         max_sentence_tokens=max_len)
    np.testing.assert_array_equal(got, want)
    assert (stats.n_sentences, stats.n_rejected_depth, stats.n_rejected_length) == (
        counts["n_sentences"], counts["n_rejected_depth"], counts["n_rejected_length"])


def depth_acceptance(p_branch: float, max_depth: int) -> float:
    """P(tree depth <= max_depth) for S -> S S [p] | 'a' | 'b' (depth 1 = a leaf)."""
    q = 1.0 - p_branch
    for _ in range(max_depth - 1):
        q = (1.0 - p_branch) + p_branch * q * q
    return q


@pytest.mark.parametrize("max_depth", [1, 2, 4, 7, 12])
def test_depth_guard_is_exact_with_deep_blocks(max_depth):
    """Blocks inline up to 8 levels of S -> S S; the sampler must still reject
    exactly the sentences whose tree is deeper than max_depth, so the
    acceptance rate equals the closed form."""
    g = Grammar.from_rules({"S": [(["S", "S"], 0.45), (["a"], 0.35), (["b"], 0.2)]}, start="S")
    s = Sampler(g, 64, seed=21, max_depth=max_depth, threads=2)
    assert s.tables.blocks.height.max() == 8  # the fast table nests deeper than some guards
    _, st = s.sample(4000)
    attempts = st.n_sentences + st.n_rejected
    q = depth_acceptance(0.45, max_depth)
    se = math.sqrt(q * (1 - q) / attempts)
    assert abs(st.n_sentences / attempts - q) < 5 * se + 1e-12, (st, q)
    assert st.n_rejected_length == 0


@pytest.mark.parametrize("rules", [[(["a"], 1.0)], [(["a"], 0.999), (["b"], 0.001)]])
def test_near_deterministic_grammar_entries_stay_short(rules):
    """The most probable stream entry would otherwise swallow the whole budget
    (a one-sentence grammar took ~10 s to compile)."""
    from pygzlaw.sampler.blocks import STREAM_MAX_ENTRY_TOKENS

    g = Grammar.from_rules({"S": rules}, start="S")
    s = Sampler(g, 40, seed=2, dtype=np.int32)
    assert s.tables.blocks.stream_entries["length"].max() <= STREAM_MAX_ENTRY_TOKENS + 2
    got, _ = s.sample(5)
    want, _ = sample_docs_reference(s.tables, s.seed, 0, 5, 40, max_depth=1000,
                                    max_sentence_tokens=1 << 20)
    np.testing.assert_array_equal(got, want)
    assert set(np.unique(got)) <= {0, 1, 2} and np.all(got[:, 1::2] == 0)
