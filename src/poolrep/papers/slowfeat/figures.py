"""The ``slowfeat`` stage's tables, figures and generated sentences (display names live here)."""

from __future__ import annotations

import numpy as np
import torch

from ...data.scenes import Frames
from .claims import CIFAR_DIFFERENCES, PAPER_AUC
from .experiment import loss_fall, training_losses


def plot_training_curves(trained: dict):
    """The training loss of every model against its steps, one panel per model and layer, one line per seed
    (moving average over 20 steps): whether the cut training reached a plateau (issue 32)."""
    import matplotlib.pyplot as plt

    seeds = list(trained)
    names = list(trained[seeds[0]]["hists"]) + ["supervised"]
    fig, axes = plt.subplots(1, 2 * (len(names) - 1) + 1, figsize=(2.6 * (2 * len(names) - 1), 2.8))
    smooth = lambda v: np.convolve(v, np.ones(min(20, len(v))) / min(20, len(v)), mode="valid")
    i = 0
    for n in names:
        for li in range(1 if n == "supervised" else len(trained[seeds[0]]["hists"][n])):
            ax = axes[i]
            for s in seeds:
                v = trained[s]["sup_hist"] if n == "supervised" else [h["loss"] for h in trained[s]["hists"][n][li]]
                ax.plot(smooth(np.asarray(v, float)), lw=1, label=f"seed {s}")
            ax.set_title(n if n == "supervised" else f"{n} layer {li + 1}", fontsize=8)
            ax.set_xlabel("step", fontsize=7)
            ax.tick_params(labelsize=6)
            i += 1
    axes[0].set_ylabel("training loss (20-step mean)", fontsize=7)
    axes[-1].legend(fontsize=6)
    fig.tight_layout()
    return fig


def plateau_table(trained: dict, p: dict):
    """Per model and layer: the training loss's fall over the last ``plateau_window`` of its steps, per seed, and
    whether every seed's fall is at most ``plateau_tol`` (both in params). Evidence only, it gates no claim (issue
    42): a fall of the loss is not the claim's statistic; the CIFAR claims' gate is the shared stability gate on their
    own difference at the last two kept states (``class_auc_at_checkpoint``, ``poolrep.claims.stability``)."""
    import pandas as pd

    rows = []
    for name, per_seed in training_losses(trained).items():
        falls = {s: loss_fall(v, p["plateau_window"]) for s, v in per_seed.items()}
        rows.append(
            {
                "model": name,
                "steps": len(next(iter(per_seed.values()))),
                **{f"fall seed {s}": f for s, f in falls.items()},
                "largest fall": max(falls.values()),
                "plateau": max(falls.values()) <= p["plateau_tol"],
            }
        )
    return pd.DataFrame(rows)


def stability_table(auc_c: dict, checkpoint: dict, seed: int = 0):
    """Each CIFAR claim's own difference (``CIFAR_DIFFERENCES``) at every kept state of ``checkpoint``
    (``class_auc_at_checkpoint``'s ``curve``) and at the final models, mean and 95 % interval over queries and
    seeds; the baseline always final (as the gate). The ledger's gate compares the last two columns."""
    import pandas as pd

    from ...claims import seed_interval

    rows = []
    for slug, (method, baseline) in CIFAR_DIFFERENCES.items():
        ck = checkpoint[method]
        for step, auc in [*ck["curve"].items(), (ck["final"], auc_c[method])]:
            e = seed_interval(auc, auc_c[baseline], seed=seed, what="CIFAR-10 queries")
            rows.append(
                {
                    "claim": slug,
                    "difference": f"{method} - {baseline}",
                    "steps": step,
                    "value": e.value,
                    "95% CI": f"[{e.lo:+.4f}, {e.hi:+.4f}]",
                    "half-width": (e.hi - e.lo) / 2,
                }
            )
    return pd.DataFrame(rows)


