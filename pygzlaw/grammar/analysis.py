"""Branching-process analysis of a PCFG: criticality and expected sentence length.

Expanding nonterminal i picks rule r with probability p_r; the rule's rhs holds
some nonterminals (offspring) and terminals (output tokens). That is a
multi-type Galton-Watson process with

    M[i, j] = sum_r p_r * (count of Nj in rhs_r)   expected Nj per expansion of Ni
    t[i]    = sum_r p_r * (count of terminals in rhs_r)

Its spectral radius rho(M) decides termination: rho < 1 (subcritical) means
every derivation is finite and the expected sentence length solves
(I - M) l = t; rho = 1 (critical) means finite derivations with infinite
expected length; rho > 1 (supercritical) means a derivation is infinite with
positive probability. The sampler guards against the last two with its depth
and length limits (discard and resample).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from pygzlaw.grammar.core import Grammar

__all__ = [
    "SupercriticalGrammarWarning", "offspring_matrix", "terminals_per_expansion",
    "spectral_radius", "expected_lengths", "expected_sentence_tokens",
    "termination_probabilities", "warn_if_supercritical", "analyze",
]


class SupercriticalGrammarWarning(UserWarning):
    """The grammar's expected offspring matrix has spectral radius >= 1."""


def _rule_lhs(grammar: Grammar) -> np.ndarray:
    """int64 (n_rules,): the nonterminal each rule rewrites."""
    return np.repeat(np.arange(grammar.n_nonterminals), np.diff(grammar.rule_offsets))


def _symbol_rule(grammar: Grammar) -> np.ndarray:
    """int64 (n_rhs_symbols,): the rule each rhs symbol belongs to."""
    return np.repeat(np.arange(grammar.n_rules), np.diff(grammar.rhs_offsets))


def offspring_matrix(grammar: Grammar) -> np.ndarray:
    """Expected-offspring matrix.

    Returns:
        float64 (n_nonterminals, n_nonterminals): M[i, j] = expected number of
        Nj in one expansion of Ni.
    """
    k = grammar.n_nonterminals
    sym = grammar.rhs_symbols
    rule = _symbol_rule(grammar)
    lhs = _rule_lhs(grammar)[rule]
    is_nt = sym < 0
    m = np.zeros((k, k), dtype=np.float64)
    np.add.at(m, (lhs[is_nt], -sym[is_nt].astype(np.int64) - 1), grammar.rule_probs[rule[is_nt]])
    return m


def terminals_per_expansion(grammar: Grammar) -> np.ndarray:
    """float64 (n_nonterminals,): expected terminals (tokens) emitted directly by one expansion."""
    rule = _symbol_rule(grammar)
    is_t = grammar.rhs_symbols >= 0
    per_rule = np.bincount(rule[is_t], minlength=grammar.n_rules).astype(np.float64)
    return np.bincount(_rule_lhs(grammar), weights=grammar.rule_probs * per_rule,
                       minlength=grammar.n_nonterminals)


def _reachable_block(grammar: Grammar, m: np.ndarray) -> np.ndarray:
    # Breadth-first over M's nonzero pattern (Grammar.reachable walks symbols in Python).
    adj = m > 0
    seen = np.zeros(m.shape[0], dtype=bool)
    seen[grammar.start] = True
    frontier = seen.copy()
    while frontier.any():
        frontier = adj[frontier].any(axis=0) & ~seen
        seen |= frontier
    idx = np.flatnonzero(seen)
    return m[np.ix_(idx, idx)]


def spectral_radius(grammar: Grammar, m: np.ndarray | None = None) -> float:
    """rho(M) over the nonterminals reachable from the start symbol (unitless).

    < 1: subcritical (finite expected length); >= 1: the sampler's guards
    will reject some derivations.
    """
    m = offspring_matrix(grammar) if m is None else m
    block = _reachable_block(grammar, m)
    if block.size == 0:
        return 0.0
    return float(np.max(np.abs(np.linalg.eigvals(block))))


