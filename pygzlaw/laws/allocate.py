"""Compute-optimal allocation under a Chinchilla law (C = 6 N D)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pygzlaw.laws.forms import ChinchillaParams, as_float64, chinchilla_loss

__all__ = ["Allocation", "compute_optimal", "allocate", "frontier_exponents"]


@dataclass(frozen=True)
class Allocation:
    """The compute-optimal split of a budget.

    Attributes (float64 arrays of the budget's shape, or floats for a scalar budget):
        budget_flops: training compute C (FLOPs).
        n_params: N_opt (parameters).
        n_tokens: D_opt (tokens).
        tokens_per_param: D_opt / N_opt.
        loss: predicted loss at (N_opt, D_opt) (nats/token).
    """

    budget_flops: np.ndarray
    n_params: np.ndarray
    n_tokens: np.ndarray
    tokens_per_param: np.ndarray
    loss: np.ndarray

    def to_dict(self) -> dict:
        def conv(v):
            a = np.asarray(v)
            return float(a) if a.ndim == 0 else a.tolist()
        return {k: conv(getattr(self, k)) for k in ("budget_flops", "n_params", "n_tokens",
                                                    "tokens_per_param", "loss")}


def frontier_exponents(params: ChinchillaParams) -> tuple[float, float, float]:
    """(a, b, G) of N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b: a = beta/(alpha+beta), b = alpha/(alpha+beta),
    G = (alpha A / (beta B))^(1/(alpha+beta)) (Hoffmann et al. 2022, Eq. 4).

    Raises:
        ValueError: alpha or beta <= 0 (the law has no finite optimum).
    """
    alpha, beta = params.alpha, params.beta
    if not (alpha > 0 and beta > 0):
        raise ValueError(f"alpha={alpha:.4g} and beta={beta:.4g} must both be > 0 for a compute-optimal "
                         "frontier to exist")
    s = alpha + beta
    log_g = (math.log(alpha) + math.log(params.A) - math.log(beta) - math.log(params.B)) / s
    return beta / s, alpha / s, math.exp(log_g)


def compute_optimal(budget_flops, params: ChinchillaParams, *, flops_per_token_param: float = 6.0):
    """N_opt(C) = G (C/k)^a and D_opt(C) = G^-1 (C/k)^b, k = flops_per_token_param (6 for C = 6ND).

    Minimises L(N, D) on the line k N D = C. The 6ND rule counts forward and backward
    matmul FLOPs and ignores attention, as Hoffmann et al. do.

    Args:
        budget_flops: training compute C (FLOPs), float64 scalar or array.
        params: Chinchilla law parameters.
        flops_per_token_param: FLOPs per parameter per token.

    Returns:
        (n_params, n_tokens): float64 arrays of the budget's shape.
    """
    c = as_float64("budget_flops", budget_flops)
    if not (flops_per_token_param > 0):
        raise ValueError(f"flops_per_token_param={flops_per_token_param!r} must be > 0")
    a, b, g = frontier_exponents(params)
    log_c = np.log(c / flops_per_token_param)
    return g * np.exp(a * log_c), np.exp(b * log_c) / g


def allocate(budget_flops, params: ChinchillaParams, *, flops_per_token_param: float = 6.0) -> Allocation:
    """Compute-optimal allocation with tokens per parameter and predicted loss (see compute_optimal)."""
    n, d = compute_optimal(budget_flops, params, flops_per_token_param=flops_per_token_param)
    c = as_float64("budget_flops", budget_flops)
    loss = chinchilla_loss(n, d, params)
    if c.ndim == 0:
        return Allocation(float(c), float(n), float(d), float(d / n), float(loss))
    return Allocation(c, n, d, d / n, loss)
