"""Statistical equivalence with the ``pcfg`` package (the research code's sampler).

On subcritical grammars both samplers draw from the same distribution over
sentences, so unigram and sentence-length distributions must agree: two-sample
chi-square (and KS for lengths) at fixed seeds, significance 1e-3. A power
check shows the same tests reject a slightly perturbed grammar.
"""
import math
import random
import warnings

import numpy as np
import pytest
from scipy import stats

from pygzlaw.grammar import (
    Grammar,
    SupercriticalGrammarWarning,
    analyze,
    random_pcfg,
    termination_probabilities,
    to_pcfg_package,
)
from pygzlaw.sampler import Sampler, sample_sentences

ALPHA = 1e-3
N_SENTENCES = 20_000
# Subcritical (rho < 0.8) grammars, so pcfg's recursion never hits its limit.
CASES = [("main-3", 0), ("main-4", 2), ("main-5", 0), ("main-6", 0), ("vocab300-2", 1),
         ("neareq-2", 1)]


def pcfg_sentences(g: Grammar, n: int, seed: int) -> list[np.ndarray]:
    """n sentences from pcfg.PCFG.generate, as arrays of terminal indices."""
    index = {name: i for i, name in enumerate(g.terminal_names)}
    random.seed(seed)  # pcfg draws with the random module
    return [np.array([index[w] for w in s.split()], dtype=np.int64)
            for s in to_pcfg_package(g).generate(n)]


def our_sentences(g: Grammar, n: int, seed: int, separator="reserve") -> list[np.ndarray]:
    tokens, offsets, st = sample_sentences(g, n, seed=seed, separator=separator)
    assert st.n_sentences == n and st.n_rejected == 0
    shift = 1 if separator == "reserve" else 0
    terms = tokens.astype(np.int64) - shift
    return [terms[a:b] for a, b in zip(offsets[:-1], offsets[1:])]


def chi2_two_sample(counts_a: np.ndarray, counts_b: np.ndarray, min_expected: float = 5.0) -> float:
    """p-value of a 2 x K contingency chi-square; sparse columns pooled into one."""
    table = np.vstack([counts_a, counts_b]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    expected_min = table.sum(axis=0) * min(table.sum(axis=1)) / table.sum()
    small = expected_min < min_expected
    if small.any():
        table = np.hstack([table[:, ~small], table[:, small].sum(axis=1, keepdims=True)])
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table, correction=False)[1])


def compare(g: Grammar, ours: list[np.ndarray], theirs: list[np.ndarray]) -> dict:
    v = g.n_terminals
    uni_a = np.bincount(np.concatenate(ours), minlength=v)
    uni_b = np.bincount(np.concatenate(theirs), minlength=v)
    len_a = np.array([s.size for s in ours])
    len_b = np.array([s.size for s in theirs])
    top = max(len_a.max(), len_b.max()) + 1
    return {
        "unigram": chi2_two_sample(uni_a, uni_b),
        "length_chi2": chi2_two_sample(np.bincount(len_a, minlength=top),
                                       np.bincount(len_b, minlength=top)),
        "length_ks": float(stats.ks_2samp(len_a, len_b).pvalue),
        "first_token": chi2_two_sample(np.bincount([s[0] for s in ours], minlength=v),
                                       np.bincount([s[0] for s in theirs], minlength=v)),
    }


@pytest.mark.parametrize("name,seed", CASES)
def test_same_distribution_as_pcfg(name, seed):
    g = random_pcfg(name, seed)
    assert analyze(g)["spectral_radius"] < 0.9
    pvalues = compare(g, our_sentences(g, N_SENTENCES, seed=100 + seed),
                      pcfg_sentences(g, N_SENTENCES, seed=200 + seed))
    assert min(pvalues.values()) > ALPHA, pvalues


def test_research_separator_same_distribution():
    g = random_pcfg("main-4", 2)
    pvalues = compare(g, our_sentences(g, N_SENTENCES, seed=3, separator="research"),
                      pcfg_sentences(g, N_SENTENCES, seed=4))
    assert min(pvalues.values()) > ALPHA, pvalues