def expected_lengths(grammar: Grammar, m: np.ndarray | None = None) -> np.ndarray:
    """Expected tokens derived from each nonterminal.

    Solves (I - M) l = t, where t = :func:`terminals_per_expansion`. Entries
    are ``inf`` for nonterminals that reach a part of the grammar whose
    spectral radius is >= 1 (there the expectation diverges).

    Returns:
        float64 (n_nonterminals,), in tokens per derivation (separators not counted).
    """
    m = offspring_matrix(grammar) if m is None else m
    k = grammar.n_nonterminals
    t = terminals_per_expansion(grammar)
    out = np.full(k, np.inf)
    # Nonterminals whose descendants form a subcritical system keep a finite l.
    finite = _finite_mean_set(m)
    if finite.any():
        idx = np.flatnonzero(finite)
        sub = m[np.ix_(idx, idx)]
        out[idx] = np.linalg.solve(np.eye(idx.size) - sub, t[idx])
    return out


def _finite_mean_set(m: np.ndarray) -> np.ndarray:
    """bool (k,): nonterminals from which the expected derivation size is finite.

    Bad = members of a strongly connected component with rho >= 1, plus
    everything that can reach one.
    """
    k = m.shape[0]
    adj = m > 0
    reach = adj.copy()
    # Transitive closure (k <= a few hundred for every preset): boolean squaring.
    for _ in range(max(1, math.ceil(math.log2(max(k, 2)))) + 1):
        r = reach.astype(np.float32)  # float matmul: no overflow, counts stay exact enough for > 0
        nxt = reach | ((r @ r) > 0)
        if np.array_equal(nxt, reach):
            break
        reach = nxt
    bad = np.zeros(k, dtype=bool)
    done = np.zeros(k, dtype=bool)
    for i in range(k):
        if done[i]:
            continue
        comp = np.flatnonzero((reach[i] & reach[:, i]) | (np.arange(k) == i))
        done[comp] = True
        if not reach[i, i]:
            continue  # not on a cycle: contributes no growth
        rho = np.max(np.abs(np.linalg.eigvals(m[np.ix_(comp, comp)])))
        if rho >= 1.0 - 1e-12:
            bad[comp] = True
    bad = bad | (reach[:, bad].any(axis=1) if bad.any() else bad)
    return ~bad


def expected_sentence_tokens(grammar: Grammar) -> float:
    """Expected tokens per sentence from the start symbol; ``inf`` when it diverges."""
    return float(expected_lengths(grammar)[grammar.start])


def termination_probabilities(grammar: Grammar, *, max_iter: int = 100_000,
                              tol: float = 1e-13) -> np.ndarray:
    """Probability that a derivation from each nonterminal is finite (extinction probability).

    The smallest fixed point of q_i = sum_r p_r * prod_{Nj in rhs_r} q_j,
    found by iterating from q = 0 (monotone convergence). Equals 1 for
    subcritical grammars; below 1 where the sampler must reject.

    Returns:
        float64 (n_nonterminals,), probabilities in [0, 1].
    """
    sym = grammar.rhs_symbols
    is_nt = sym < 0
    nt_of = np.where(is_nt, -sym.astype(np.int64) - 1, 0)
    starts = grammar.rhs_offsets[:-1]
    q = np.zeros(grammar.n_nonterminals)
    for _ in range(max_iter):
        vals = np.where(is_nt, q[nt_of], 1.0)
        per_rule = np.multiply.reduceat(vals, starts)
        new = np.add.reduceat(grammar.rule_probs * per_rule, grammar.rule_offsets[:-1])
        new = np.minimum(new, 1.0)
        if np.max(np.abs(new - q)) < tol:
            return new
        q = new
    return q


