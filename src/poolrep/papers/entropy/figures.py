"""The ``entropy`` stage's tables, figures and phrases (display names of poolings live here)."""

from __future__ import annotations

import numpy as np

from .experiment import CAM, CENTRE, NETWORKS, accuracy_metrics, control_seeds, map_scores
from .model import upsample

NETWORK_TITLES = {NETWORKS[0]: "CIFAR ResNet (scratch)", NETWORKS[1]: "MobileNetV2 ImageNet (head only)"}


MAP_TITLES = {
    CAM: "CAM (GAP model)",
    CENTRE: "centre prior (fixed Gaussian, sd 1/4 of the canvas)",
    "uniform": "uniform",
}


CANVAS_TITLES = {  # the localisation canvases (experiment.CANVASES), in the order the claims prefer them
    "cluttered": "cluttered CIFAR-10 (background tiled with 16-px crops of training images)",
    "plain": "plain canvas (background one flat colour, the CIFAR-10 mean)",
}


def resnet_phrase(widths, blocks: int, stem_stride: int) -> str:
    """The CIFAR ResNet's shape as every table note, claim setting and printed line names it (the stride-2 stem is
    a cut for cpu time)."""
    return f"widths {list(widths)} x {blocks} block(s)/stage" + (", stride-2 stem" if stem_stride == 2 else "")


def resnet_cut(p: dict, n_train: int, conv: dict | None = None) -> str:
    """The CIFAR ResNet and its cuts in one phrase, as the notebook's table notes and the ledger's settings both
    name it: shape, training images, epochs and, given the control's estimates ``conv`` (``convergence``), what
    training ``control_factor`` x longer moved (mean over every seed: the control retrains each)."""
    moved = (
        ""
        if conv is None
        else f" ({convergence_phrase(conv, p['control_factor'])}, mean over {len(control_seeds(p))} seeds)"
    )
    return (
        f"a ResNet ({resnet_phrase(p['widths'], p['blocks'], p['stem_stride'])}) trained from scratch on "
        f"{n_train:,} CIFAR-10 images for {p['epochs']} epochs{moved}"
    )


def pool_names(temperature: float) -> dict[str, str]:
    return {
        "gap": "GAP",
        "gmp": "GMP",
        "attention": "spatial attention",
        "entropy_linear": "entropy (log C - H, normalised)",
        "entropy_softmax": f"entropy (softmax(-H/(T log C)), T={temperature:g})",
        "entropy_unnormalised": "entropy (1 - H/log C, unnormalised)",
        "entropy_detached": "entropy (log C - H, normalised, no gradient through the weights)",
    }


SHORT = {
    "gap": "GAP",
    "gmp": "GMP",
    "attention": "attention",
    "entropy_linear": "entropy",
    "entropy_softmax": "entropy (softmax)",
    "entropy_unnormalised": "entropy (unnormalised)",
    "entropy_detached": "entropy (detached)",
}


def convergence_phrase(conv: dict, control_factor) -> str:
    """The control's result as the tables and claims name it beside every CIFAR ResNet number."""
    moved = " and ".join(f"{SHORT.get(k, k)} by {e.value:+.1f} [{e.lo:+.1f}, {e.hi:+.1f}]" for k, e in conv.items())
    return f"training {control_factor}x longer moved {moved} points"


def control_phrase(diff: dict, pooling: str, other: str, epochs: int, control_factor) -> str:
    """``control_difference`` in words, for the claim it bears on."""
    st, lg = diff["standard"], diff["longer"]
    return (
        f"{SHORT.get(pooling, pooling)} - {SHORT.get(other, other)} after {epochs * control_factor} epochs (the "
        f"control's runs, mean over the seeds): {lg.value:+.2f} [{lg.lo:+.2f}, {lg.hi:+.2f}] points, against "
        f"{st.value:+.2f} [{st.lo:+.2f}, {st.hi:+.2f}] after {epochs}"
    )


def plot_curves(curves, notes: dict | None = None):
    """Test accuracy after each evaluated epoch, one line per seed, one panel per network: the plateau is the flat
    end. A control run (pooling name ``"<pooling>, ...(control)"``) is drawn dashed in its pooling's colour.
    ``notes[network]``: a second title line (the run's cuts)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(curves)
    nets = list(dict.fromkeys(df.network))
    fig, axes = plt.subplots(1, len(nets), figsize=(6.5 * len(nets), 4), squeeze=False)
    for ax, net in zip(axes[0], nets):
        d = df[df.network == net]
        colour = {}
        for pname, g in d.groupby("pooling", sort=False):
            control = pname.endswith("(control)")
            c = colour.setdefault(pname.split(",")[0] if control else pname, f"C{len(colour)}")
            for j, (_, gs) in enumerate(g.groupby("seed")):
                gs = gs.dropna(subset=["test_accuracy"])  # epochs without an evaluation (eval_every)
                ax.plot(
                    gs.epoch,
                    gs.test_accuracy,
                    color=c,
                    alpha=0.8,
                    lw=1.4 if control else 1,
                    ls="--" if control else "-",
                    label=pname if j == 0 else None,
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(NETWORK_TITLES.get(net, net) + (f"\n{notes[net]}" if notes and net in notes else ""), fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def control_table(control: dict, conv: dict, epochs: int, names: dict):
    """The convergence control, one row per control pooling: test accuracy of the control seeds' standard runs and
    of their longer runs, and the paired gain with its interval over seeds x test images (``convergence``). Evidence
    of how far the recipe is from its plateau, shown beside the ledger, not a gate: each CIFAR ResNet ordering is
    judged by the ledger's stability gate on its own difference (``claims``)."""
    import pandas as pd

    rows = []
    for pname, e in conv.items():
        h = control["hits"][pname]
        rows.append(
            {
                "pooling": names.get(pname, pname),
                "seeds": h["standard"].shape[1],
                f"{epochs} epochs (%)": 100.0 * float(h["standard"].mean()),
                f"{control['epochs']} epochs (%)": 100.0 * float(h["longer"].mean()),
                "gain (points)": e.value,
                "gain 95% CI": f"[{e.lo:+.2f}, {e.hi:+.2f}]",
            }
        )
    return pd.DataFrame(rows)


