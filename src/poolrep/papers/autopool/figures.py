"""Auto-pooling's figures: filters (Fig. 8), clusters (Fig. 4/5, Fig. 9), accuracy against features (Fig. 10),
invariance against lambda (Fig. 6), P's held-out cost against pairs seen, the learning curve."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .experiment import PAPER_AP
from .features import cluster_members

if TYPE_CHECKING:
    import pandas as pd


def _tile(f: np.ndarray) -> np.ndarray:
    f = f - f.min()
    return f / f.max() if f.max() > 0 else f


def plot_filters(filters: np.ndarray, title: str, max_show: int = 100):
    """The first ``max_show`` filters (``n x h x w [x C]``), each min-max scaled, in a square-ish grid."""
    import matplotlib.pyplot as plt

    n = min(len(filters), max_show)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.6, rows * 0.6 + 0.4), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(_tile(filters[i]), cmap="gray" if filters.ndim == 3 else None)
    fig.suptitle(title, fontsize=8)
    return fig


def plot_clusters(
    P: np.ndarray, filters: np.ndarray, threshold: float, n_clusters: int = 12, max_members: int = 10, title: str = ""
):
    """Figure 4/5: one row per cluster (the clusters with most members above threshold), its member features'
    filters strongest first."""
    import matplotlib.pyplot as plt

    members = cluster_members(P, threshold)
    order = np.argsort([-len(m) for m in members], kind="stable")[:n_clusters]
    fig, axes = plt.subplots(len(order), max_members, figsize=(max_members * 0.8, len(order) * 0.85))
    axes = np.atleast_2d(axes)
    for r, k in enumerate(order):
        for c in range(max_members):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(members[k][:max_members]):
                ax.imshow(_tile(filters[members[k][c]]), cmap="gray" if filters.ndim == 3 else None)
        axes[r, 0].set_title(f"#{k} ({len(members[k])})", fontsize=6, loc="left")
    fig.suptitle(title, fontsize=9)
    return fig


def plot_conv_clusters(
    P: np.ndarray,
    filters: np.ndarray,
    C: int,
    H: int,
    W: int,
    n_clusters: int = 6,
    n_filters: int = 6,
    seed: int = 0,
    title: str = "",
):
    """Figure 9: for some rows of a conv-model P (K x C*H*W), the pooling region on the H x W map (weight summed
    over channels) and the filters of the channels with most weight."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(P), min(n_clusters, len(P)), replace=False))
    fig, axes = plt.subplots(len(rows), n_filters + 1, figsize=((n_filters + 1) * 1.0, len(rows) * 1.05))
    axes = np.atleast_2d(axes)
    for r, k in enumerate(rows):
        w = P[k].reshape(C, H, W)
        axes[r, 0].imshow(w.sum(0), cmap="viridis")
        axes[r, 0].set_title(f"row {k}: region", fontsize=6)
        chan = np.argsort(-w.sum((1, 2)))[:n_filters]
        for c in range(n_filters):
            ax = axes[r, c + 1]
            ax.imshow(_tile(filters[chan[c]]), cmap="gray" if filters.ndim == 3 else None)
            ax.set_title(f"ch {chan[c]} {w[chan[c]].sum() / w.sum():.0%}", fontsize=5)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    return fig