def speed_display(table):
    """``speed_table``'s rows for people: milliseconds, GFLOP/s and the share of this machine's 1-thread limits."""
    from ...bench import display

    return display(table.rename(columns={"params": "parameters"}))


def change_table(change: dict, seed: int = 0):
    """``code_change`` per method (mean over adjacent held-out pairs and seeds, 95 % interval over both), and for
    each layer ours (beta > 0) minus sparse (beta = 0), paired by pair and seed: the slowness claims' precondition."""
    import pandas as pd

    from ...claims import seed_interval

    def row(codes, e, seeds):
        return {"codes": codes, "change": e.value, "95% CI": f"[{e.lo:.4f}, {e.hi:.4f}]", "seeds": seeds}

    rows = [row(k, seed_interval(v, seed=seed, what="test scenes"), v.shape[1]) for k, v in change.items()]
    for layer in ("L1", "L2"):
        a, b = change.get(f"ours {layer}"), change.get(f"sparse {layer}")
        if a is not None and b is not None:
            rows.append(
                row(f"ours {layer} - sparse {layer}", seed_interval(a, b, seed=seed, what="test scenes"), a.shape[1])
            )
    return pd.DataFrame(rows)


def per_clip_table(auc_t: dict, query_clip: np.ndarray, names: list[str], methods=None):
    """Temporal AUC per test clip (mean over its queries and the seeds) and the clip-balanced mean (each clip
    weighted equally), beside the pooled mean over all queries (each query weighted equally)."""
    import pandas as pd

    methods = methods or [m for m in SHOWN if m in auc_t]
    rows = []
    for m in methods:
        a = auc_t[m].mean(1)
        row = {"method": m}
        for ci, name in enumerate(names):
            sel = query_clip == ci
            row[f"{name} ({int(sel.sum())} queries)"] = float(a[sel].mean()) if sel.any() else None
        row["clip-balanced mean"] = float(np.mean([a[query_clip == ci].mean() for ci in np.unique(query_clip)]))
        row["pooled mean"] = float(a.mean())
        rows.append(row)
    return pd.DataFrame(rows)