def localisation_table(loc: dict, names: dict, seed: int = 0):
    """One row per map: mean box share and pointing hit rate (over canvases and seeds) with 95 % intervals
    over the seeds and the canvases (``poolrep.claims.seed_interval``), and each map minus the
    GAP model's CAM, paired by seed and canvas. The abstract makes no claim against CAM; the comparison says where
    the weights stand."""
    import pandas as pd

    from ...claims import seed_interval

    def ci(e) -> str:
        return f"[{e.lo:+.1f}, {e.hi:+.1f}]"

    rows, scores = [], map_scores(loc, seed)
    names = {**MAP_TITLES, **names}
    for k, v in loc.items():
        sh, hi = scores[k]["share"], scores[k]["hit"]
        row = {
            "map": names.get(k, k),
            "share in box (%)": sh["mean"],
            "share 95% CI": f"[{sh['lo']:.1f}, {sh['hi']:.1f}]",
            "pointing hits (%)": hi["mean"],
            "hits 95% CI": f"[{hi['lo']:.1f}, {hi['hi']:.1f}]",
            "seeds": v["share"].shape[1],
        }
        if CAM in loc and k != CAM:
            for what, col in (("share", "share"), ("hit", "hits")):
                d = seed_interval(v[what], loc[CAM][what], seed=seed, scale=100, what="canvases")
                row[f"{col} minus CAM"], row[f"{col} minus CAM 95% CI"] = round(d.value, 2), ci(d)
        rows.append(row)
    return pd.DataFrame(rows)


def weight_figure(images: np.ndarray, labels, mm: dict, idx, title: str, classes, names: dict, weighted):
    """Each column a test image: the image, the GAP model's CAM and each weighted pooling's weights, upsampled and
    min-max scaled per map."""
    import matplotlib.pyplot as plt

    rows_ = ["gap"] + list(weighted)
    fig, axes = plt.subplots(len(rows_) + 1, len(idx), figsize=(1.6 * len(idx), 1.6 * (len(rows_) + 1)), squeeze=False)
    size = images.shape[1:3]
    for j, k in enumerate(idx):
        axes[0, j].imshow(images[k])
        axes[0, j].set_title(classes[int(labels[k])], fontsize=8)
        for r, pname in enumerate(rows_, start=1):
            up = upsample(mm[pname][k : k + 1], size)[0]
            axes[r, j].imshow(images[k])
            axes[r, j].imshow(up, cmap="jet", alpha=0.5, vmin=0, vmax=1)
    for r, pname in enumerate(["image"] + rows_):
        axes[r, 0].set_ylabel(
            {"image": "image", "gap": "GAP: CAM"}.get(pname, names.get(pname, pname)).replace(" (", "\n("), fontsize=7
        )
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def accuracy_table(hits: dict, names: dict, seed: int = 0):
    """Per network and pooling: mean test accuracy (%) over seeds with its 95 % interval over the seeds
    and the test images (``poolrep.claims.seed_interval``), the seeds' spread, and the difference to GAP paired by
    seed and image; beside it, the item-only interval of the same difference (``paired_bootstrap``: the trained
    models held fixed), for comparison (the seeds x images one adds run-to-run variation: see ``seed_interval``)."""
    import pandas as pd

    from ...claims import paired_bootstrap

    rows, stats = [], accuracy_metrics(hits, seed)
    for (net, pname), h in hits.items():
        acc = stats[net][pname]
        per_seed = 100 * h.mean(0)
        row = {
            "network": NETWORK_TITLES.get(net, net),
            "pooling": names.get(pname, pname),
            "paper": None,
            "ours": acc["mean"],
            "95% CI": f"[{acc['lo']:.2f}, {acc['hi']:.2f}]",
            "seeds": h.shape[1],
            "min seed": per_seed.min(),
            "max seed": per_seed.max(),
        }
        if "minus_gap" in acc:  # accuracy_metrics gives it to every pooling but GAP where the network has a GAP
            d = acc["minus_gap"]
            fixed = paired_bootstrap(h, hits[(net, "gap")], seed=seed, scale=100, what="test images")
            row["minus GAP"], row["minus GAP 95% CI"] = d["value"], f"[{d['lo']:+.2f}, {d['hi']:+.2f}]"
            row["models fixed 95% CI"] = f"[{fixed.lo:+.2f}, {fixed.hi:+.2f}]"
        rows.append(row)
    return pd.DataFrame(rows)
