"""Scaling-law fitting, allocation and the scaling-law family.

Public API:
    forms: ChinchillaParams, chinchilla_loss, HOFFMANN_PARAMS, EPOCH_PARAMS, OvertrainParams,
        overtrain_loss, ErrorParams, downstream_error, DataConstrainedParams, data_constrained_loss
    fitting: fit_chinchilla (Approach 3, vectorised multi-start), bootstrap_chinchilla, FitResult,
        ConvergenceError, isoflop_analysis (Approach 2)
    laws: ChinchillaLaw (predict / allocate / intervals / JSON), DataDependentLaw, fit_data_dependent,
        regress_params
    allocation: compute_optimal, allocate, Allocation
    family: fit_overtrain, fit_error_law, qqt_error, combine_pools, best_filtering_level, fit_qqt, Pool
    data-constrained: fit_data_constrained -> DataConstrainedFit (bootstrap, bound warnings, profiles),
        FitWarning
    identifiability: identifiability_report -> IdentifiabilityReport (also ChinchillaLaw.identifiability),
        NotIdentifiableError
    other kinds as laws: FamilyLaw (overtrain, error, data_constrained, qqt, isoflop), fit_from_file
    constraints: Constraint (tie alpha=beta, fix parameters; fit_chinchilla(tie=, fix=))
    io: read_points, load_law, save_law
    diagnostics: leave_one_out, holdout_by_compute, flag_outliers

Example:
    >>> from pygzlaw.laws import ChinchillaLaw
    >>> law = ChinchillaLaw.fit(n_params, n_tokens, loss, n_boot=1000)   # doctest: +SKIP
    >>> law.allocate(1e21).n_params                                      # doctest: +SKIP
"""
from pygzlaw.laws.allocate import Allocation, allocate, compute_optimal, frontier_exponents
from pygzlaw.laws.data_constrained import DataConstrainedFit, FitWarning, fit_data_constrained
from pygzlaw.laws.family_law import FamilyLaw, fit_from_file
from pygzlaw.laws.identify import IdentifiabilityReport, NotIdentifiableError, identifiability_report
from pygzlaw.laws.diagnostics import HoldoutReport, flag_outliers, holdout_by_compute, leave_one_out
from pygzlaw.laws.data_dependent import (DataDependentLaw, Regression, fit_data_dependent, regress_params,
                                         regress_replicates)
from pygzlaw.laws.family import (Pool, best_filtering_level, combine_pools, fit_error_law, fit_overtrain, fit_qqt,
                                 qqt_error)
from pygzlaw.laws.fit import Constraint, ConvergenceError, FitResult, bootstrap_chinchilla, fit_chinchilla, make_grid
from pygzlaw.laws.forms import (EPOCH_PARAMS, HOFFMANN_PARAMS, MUENNIGHOFF_PARAMS, ChinchillaParams,
                                DataConstrainedParams, ErrorParams, OvertrainParams, chinchilla_loss,
                                data_constrained_loss, downstream_error, effective_params, effective_tokens,
                                overtrain_loss)
from pygzlaw.laws.io import load_law, read_points, save_law
from pygzlaw.laws.isoflop import IsoflopResult, isoflop_analysis
from pygzlaw.laws.law import ChinchillaLaw

__all__ = [
    "Allocation", "allocate", "compute_optimal", "frontier_exponents",
    "DataDependentLaw", "Regression", "fit_data_dependent", "regress_params", "regress_replicates",
    "Pool", "best_filtering_level", "combine_pools", "fit_data_constrained", "fit_error_law", "fit_overtrain",
    "fit_qqt", "qqt_error", "DataConstrainedFit", "FitWarning", "FamilyLaw", "fit_from_file",
    "IdentifiabilityReport", "NotIdentifiableError", "identifiability_report", "Constraint",
    "ConvergenceError", "FitResult", "bootstrap_chinchilla", "fit_chinchilla", "make_grid",
    "EPOCH_PARAMS", "HOFFMANN_PARAMS", "MUENNIGHOFF_PARAMS", "ChinchillaParams", "DataConstrainedParams",
    "ErrorParams", "OvertrainParams", "chinchilla_loss", "data_constrained_loss", "downstream_error",
    "effective_params", "effective_tokens", "overtrain_loss",
    "load_law", "read_points", "save_law", "IsoflopResult", "isoflop_analysis", "ChinchillaLaw",
    "HoldoutReport", "flag_outliers", "holdout_by_compute", "leave_one_out",
]
