"""Branching-process analysis: hand-computed tiny grammars and Monte-Carlo checks."""
import json
import math
import warnings

import numpy as np
import pytest

from pygzlaw.grammar import (
    MAIN_PRESETS,
    SupercriticalGrammarWarning,
    analyze,
    expected_sentence_tokens,
    from_nltk_text,
    offspring_matrix,
    random_pcfg,
    spectral_radius,
    termination_probabilities,
    warn_if_supercritical,
)
from pygzlaw.grammar.analysis import expected_lengths


def binary(p: float):
    """S -> S S [p] | 'a' [1 - p]: rho = 2p, E[len] = (1 - p) / (1 - 2p), q = min(1, (1-p)/p)."""
    return from_nltk_text(f"S -> S S [{p!r}] | 'a' [{1 - p!r}]\n")


@pytest.mark.parametrize("p", [0.1, 0.3, 0.45])
def test_binary_subcritical(p):
    g = binary(p)
    assert spectral_radius(g) == pytest.approx(2 * p, rel=1e-12)
    assert expected_sentence_tokens(g) == pytest.approx((1 - p) / (1 - 2 * p), rel=1e-12)
    assert termination_probabilities(g)[0] == pytest.approx(1.0, abs=1e-9)
    a = analyze(g)
    assert a["criticality"] == "subcritical"
    assert a["expected_expansions"] == pytest.approx(1 / (1 - 2 * p), rel=1e-12)


@pytest.mark.parametrize("p", [0.6, 0.75])
def test_binary_supercritical(p):
    g = binary(p)
    assert spectral_radius(g) == pytest.approx(2 * p)
    assert math.isinf(expected_sentence_tokens(g))
    assert termination_probabilities(g)[0] == pytest.approx((1 - p) / p, abs=1e-9)
    a = analyze(g)
    assert a["criticality"] == "supercritical" and a["expected_sentence_tokens"] is None
    assert a["p_terminates"] == pytest.approx((1 - p) / p, abs=1e-9)


def test_two_type_hand_computed():
    # A -> B 'x' [0.5] | 'y' [0.5];  B -> A A [0.25] | 'z' [0.75];  S -> A [1]
    g = from_nltk_text("%start S\nA -> B 'x' [0.5] | 'y' [0.5]\nB -> A A [0.25] | 'z' [0.75]\n"
                       "S -> A [1]\n")
    m = offspring_matrix(g)
    np.testing.assert_array_equal(m, [[0, 0.5, 0], [0.5, 0, 0], [1, 0, 0]])
    assert spectral_radius(g) == pytest.approx(0.5)
    # l_A = 0.5 (l_B + 1) + 0.5,  l_B = 0.5 l_A + 0.75  =>  l_A = 11/6, l_B = 5/3
    np.testing.assert_allclose(expected_lengths(g), [11 / 6, 5 / 3, 11 / 6], rtol=1e-12)


def test_critical_grammar():
    g = binary(0.5)
    assert spectral_radius(g) == pytest.approx(1.0)
    assert math.isinf(expected_sentence_tokens(g))
    assert analyze(g)["criticality"] == "critical"
    with pytest.warns(SupercriticalGrammarWarning, match="critical"):
        warn_if_supercritical(g)


def test_finite_part_of_a_supercritical_grammar():
    g = from_nltk_text("S -> A [0.5] | B [0.5]\nA -> A A [0.7] | 'a' [0.3]\nB -> 'b' 'b' [1]\n")
    lengths = expected_lengths(g)
    assert math.isinf(lengths[0]) and math.isinf(lengths[1]) and lengths[2] == 2.0
    assert termination_probabilities(g)[0] == pytest.approx(0.5 + 0.5 * 3 / 7, abs=1e-9)


def test_warning_message_and_return_value():
    g = binary(0.6)
    with pytest.warns(SupercriticalGrammarWarning) as rec:
        rho = warn_if_supercritical(g)
    assert rho == pytest.approx(1.2)
    msg = str(rec[0].message)
    for needle in ("1.2", "max_depth", "max_sentence_tokens", "reject", "33.3%"):
        assert needle in msg
    assert rec[0].filename == __file__  # stacklevel points at the caller


def test_no_warning_for_subcritical():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in MAIN_PRESETS:
            assert warn_if_supercritical(random_pcfg(name, 0)) < 1


@pytest.mark.parametrize("name", ["main-3", "main-6", "vocab300-6"])
def test_offspring_matrix_matches_brute_force(name):
    g = random_pcfg(name, 2)
    k = g.n_nonterminals
    want = np.zeros((k, k))
    for i in range(k):
        for p, rhs in g.rules_of(i):
            for s in rhs:
                if s < 0:
                    want[i, -s - 1] += p
    np.testing.assert_allclose(offspring_matrix(g), want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name,seed", [("main-3", 0), ("main-5", 0), ("vocab300-4", 1)])
def test_expected_length_matches_monte_carlo(name, seed):
    from pygzlaw.sampler import sample_sentences

    g = random_pcfg(name, seed)
    _, offsets, stats = sample_sentences(g, 200_000, seed=99)
    assert stats.n_rejected == 0
    lengths = np.diff(offsets)
    se = lengths.std(ddof=1) / math.sqrt(lengths.size)
    assert abs(lengths.mean() - expected_sentence_tokens(g)) < 5 * se


def test_termination_probability_matches_sampler_rejections():
    from pygzlaw.sampler import sample_sentences

    g = binary(0.6)  # q = 2/3: one attempt in three never ends and must be rejected
    with pytest.warns(SupercriticalGrammarWarning):
        warn_if_supercritical(g)
    _, _, stats = sample_sentences(g, 20_000, seed=5, max_depth=200, max_sentence_tokens=4096)
    attempts = stats.n_sentences + stats.n_rejected
    rate = stats.n_rejected / attempts
    se = math.sqrt((1 / 3) * (2 / 3) / attempts)
    assert abs(rate - 1 / 3) < 5 * se + 0.005  # + finite trees cut by the guards (rare)


def test_analyze_report():
    g = random_pcfg("main-4", 0)
    a = analyze(g)
    json.dumps(a)  # serialisable
    assert a["n_nonterminals"] == 31 and a["n_terminals"] == 400
    assert a["n_rules"] == g.n_rules and a["n_rhs_symbols"] == g.rhs_symbols.size
    assert a["criticality"] == "subcritical" and 0 <= a["spectral_radius"] < 1
    assert a["spec"]["rhs_max_len"] == 8 and a["seed"] == 0
    assert 0 < a["n_terminals_used"] <= 400 and a["n_unreachable"] == 0
    assert a["expected_sentence_tokens"] == pytest.approx(expected_sentence_tokens(g))


def test_unreachable_part_does_not_count():
    # B is supercritical but the start symbol never reaches it
    g = from_nltk_text("S -> A [1]\nA -> 'a' [1]\nB -> B B [1]\n", allow_unreachable=True)
    assert spectral_radius(g) == 0.0 and expected_sentence_tokens(g) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_supercritical(g)
    assert analyze(g)["n_unreachable"] == 1
