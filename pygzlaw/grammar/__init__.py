"""Grammars: the paper's random PCFGs, presets, import/export, and analysis."""
from pygzlaw.grammar.core import (
    MAIN_PRESETS,
    PRESETS,
    Grammar,
    GrammarSpec,
    preset,
    random_pcfg,
)

__all__ = ["Grammar", "GrammarSpec", "PRESETS", "MAIN_PRESETS", "preset", "random_pcfg"]