def atom_grid(atoms: torch.Tensor, n_show: int, shape: tuple, ax, title: str) -> None:
    """Decoder atoms as a grid of tiles (each min-max scaled), grey for 2-D atoms, colour for H x W x 3."""
    a = atoms[:n_show].reshape(n_show, *shape).numpy()
    cols = int(np.ceil(np.sqrt(n_show)))
    rows = int(np.ceil(n_show / cols))
    pad = shape[0] + 1
    img = np.full((rows * pad, cols * pad, *shape[2:]), np.nan if len(shape) == 2 else 1.0, dtype=float)
    for i, x in enumerate(a):
        x = (x - x.min()) / (x.max() - x.min() + 1e-12)
        r, c = divmod(i, cols)
        img[r * pad : r * pad + shape[0], c * pad : c * pad + shape[1]] = x
    ax.imshow(img, cmap="gray" if len(shape) == 2 else None, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")


def plot_fc_decoders(fc_models: dict, p: dict):
    """Fig. 2: the fully connected model's decoder atoms for each alpha."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fc_models), figsize=(6 * len(fc_models), 6))
    for ax, (a, m) in zip(np.atleast_1d(axes), fc_models.items()):
        atom_grid(
            m.atoms(), min(64, p["fc_atoms"]), (p["fc_patch"], p["fc_patch"]), ax, f"FC decoder atoms, alpha = {a}"
        )
    return fig


def plot_conv_decoders(stacks: dict, beta: float):
    """Fig. 5b/c: layer-1 decoders of the sparsity-only (beta = 0) and the slow (beta) models, pool groups adjacent."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 6))
    for ax, (name, b) in zip(axes, (("sparse", 0.0), ("ours", beta))):
        at = stacks[name][0].atoms().permute(0, 2, 3, 1)  # n x k x k x 3
        atom_grid(at, len(at), tuple(at.shape[1:]), ax, f"layer-1 decoders, beta = {b:g} ({name})")
    return fig


SHOWN = [
    "pixels",
    "ZCA pixels",
    "ours L1",
    "ours L2",
    "sparse L1",
    "sparse L2",
    "DrLIM L1",
    "DrLIM L2",
    "group L1",
    "group L2",
    "supervised L1",
    "supervised L2",
]


def plot_pr(res_t: dict, res_c: dict, class_k: int):
    """Fig. 7: mean precision-recall curves, (a) temporal, (b) CIFAR-10 classes."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, res, title in (
        (axes[0], res_t, "(a) temporal (test scenes)"),
        (axes[1], res_c, f"(b) CIFAR-10 classes, {class_k}-NN"),
    ):
        for k in SHOWN:
            ax.plot(
                res[k].recall,
                res[k].precision,
                ("-" if "L2" in k else "--" if "L1" in k else ":"),
                label=f"{k} ({res[k].auc:.3f})",
            )
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(title)
        ax.legend(fontsize=7)
    return fig


def auc_table(auc_t: dict, auc_c: dict, auc_c_all: dict, chance: dict, seed: int = 0, auc_t_seg: dict | None = None):
    """Table 1 layout: per method, the temporal AUC and the class AUC (recall base ``top_k``, our choice, and ``all``),
    each the mean over queries and seeds (``{method: queries x seeds}``) with its 95 % interval over both
    (``poolrep.claims.seed_interval``; pixels and ZCA pixels are not trained: one column, an interval over the
    queries), the chance level of each protocol, and the AUCs of the paper's later version beside them (our copy of
    the paper shows curves only)."""
    import pandas as pd

    from ...claims import seed_interval

    def ci(a):
        e = seed_interval(a, seed=seed, what="queries")
        return f"[{e.lo:.3f}, {e.hi:.3f}]"

    rows = []
    for k in auc_t:
        pa = PAPER_AUC.get(k, (None, None))
        rows.append(
            {
                "method": k,
                "seeds": auc_t[k].shape[1],
                "temporal AUC": float(auc_t[k].mean()),
                "temporal 95% CI": ci(auc_t[k]),
                "temporal chance": chance["temporal"],
                "paper (later version) temporal AUC": pa[0],
                **(
                    {}
                    if auc_t_seg is None
                    else {
                        "temporal AUC (other segments of the shot wrong)": float(auc_t_seg[k].mean()),
                        "its chance": chance.get("temporal_segments"),
                    }
                ),
                "class AUC (recall: top-k)": float(auc_c[k].mean()),
                "class 95% CI": ci(auc_c[k]),
                "class chance (top-k)": chance["class"],
                "class AUC (recall: all)": float(auc_c_all[k].mean()),
                "paper (later version) class AUC": pa[1],
            }
        )
    return pd.DataFrame(rows)


def table1_note(
    p: dict, train_clips: list[str], test_clips: list[str], n_scenes: int, n_queries: int, n_db: int
) -> str:
    """The note under the AUC table (Table 1's layout): the run's data, cuts and interval."""
    return (
        f"Profile {p['profile']}. Video: the mirror's real clips (train {', '.join(train_clips)}; test "
        f"{', '.join(test_clips)}: {n_scenes} test scenes, one query each, the rest of its camera shot junk) replace "
        f"the paper's YouTube frames; Megamind.avi is animated. CIFAR-10 JPEG re-encoding, {n_queries} queries vs "
        f"{n_db} database images. Layer 1 has {p['n_filters1']} filters (paper 64), {p['steps1']}/{p['steps2']} "
        f"training steps per layer of the auto-encoders, {p['drlim_steps']} of DrLIM. Mean over queries and seeds "
        f"({len(p['seeds'])} seeds for each trained model); 95% CI: t-interval over seeds x queries (crossed random "
        "effects, poolrep.claims.seed_interval); in the column so named, the other segments of the query's shot count "
        "as wrong (the protocol before issue 32); pixels and ZCA pixels are not trained (one column: over the "
        "queries). Pixels, ZCA pixels, sparse, group and the supervised net have no AUC in the paper."
    )


def plot_query_strips(test: Frames, res_t: dict, methods=("pixels", "ours L2", "DrLIM L2"), n_nb: int = 6):
    """Fig. 6a: for three test scenes, the query (middle frame) and its nearest test frames under some methods; a
    green frame marks a neighbour from the query's scene."""
    import matplotlib.pyplot as plt

    qsel = np.linspace(0, len(res_t["pixels"].ranks) - 1, min(3, len(res_t["pixels"].ranks))).astype(int)
    fig, axes = plt.subplots(
        len(qsel) * len(methods), n_nb + 1, figsize=(1.3 * (n_nb + 1), 1.4 * len(qsel) * len(methods))
    )
    queries_idx = [
        idx[len(idx) // 2] for s in np.unique(test.scene) if len(idx := np.flatnonzero(test.scene == s)) >= 2
    ]
    for qi, q in enumerate(qsel):
        qframe = queries_idx[q]
        for mi, meth in enumerate(methods):
            row = axes[qi * len(methods) + mi]
            row[0].imshow(test.images[qframe])
            row[0].set_ylabel(meth, fontsize=7)
            for j, nb in enumerate(res_t[meth].ranks[q][:n_nb]):
                row[j + 1].imshow(test.images[nb])
                ok = test.scene[nb] == test.scene[qframe]
                for s in row[j + 1].spines.values():
                    s.set_edgecolor("green" if ok else "red")
                    s.set_linewidth(2)
            for a in row:
                a.set_xticks([])
                a.set_yticks([])
    return fig


def summary_lines(auc_t: dict, auc_c: dict, chance: dict, sizes: dict, claims: list) -> list[str]:
    """What this run's temporal and class tests show, generated from its numbers (so it cannot go stale)."""
    by_id = {c.id: c for c in claims}
    lines = [
        f"The temporal test has {sizes['test_scenes']} scenes ({sizes['test_frames']} frames, one query each) "
        f"from {', '.join(sizes['test_clips'])}, the query's other frames of its camera shot left out as junk; a "
        f"random ranking scores {chance['temporal']:.3f} AUC. The class test has {sizes['cifar_queries']} CIFAR-10 "
        f"queries against {sizes['cifar_db']} training images; chance {chance['class']:.3f}. Every trained model: "
        f"{sizes['seeds']} seeds."
    ]
    lines.append(
        "Temporal AUC (mean over queries and seeds): "
        + ", ".join(
            f"{k} {auc_t[k].mean():.3f}"
            for k in ("pixels", "ZCA pixels", "ours L1", "ours L2", "sparse L1", "sparse L2")
            if k in auc_t
        )
        + "."
    )
    for cid in (
        "temporal_l1_beats_pixels",
        "temporal_l2_beats_pixels",
        "slowness_beats_sparsity_l1",
        "slowness_beats_sparsity_l2",
    ):
        c = by_id.get(cid)
        if c is not None and c.status == "not testable here" and c.value is not None:
            lines.append(
                f"{c.quantity}: {c.value:+.3f} AUC [{c.lo:+.3f}, {c.hi:+.3f}] over every query, not judged "
                f"({c.reason}): {c.why.split('Not judged: ')[-1]}"
            )
        elif c is not None and c.status in ("inconclusive", "not reproduced"):
            lines.append(
                f"{c.quantity}: {c.value:+.3f} AUC, 95 % interval [{c.lo:+.3f}, {c.hi:+.3f}]: {c.status}, so "
                f"this test {'cannot separate the two' if c.status == 'inconclusive' else 'orders them the other way'}"
                f" with {sizes['test_scenes']} test scenes and {sizes['seeds']} seeds."
            )
    return lines