def plot_fig10(tables: dict, labels: dict, profile: str):
    """Fig. 10: accuracy against the number of pooled features, one panel per size: ours (AP, mean over seeds, and
    single-grid SP, with 95 % intervals), the random-P control, and the paper's AP on the paper-size panel."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(5.2 * len(tables), 3.8), squeeze=False)
    for ax, (name, table) in zip(axes[0], tables.items()):
        for setting, ls in (("full", "-"), ("small", "--")):
            t = table[table.train == setting]
            if not len(t):
                continue
            for kind, mk in (("AP", "o"), ("SP", "s"), ("random P", "v")):
                s = t[t.method.str.startswith(kind) & ~t.method.str.contains("+", regex=False)].sort_values("features")
                if not len(s):
                    continue
                ax.errorbar(
                    s.features,
                    s.ours,
                    yerr=[s.ours - s.lo, s.hi - s.ours],
                    fmt=mk,
                    ls=ls if kind != "random P" else "none",
                    capsize=2,
                    label=f"{kind} ours ({setting})",
                )
            if name == "32px":
                pk = sorted(PAPER_AP[setting])
                ax.plot(
                    pk,
                    [PAPER_AP[setting][k] for k in pk],
                    ls,
                    color="grey",
                    alpha=0.5,
                    marker="x",
                    label=f"AP paper ({setting})",
                )
        ax.set_xscale("log")
        ax.set_xlabel("number of pooled features")
        ax.set_ylabel("CIFAR-10 test accuracy (%)")
        ax.set_title(f"Fig. 10, {labels[name]} ({profile})", fontsize=8)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def plot_fig6(inv: pd.DataFrame, lambdas: list[float], control_lam: float | None = None):
    """Fig. 6: invariance score (95 % interval) against lambda, after pooling, the raw features' score and, at
    ``control_lam``, the row-shuffled P (a random P of the same density)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 3.3))
    raw = inv[inv.code == "raw"].iloc[0]
    rows = inv[inv.code.str.startswith("lambda=")].copy()
    rows["lam"] = [float(c.split("=")[1]) for c in rows.code]
    rows = rows[rows.lam.isin(lambdas)].sort_values("lam")
    left = min(x for x in rows.lam if x > 0) / 3
    xs = [max(x, left) for x in rows.lam]  # lambda = 0 at the left edge of the log axis
    ax.errorbar(
        xs,
        rows.score,
        yerr=[rows.score - rows.lo, rows.hi - rows.score],
        fmt="o-",
        capsize=2,
        label="after pooling (AP)",
    )
    rnd = inv[inv.code.str.startswith("random")]
    if control_lam is not None and len(rnd):
        r = rnd.iloc[0]
        ax.errorbar(
            [max(control_lam, left)],
            [r.score],
            yerr=[[r.score - r.lo], [r.hi - r.score]],
            fmt="v",
            capsize=2,
            color="C3",
            label="random P, same density",
        )
    ax.axhspan(raw.lo, raw.hi, color="k", alpha=0.15)
    ax.axhline(raw.score, color="k", ls="--", label="before pooling (SAE features)")
    ax.set_xscale("log")
    ax.set_xlabel("lambda (leftmost point: lambda = 0)")
    ax.set_ylabel("invariance score")
    ax.set_title("Fig. 6: invariance vs lambda (grey model; 95% CI over held-out pairs x seeds)", fontsize=8)
    ax.legend(fontsize=7)
    return fig


def plot_cost_curves(runs: dict, curve_every: int):
    """P's held-out cost (optimally scaled) against fresh pairs seen, per size, K and seed, relative to the same-K
    grid's (1 = the grid; below 1: P beats the grid on its own objective)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.6 * len(runs), 3.4), squeeze=False)
    for ax, r in zip(axes[0], runs.values()):
        for (K, s), d in sorted(r.info.items()):
            c = np.array(d["heldout_curve"]) / d["grid_cost"]
            ax.plot(
                np.arange(len(c)) * curve_every,
                c,
                "-",
                color=f"C{r.scale.ks.index(K)}",
                alpha=0.8,
                lw=1,
                label=f"K={K}" if s == r.scale.seeds[0] else None,
            )
        ax.axhline(1.0, color="k", ls="--", lw=1, label="same-K grid")
        ax.set_xlabel("fresh pairs seen")
        ax.set_ylabel("held-out cost / grid's")
        ax.set_title(f"{r.scale.label}: P's objective ({len(r.scale.seeds)} seed(s))", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_learning_curve(curve, K: int):
    """AP - SP (same size, small training set, 95 % interval) against the pairs P has seen."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    for i, (name, c) in enumerate(curve.groupby("size", sort=False)):
        ax.errorbar(
            c.pairs_seen,
            c["AP - SP"],
            yerr=[c["AP - SP"] - c.lo, c.hi - c["AP - SP"]],
            fmt="o-",
            capsize=2,
            color=f"C{i}",
            label=name,
        )
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("fresh pairs P has seen")
    ax.set_ylabel("AP - SP, small training set (points)")
    ax.set_title(f"Learning curve: AP K={K} vs the same-size grid (95% CI)", fontsize=8)
    ax.legend(fontsize=7)
    return fig
