"""IsoFLOP analysis (Hoffmann et al. 2022, Approach 2).

For each compute budget, fit a parabola of loss in log N and take its minimum; then fit
log N_opt = a log C + const (and the same for D_opt = C / (6 N_opt)) across budgets.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pygzlaw.laws.forms import as_float64

__all__ = ["IsoflopResult", "isoflop_analysis", "group_by_budget"]


@dataclass
class IsoflopResult:
    """Per-budget optima and the fitted power laws.

    Attributes:
        budget_flops: (k,) budgets with a usable parabola.
        n_opt, d_opt, loss_opt: (k,) optimal parameters, tokens and loss at each budget.
        a, n_coef: N_opt = n_coef * C^a.
        b, d_coef: D_opt = d_coef * C^b.
        skipped: budgets dropped, with the reason.
    """

    budget_flops: np.ndarray
    n_opt: np.ndarray
    d_opt: np.ndarray
    loss_opt: np.ndarray
    a: float
    n_coef: float
    b: float
    d_coef: float
    skipped: list

    def to_dict(self) -> dict:
        return {"budget_flops": self.budget_flops.tolist(), "n_opt": self.n_opt.tolist(),
                "d_opt": self.d_opt.tolist(), "loss_opt": self.loss_opt.tolist(), "a": self.a,
                "n_coef": self.n_coef, "b": self.b, "d_coef": self.d_coef, "skipped": self.skipped}


def group_by_budget(budget_flops, *, rel_tol: float = 0.05) -> np.ndarray:
    """Integer group ids: budgets within rel_tol (relative, in log space) of a group's first budget.

    Args:
        budget_flops: (n,) FLOPs per run.
        rel_tol: tolerance as |log C - log C_group| <= log(1 + rel_tol).

    Returns:
        (n,) int64 group ids, numbered in increasing budget order.
    """
    c = as_float64("budget_flops", budget_flops).ravel()
    order = np.argsort(c, kind="stable")
    ids = np.empty(c.size, dtype=np.int64)
    tol = np.log1p(rel_tol)
    gid, anchor = -1, -np.inf
    for i in order:
        lc = np.log(c[i])
        if lc - anchor > tol:
            gid += 1
            anchor = lc
        ids[i] = gid
    return ids


def isoflop_analysis(n_params, n_tokens, loss, *, budget_flops=None, rel_tol=0.05,
                     flops_per_token_param=6.0) -> IsoflopResult:
    """Approach 2: parabola in log N per budget, then power laws across budgets.

    Args:
        n_params, n_tokens, loss: (n,) runs (parameters, tokens, nats/token).
        budget_flops: optional (n,) FLOPs per run; default flops_per_token_param * N * D.
        rel_tol: runs whose budgets agree within this relative tolerance form one IsoFLOP curve.
        flops_per_token_param: 6 for C = 6ND.

    Returns:
        IsoflopResult.

    Raises:
        ValueError: fewer than two budgets with a parabola that opens upward and has >= 3 runs.
    """
    n = as_float64("n_params", n_params).ravel()
    d = as_float64("n_tokens", n_tokens).ravel()
    l_ = as_float64("loss", loss).ravel()
    if not (n.size == d.size == l_.size):
        raise ValueError(f"n_params ({n.size}), n_tokens ({d.size}) and loss ({l_.size}) must have the same length")
    c = (flops_per_token_param * n * d if budget_flops is None
         else as_float64("budget_flops", budget_flops).ravel())
    if c.size != n.size:
        raise ValueError(f"budget_flops has {c.size} values, expected {n.size}")
    gid = group_by_budget(c, rel_tol=rel_tol)
    cs, ns, ls, skipped = [], [], [], []
    for g in range(gid.max() + 1):
        m = gid == g
        cg = float(np.exp(np.log(c[m]).mean()))
        if m.sum() < 3:
            skipped.append({"budget_flops": cg, "reason": f"{int(m.sum())} runs (need >= 3)"})
            continue
        x = np.log(n[m])
        x0 = x.mean()                                   # centred: polyfit is well conditioned
        q2, q1, q0 = np.polyfit(x - x0, l_[m], 2)
        if not q2 > 0:
            skipped.append({"budget_flops": cg, "reason": "parabola opens downward (no minimum)"})
            continue
        x_opt = -q1 / (2 * q2)
        loss_opt = q0 + q1 * x_opt + q2 * x_opt * x_opt
        x_opt += x0
        if not (x.min() - 1.0 <= x_opt <= x.max() + 1.0):
            skipped.append({"budget_flops": cg, "reason": "minimum far outside the sampled N range"})
            continue
        cs.append(cg)
        ns.append(np.exp(x_opt))
        ls.append(loss_opt)
    if len(cs) < 2:
        raise ValueError(f"IsoFLOP analysis needs >= 2 budgets with >= 3 runs and a minimum; got {len(cs)} "
                         f"(skipped: {skipped}); widen rel_tol or add runs")
    cs, ns, ls = np.array(cs), np.array(ns), np.array(ls)
    ds = cs / (flops_per_token_param * ns)
    a, log_kn = np.polyfit(np.log(cs), np.log(ns), 1)
    b, log_kd = np.polyfit(np.log(cs), np.log(ds), 1)
    return IsoflopResult(cs, ns, ds, ls, float(a), float(np.exp(log_kn)), float(b), float(np.exp(log_kd)), skipped)
