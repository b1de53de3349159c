"""Grammars: the paper's random PCFGs, presets, import/export, and analysis."""
from pygzlaw.grammar.analysis import (
    SupercriticalGrammarWarning,
    analyze,
    expected_sentence_tokens,
    offspring_matrix,
    spectral_radius,
    termination_probabilities,
    warn_if_supercritical,
)
from pygzlaw.grammar.core import (
    MAIN_PRESETS,
    PRESETS,
    Grammar,
    GrammarSpec,
    preset,
    random_pcfg,
)
from pygzlaw.grammar.json_io import (
    from_json,
    grammar_from_dict,
    grammar_to_dict,
    load,
    save,
    to_json,
)
from pygzlaw.grammar.nltk_io import (
    GrammarWarning,
    from_nltk,
    from_nltk_text,
    load_nltk,
    save_nltk,
    to_nltk,
    to_nltk_text,
    to_pcfg_package,
)

__all__ = [
    "Grammar", "GrammarSpec", "PRESETS", "MAIN_PRESETS", "preset", "random_pcfg",
    # import / export
    "to_nltk_text", "from_nltk_text", "save_nltk", "load_nltk", "to_nltk", "from_nltk",
    "to_pcfg_package", "GrammarWarning", "grammar_to_dict", "grammar_from_dict", "to_json", "from_json",
    "save", "load",
    # analysis
    "SupercriticalGrammarWarning", "offspring_matrix", "spectral_radius",
    "expected_sentence_tokens", "termination_probabilities", "warn_if_supercritical", "analyze",
]