def _perturbed(g: Grammar, shift: float) -> Grammar:
    """Move probability `shift` from the start rule S -> N0 to S -> N1."""
    probs = g.rule_probs.copy()
    r0 = int(g.rule_offsets[g.start])
    probs[r0] -= shift
    probs[r0 + 1] += shift
    return Grammar(nonterminal_names=g.nonterminal_names, terminal_names=g.terminal_names,
                   start=g.start, rule_offsets=g.rule_offsets, rule_probs=probs,
                   rhs_offsets=g.rhs_offsets, rhs_symbols=g.rhs_symbols)


def test_tests_have_power():
    # The same machinery must reject a grammar whose start rule differs by 0.03.
    g = random_pcfg("main-4", 2)
    pvalues = compare(g, our_sentences(_perturbed(g, 0.03), N_SENTENCES, seed=1),
                      pcfg_sentences(g, N_SENTENCES, seed=2))
    assert min(pvalues.values()) < 1e-6, pvalues


def pack_docs(sentences: list[np.ndarray], n_docs: int, doc_tokens: int) -> np.ndarray:
    """The paper's packing, filling exactly doc_tokens: separator 0 between sentences,
    the overflowing sentence cut. Terminal t is token t + 1 (separator reserved)."""
    docs = np.zeros((n_docs, doc_tokens), dtype=np.int64)
    it = iter(sentences)
    for d in range(n_docs):
        pos = 0
        while pos < doc_tokens:
            if pos > 0:
                pos += 1  # separator (already 0)
                if pos >= doc_tokens:
                    break
            s = next(it) + 1
            take = min(s.size, doc_tokens - pos)
            docs[d, pos:pos + take] = s[:take]
            pos += take
    return docs


def test_packed_documents_match_pcfg_packing():
    g = random_pcfg("main-3", 0)
    n_docs, doc_tokens = 600, 64
    ours = Sampler(g, doc_tokens, seed=11).sample(n_docs)[0].astype(np.int64)
    theirs = pack_docs(pcfg_sentences(g, 20_000, seed=12), n_docs, doc_tokens)
    vocab = g.n_terminals + 1
    p_unigram = chi2_two_sample(np.bincount(ours.ravel(), minlength=vocab),
                                np.bincount(theirs.ravel(), minlength=vocab))
    seps_a = (ours == 0).sum(axis=1)
    seps_b = (theirs == 0).sum(axis=1)
    p_seps = chi2_two_sample(np.bincount(seps_a, minlength=doc_tokens),
                             np.bincount(seps_b, minlength=doc_tokens))
    assert p_unigram > ALPHA and p_seps > ALPHA, (p_unigram, p_seps)
    assert np.all(ours[:, 0] != 0)  # documents never start with a separator


def test_supercritical_grammar_terminates_and_reports_rejections():
    g = random_pcfg("neareq-3", 0)  # rho ~ 1.19: ~24% of derivations never end
    q = float(termination_probabilities(g)[g.start])
    assert 0.5 < q < 0.95
    with pytest.warns(SupercriticalGrammarWarning):
        s = Sampler(g, 256, seed=3, max_sentence_tokens=4096, threads=2)
    docs, st = s.sample(300)
    assert docs.shape == (300, 256) and st.n_rejected > 0
    attempts = st.n_sentences + st.n_rejected
    se = math.sqrt(q * (1 - q) / attempts)
    # every infinite derivation is rejected; finite ones longer than the guards rarely are
    assert (1 - q) - 5 * se < st.rejection_rate < (1 - q) + 5 * se + 0.03, (st, q)
    assert st.to_dict()["rejection_rate"] == st.rejection_rate
    # the depth guard alone also terminates (tiny max_depth rejects almost everything deep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupercriticalGrammarWarning)
        shallow = Sampler(g, 64, seed=3, max_depth=8, max_sentence_tokens=1 << 20)
    _, st2 = shallow.sample(50)
    assert st2.n_rejected_depth > 0


def test_pcfg_package_fails_where_we_reject():
    # What the guards replace: the research sampler recurses until Python gives up.
    g = random_pcfg("neareq-4", 0)  # rho ~ 3.6, P(finite) ~ 0.09
    random.seed(0)
    gen = to_pcfg_package(g).generate(50)
    with pytest.raises(RecursionError):
        for _ in gen:
            pass
