"""Headless matplotlib figures for fitted laws (Agg backend; every function writes one PNG).

Figures: fit against points with residuals; loss against tokens per model size; the
compute-optimal frontier per H against Chinchilla's (Pandey 2024, Fig. 3); each parameter
against H with its regression line (Fig. 4).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pygzlaw.laws.allocate import compute_optimal
from pygzlaw.laws.data_dependent import PARAM_NAMES

__all__ = ["plot_fit", "plot_loss_vs_tokens", "plot_frontier", "plot_params_vs_h", "plot_isoflop"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    """Save atomically and close the figure."""
    from pygzlaw.atomic import atomic_open

    p = Path(path)
    with atomic_open(p, "wb") as f:
        fig.savefig(f, dpi=110, bbox_inches="tight", format=p.suffix.lstrip(".") or "png")
    _plt().close(fig)
    return str(p)


def _params_for(law, h=None):
    if getattr(law, "kind", "") == "data_dependent":
        if h is None:
            raise ValueError("a data-dependent law needs h to plot against points")
        return law.params_at(h)
    return law.params


def plot_fit(law, n_params, n_tokens, loss, path, *, h=None) -> str:
    """Observed against predicted loss (with y = x) and log residuals against compute 6ND.

    Args:
        law: ChinchillaLaw (or DataDependentLaw with h).
        n_params, n_tokens, loss: (n,) runs.
        path: output PNG path.
        h: compressibility for a data-dependent law.

    Returns:
        The path written.
    """
    from pygzlaw.laws.forms import chinchilla_loss

    plt = _plt()
    p = _params_for(law, h)
    pred = chinchilla_loss(n_params, n_tokens, p)
    resid = np.log(loss) - np.log(pred)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    sc = ax1.scatter(pred, loss, c=np.log10(n_params), s=12, cmap="viridis")
    lo, hi = min(pred.min(), loss.min()), max(pred.max(), loss.max())
    ax1.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax1.set_xlabel("predicted loss (nats/token)")
    ax1.set_ylabel("observed loss (nats/token)")
    ax1.set_title("fit vs points")
    fig.colorbar(sc, ax=ax1, label="log10 N (params)")
    ax2.scatter(6 * np.asarray(n_params) * np.asarray(n_tokens), resid, s=12)
    ax2.axhline(0, color="k", lw=1)
    ax2.set_xscale("log")
    ax2.set_xlabel("compute 6ND (FLOPs)")
    ax2.set_ylabel("log(observed / predicted)")
    ax2.set_title(f"residuals (RMS {np.sqrt(np.mean(resid ** 2)):.4f})")
    return _save(fig, path)


def plot_loss_vs_tokens(law, n_params, n_tokens, loss, path, *, h=None, rel_tol=0.05) -> str:
    """Loss against tokens D, one colour per model size N (runs grouped within rel_tol), law curves dashed."""
    from pygzlaw.laws.forms import chinchilla_loss
    from pygzlaw.laws.isoflop import group_by_budget

    plt = _plt()
    p = _params_for(law, h)
    n_params, n_tokens, loss = (np.asarray(v, dtype=np.float64) for v in (n_params, n_tokens, loss))
    gid = group_by_budget(n_params, rel_tol=rel_tol)
    fig, ax = plt.subplots(figsize=(7, 5))
    cmap = plt.get_cmap("viridis")
    n_groups = gid.max() + 1
    d_line = np.logspace(np.log10(n_tokens.min()) - 0.2, np.log10(n_tokens.max()) + 0.2, 100)
    for g in range(n_groups):
        m = gid == g
        col = cmap(g / max(n_groups - 1, 1))
        n_g = float(np.exp(np.log(n_params[m]).mean()))
        ax.scatter(n_tokens[m], loss[m], color=col, s=14, label=f"N={n_g:.3g}")
        ax.plot(d_line, chinchilla_loss(n_g, d_line, p), "--", color=col, lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("tokens D")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title("loss vs tokens per model size")
    if n_groups <= 12:
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_frontier(law, path, *, hs=None, budgets_flops=None, epsilon=None) -> str:
    """Compute-optimal N_opt(C) and D_opt(C) per H against Chinchilla's (Pandey 2024, Fig. 3).

    Args:
        law: DataDependentLaw (or ChinchillaLaw: one frontier).
        path: output PNG.
        hs: H values to draw (default 6 values across the law's fitted H range).
        budgets_flops: compute grid (default 1e15..1e24).
        epsilon: mixing weight (default the law's).
    """
    plt = _plt()
    c = np.logspace(15, 24, 60) if budgets_flops is None else np.asarray(budgets_flops, dtype=np.float64)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    if getattr(law, "kind", "") == "data_dependent":
        lo, hi = law.h_range
        hs = np.linspace(lo, hi, 6) if hs is None else hs
        ref = law.reference
        cmap = plt.get_cmap("plasma")
        for i, h in enumerate(hs):
            try:
                p = law.params_at(float(h), epsilon=epsilon)
                n, d = compute_optimal(c, p)
            except ValueError:
                continue
            col = cmap(i / max(len(hs) - 1, 1))
            ax1.plot(c, n, color=col, label=f"H={h:.3g}")
            ax2.plot(c, d, color=col)
    else:
        ref = None
        n, d = compute_optimal(c, law.params)
        ax1.plot(c, n, color="C0", label=law.name or "fit")
        ax2.plot(c, d, color="C0")
    from pygzlaw.laws.forms import HOFFMANN_PARAMS

    n_ref, d_ref = compute_optimal(c, ref or HOFFMANN_PARAMS)
    ax1.plot(c, n_ref, "k--", label="Chinchilla")
    ax2.plot(c, d_ref, "k--")
    for ax, lab in ((ax1, "N_opt (params)"), (ax2, "D_opt (tokens)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("compute C (FLOPs)")
        ax.set_ylabel(lab)
    ax1.legend(fontsize=7)
    ax1.set_title("compute-optimal frontier by H")
    return _save(fig, path)


def plot_params_vs_h(law, path) -> str:
    """Each fitted parameter against H with its regression line and r, p (Pandey 2024, Fig. 4).

    A and B are drawn on log axes; where a linear regression line is <= 0 (the law is undefined there)
    it is masked and the H sub-range is written on the panel."""
    plt = _plt()
    if getattr(law, "kind", "") != "data_dependent":
        raise ValueError("plot_params_vs_h needs a data-dependent law (fit points with an H column)")
    hs = np.array([d["h"] for d in law.datasets])
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.4))
    h_line = np.linspace(hs.min(), hs.max(), 50)
    for ax, k in zip(axes, PARAM_NAMES):
        ys = np.array([d["params"][k] for d in law.datasets])
        reg = law.regressions[k]
        line = reg(h_line)
        ax.scatter(hs, ys, s=18)
        if k in ("A", "B"):
            # A and B span orders of magnitude: log axis. A linear regression can go <= 0 inside the H
            # range; those points have no place on a log axis, so they are masked (not clipped) and noted.
            ax.set_yscale("log")
            bad = ~(line > 0)
            if bad.any():
                ax.text(0.02, 0.02, f"line <= 0 (undefined) for H in [{h_line[bad].min():.3g}, {h_line[bad].max():.3g}]"
                        "\nnot drawn; fit --regress log", transform=ax.transAxes, fontsize=7, color="r")
            line = np.where(bad, np.nan, line)
        ax.plot(h_line, line, "r-", lw=1)
        ax.set_xlabel("gzip compressibility H")
        ax.set_title(f"{k}{' (log fit)' if reg.scale == 'log' else ''}: r={reg.r:.2f}, p={reg.p_value:.2g}",
                     fontsize=9)
    return _save(fig, path)


def plot_isoflop(n_params, n_tokens, loss, path, *, budget_flops=None, rel_tol=0.05) -> str:
    """IsoFLOP curves (loss against N per budget, fitted parabolas in log N, minima) and N_opt(C).

    Args:
        n_params, n_tokens, loss: (n,) runs.
        path: output PNG.
        budget_flops: optional (n,) FLOPs per run (default 6ND).
        rel_tol: budget grouping tolerance (see isoflop.group_by_budget).
    """
    from pygzlaw.laws.isoflop import group_by_budget, isoflop_analysis

    plt = _plt()
    n, d, l_ = (np.asarray(v, dtype=np.float64) for v in (n_params, n_tokens, loss))
    c = 6 * n * d if budget_flops is None else np.asarray(budget_flops, dtype=np.float64)
    res = isoflop_analysis(n, d, l_, budget_flops=c, rel_tol=rel_tol)
    gid = group_by_budget(c, rel_tol=rel_tol)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    cmap = plt.get_cmap("viridis")
    n_groups = gid.max() + 1
    for g in range(n_groups):
        m = gid == g
        if m.sum() < 3:
            continue
        col = cmap(g / max(n_groups - 1, 1))
        ax1.scatter(n[m], l_[m], color=col, s=14)
        x = np.log(n[m])
        q = np.polyfit(x - x.mean(), l_[m], 2)
        xs = np.linspace(x.min(), x.max(), 50)
        ax1.plot(np.exp(xs), np.polyval(q, xs - x.mean()), color=col, lw=1)
    ax1.scatter(res.n_opt, res.loss_opt, marker="*", s=80, color="red", zorder=3, label="minimum per budget")
    ax1.set_xscale("log")
    ax1.set_xlabel("parameters N")
    ax1.set_ylabel("loss (nats/token)")
    ax1.set_title("IsoFLOP curves")
    ax1.legend(fontsize=7)
    ax2.scatter(res.budget_flops, res.n_opt, color="red")
    cs = np.logspace(np.log10(res.budget_flops.min()), np.log10(res.budget_flops.max()), 20)
    ax2.plot(cs, res.n_coef * cs ** res.a, "k--", label=f"N_opt ~ C^{res.a:.3f}")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("compute C (FLOPs)")
    ax2.set_ylabel("N_opt (params)")
    ax2.legend(fontsize=8)
    return _save(fig, path)
