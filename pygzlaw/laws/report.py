"""Compute-optimal allocation for any fitted law, as the CLI and the service report it."""
from __future__ import annotations

import numpy as np

__all__ = ["allocation_report"]


def allocation_report(law, budget_flops, *, h=None, epsilon=None, level: float = 0.95,
                      h_name: str = "h") -> dict:
    """Allocation of ``budget_flops`` under a ChinchillaLaw or a DataDependentLaw.

    Args:
        law: a fitted law (``law.kind`` is "chinchilla" or "data_dependent").
        budget_flops: FLOP budget(s), float64 array.
        h: gzip compressibility; required by data-dependent laws, refused by the others.
        epsilon: override of a data-dependent law's ε.
        level: coverage of the bootstrap intervals (plain laws with replicates).
        h_name: how the caller spells h, for error messages ("--gzip" on the CLI).

    Returns:
        {"law": name, "allocation": Allocation, ["h", "epsilon"], ["level",
        "intervals": {"n_params"|"n_tokens"|"tokens_per_param"|"loss": (lo, hi)}]}
        with float64 arrays of the budget's shape.

    Raises:
        ValueError: h missing for a data-dependent law, or given for a plain one.
    """
    c = np.asarray(budget_flops, dtype=np.float64)
    out: dict = {"law": law.name}
    if law.kind == "data_dependent":
        if h is None:
            raise ValueError(f"law {law.name!r} is data-dependent; give {h_name} (gzip compressibility H)")
        out["allocation"] = law.allocate(c, h, epsilon=epsilon)
        out.update(h=h, epsilon=law.epsilon if epsilon is None else epsilon)
        return out
    if h is not None:
        raise ValueError(f"law {law.name!r} is a plain Chinchilla law; {h_name} needs a data-dependent law")
    out["allocation"] = law.allocate(c)
    if law.bootstrap is not None:
        out["level"] = level
        out["intervals"] = law.allocate_interval(c, level=level)
    return out
