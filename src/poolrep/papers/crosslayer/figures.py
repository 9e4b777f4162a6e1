"""The ``crosslayer`` stage's figures and generated sentences: the PCA-dimension sweep, the pooling channels'
weights over an image, and the paper's orderings read off our accuracies."""

from __future__ import annotations

import numpy as np
import torch

from .claims import PAPER_ACC


def plot_pca_sweep(sweep, acc_global: float, title: str, t_name: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(sweep.pca_dim, sweep.cl, "o-", label=f"cross-layer ({t_name})")
    ax.plot(sweep.pca_dim, sweep.direct_sum, "s--", label="direct sum pooling")
    ax.axhline(acc_global, color="gray", ls=":", label="CNN-Global")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("PCA dimension of local features")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def plot_channel_weights(img: np.ndarray, maps_t1: np.ndarray, window: int, n_maps: int, label: str, layer_t1: str):
    """The weights a_{i,k} of the pooling channels that vary most over one image, overlaid on it (kept centres)."""
    import matplotlib.pyplot as plt

    from ...pooling.crosslayer import centre_weights

    a = centre_weights(torch.as_tensor(maps_t1).float(), window, window)[0].numpy()  # positions x K
    side = int(round(np.sqrt(a.shape[0])))
    top = np.argsort(-a.std(0))[:n_maps]  # the channels that vary most over this image
    fig, axes = plt.subplots(1, n_maps + 1, figsize=(2.4 * (n_maps + 1), 2.6))
    axes[0].imshow(img)
    axes[0].set_title(f"test image ({label})", fontsize=8)
    for ax, k in zip(axes[1:], top):
        ax.imshow(img)
        h = a[:, k].reshape(side, a.shape[0] // side)
        pad = window // 2 / (side + 2 * (window // 2))  # kept centres cover the inner part of the image
        H, W = img.shape[:2]
        ax.imshow(h, cmap="jet", alpha=0.5, extent=(pad * W, (1 - pad) * W, (1 - pad) * H, pad * H))
        ax.set_xlim(0, W)
        ax.set_ylim(H, 0)
        ax.set_title(f"channel {k} of {layer_t1}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    return fig


def gap_lines(acc: dict, sweep, n_test: int) -> tuple[list[str], float]:
    """Sentences generated from the computed accuracies (the paper's orderings, one by one); returns ``(lines,
    binomial standard error of one accuracy)``."""

    def compare(ours_a, ours_b, paper_a, paper_b, name_a, name_b):
        d_ours, d_paper = ours_a - ours_b, paper_a - paper_b
        agree = "agrees with" if np.sign(d_ours) == np.sign(d_paper) else "differs from"
        return (
            f"{name_a} vs {name_b}: ours {ours_a:.1f} vs {ours_b:.1f} ({d_ours:+.1f} points), paper {paper_a:.1f} "
            f"vs {paper_b:.1f} ({d_paper:+.1f}); the sign {agree} the paper."
        )

    se = 100 * np.sqrt(acc["cl"] / 100 * (1 - acc["cl"] / 100) / n_test)
    lines = [
        f"Binomial standard error of one accuracy at {n_test} test images: about {se:.1f} points "
        f"(differences below ~{2 * se:.1f} points are within noise).",
        compare(acc["cl"], acc["global"], PAPER_ACC["cl"], PAPER_ACC["global"], "CL", "CNN-Global"),
        compare(acc["clf"], acc["cl"], PAPER_ACC["clf"], PAPER_ACC["cl"], "CL-F", "CL"),
        compare(acc["clc"], acc["cl"], PAPER_ACC["clc"], PAPER_ACC["cl"], "CL-C", "CL"),
    ]
    for mode in ("sum", "max"):
        better = "beats" if acc["cl"] > acc[mode] else "does not beat"
        lines.append(
            f"CL {better} direct {mode} pooling of the same local features ({acc['cl']:.1f} vs "
            f"{acc[mode]:.1f}); the paper reports that it does."
        )
    best = sweep.loc[sweep.cl.idxmax()]
    lines.append(
        f"PCA sweep: cross-layer accuracy ranges {sweep.cl.min():.1f}-{sweep.cl.max():.1f} over d = "
        f"{', '.join(map(str, sweep.pca_dim))}, best at d = {int(best.pca_dim)}."
    )
    return lines, se


def table1(acc: dict, chosen_C: dict, glob_desc: str, p: dict, n_train: int, n_test: int, n_classes: int):
    """Table 1 layout (display names here only): each representation's accuracy beside the paper's, its setting
    and the C cross-validation chose; returns ``(table, note)``."""
    from ... import io

    t_name = f"{p['layer_t']}->{p['layer_t1']}"
    local = f"{p['layer_t']} {p['window']}x{p['window']}, PCA {p['pca_dim']}"
    rows = [
        dict(
            method="CNN-Global",
            paper_row="CNN-Global (fc, AlexNet)",
            ours_setting=glob_desc,
            paper=PAPER_ACC["global"],
            ours=acc["global"],
        ),
        dict(
            method="Direct sum pooling",
            paper_row="sum of conv4 local features",
            ours_setting=local,
            paper=None,
            ours=acc["sum"],
        ),
        dict(
            method="Direct max pooling",
            paper_row="max of conv4 local features",
            ours_setting=local,
            paper=None,
            ours=acc["max"],
        ),
        dict(
            method="CL",
            paper_row="CL-45 (13x13)",
            ours_setting=f"{t_name}, {p['input_px']}px",
            paper=PAPER_ACC["cl"],
            ours=acc["cl"],
        ),
        dict(
            method="CL-F",
            paper_row="CL-45F (26x26)",
            ours_setting=f"{t_name}, {p['input_px_fine']}px",
            paper=PAPER_ACC["clf"],
            ours=acc["clf"],
        ),
        dict(
            method="CL-C",
            paper_row="CL-45C (both)",
            ours_setting="CL + CL-F concatenated",
            paper=PAPER_ACC["clc"],
            ours=acc["clc"],
        ),
    ]
    cifar = p["dataset"] == "cifar10"
    for r, k in zip(rows, ("global", "sum", "max", "cl", "clf", "clc")):
        r["C (3-fold CV)"] = chosen_C[k]
    note = (
        f"Ours ({p['profile']} profile): {p['dataset']}, {p['backbone']}, {n_train} train / {n_test} test "
        f"images, {n_classes} classes, PCA {p['pca_dim']}, linear SVM on a precomputed linear kernel, C chosen "
        f"from {p['svm_Cs']} by 3-fold cross-validation on the training images. "
        + ("Paper: Birds-200 (CUB-200-2011), AlexNet, 5,994 train images, PCA 512. " if cifar else "")
        + (
            "OFFLINE SUBSTITUTE: CIFAR-10 and MobileNetV2 stand in for Birds-200 and AlexNet, so the absolute numbers "
            "are not comparable; compare the ordering of the rows. "
            if cifar
            else ""
        )
        + "The paper's text (extended abstract) reports the comparison with other ways of using conv features but no "
        "number for direct sum / max pooling (left blank)."
    )
    return io.paper_vs_ours(rows), note