def _iteration_budget(grammar: Grammar) -> int:
    """Fixed-point iterations for the warning/report: about 5e7 symbol visits at most
    (critical grammars converge like 1/n; the estimate is then a lower bound on q)."""
    return int(max(200, min(20_000, 50_000_000 // max(1, grammar.rhs_symbols.size))))


def warn_if_supercritical(grammar: Grammar, stacklevel: int = 2) -> float:
    """Warn (SupercriticalGrammarWarning) when rho(M) >= 1; return rho.

    Args:
        grammar: the grammar about to be sampled.
        stacklevel: passed to ``warnings.warn`` (2 = the caller's line).

    Returns:
        The spectral radius rho(M), unitless.
    """
    rho = spectral_radius(grammar)
    if rho >= 1.0:
        q = float(termination_probabilities(grammar, max_iter=_iteration_budget(grammar))[grammar.start])
        warnings.warn(
            f"grammar is {'critical' if abs(rho - 1.0) < 1e-9 else 'supercritical'}: the "
            f"spectral radius of its expected-offspring matrix is {rho:.4g} >= 1, so the expected "
            f"sentence length is infinite and about {1 - q:.1%} of derivations never terminate. "
            "The sampler's guards reject such sentences and resample (counted in "
            "SampleStats.n_rejected_depth / n_rejected_length). Tune them with "
            "max_depth= (CLI --max-depth; nesting, default 1000 like the research code's "
            "recursion limit) and max_sentence_tokens= (CLI --max-sentence-tokens); every "
            "rejected attempt costs the tokens drawn before a guard "
            "fires, so sampling can be orders of magnitude slower than for a subcritical "
            "grammar, and lower limits reject sooner. "
            "pygzlaw.grammar.analyze(grammar) reports the details.",
            SupercriticalGrammarWarning, stacklevel=stacklevel)
    return rho


def analyze(grammar: Grammar) -> dict:
    """Summary of a grammar's size and branching behaviour (JSON-serialisable).

    Keys: ``n_nonterminals``, ``n_terminals``, ``n_rules``, ``n_rhs_symbols``,
    ``rules_per_nonterminal`` (mean), ``rhs_symbols_per_rule`` (mean),
    ``p_nonterminal`` (fraction of rhs symbols that are nonterminals, the
    start rule included; the paper's construction targets k / (k + T) for
    the other rules), ``n_terminals_used``,
    ``n_unreachable``, ``spectral_radius``, ``criticality``
    ("subcritical" | "critical" | "supercritical"),
    ``expected_sentence_tokens`` (``None`` when infinite),
    ``expected_expansions`` (nonterminal expansions per sentence; ``None``
    when infinite), ``p_terminates`` (probability a derivation from the start
    symbol is finite), ``spec`` and ``seed`` when known.
    """
    m = offspring_matrix(grammar)
    rho = spectral_radius(grammar, m)
    lengths = expected_lengths(grammar, m)
    n_rhs = int(grammar.rhs_symbols.size)
    n_nt_syms = int(np.count_nonzero(grammar.rhs_symbols < 0))
    used = np.unique(grammar.rhs_symbols[grammar.rhs_symbols >= 0]).size
    exp_tokens = float(lengths[grammar.start])
    # Expected expansions: same system with one expansion per node, (I - M) e = 1.
    finite = _finite_mean_set(m)
    expansions = None
    if finite[grammar.start]:
        idx = np.flatnonzero(finite)
        e = np.linalg.solve(np.eye(idx.size) - m[np.ix_(idx, idx)], np.ones(idx.size))
        expansions = float(e[np.searchsorted(idx, grammar.start)])
    if rho < 1.0 - 1e-9:
        crit = "subcritical"
    elif rho <= 1.0 + 1e-9:
        crit = "critical"
    else:
        crit = "supercritical"
    out = {
        "n_nonterminals": grammar.n_nonterminals,
        "n_terminals": grammar.n_terminals,
        "n_rules": grammar.n_rules,
        "n_rhs_symbols": n_rhs,
        "rules_per_nonterminal": grammar.n_rules / grammar.n_nonterminals,
        "rhs_symbols_per_rule": n_rhs / grammar.n_rules,
        "p_nonterminal": n_nt_syms / n_rhs,
        "n_terminals_used": int(used),
        "n_unreachable": int(np.count_nonzero(~grammar.reachable())),
        "spectral_radius": rho,
        "criticality": crit,
        "expected_sentence_tokens": exp_tokens if math.isfinite(exp_tokens) else None,
        "expected_expansions": expansions,
        "p_terminates": float(termination_probabilities(
            grammar, max_iter=_iteration_budget(grammar))[grammar.start]),
    }
    if grammar.spec is not None:
        out["spec"] = dict(zip(("n_nonterminals", "n_terminals", "rhs_max_options", "rhs_max_len"),
                               grammar.spec.as_tuple()))
    if grammar.seed is not None:
        out["seed"] = grammar.seed
    return out
