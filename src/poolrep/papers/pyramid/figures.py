"""The ``pyramid`` stage's tables, figures and generated sentences: the Tables 3/4 layout beside the paper's numbers,
mAP against dimension, the top-k retrievals, the video set per clip. The data sets' display titles live here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .claims import PAPER_MAP, PAPER_MAP_PLACES, paper_dim
from .model import stand_in

if TYPE_CHECKING:
    from .experiment import SetResult

SET_TITLES = {
    "pairs": "pairs/ (Holidays protocol)",
    "video": "video scenes",
    "cifar10": "CIFAR-10 classes",
    "holidays": "Holidays",
    "holidays_rotated": "Holidays (rotated)",
    "oxford5k": "Oxford5K",
}


def set_title(key: str) -> str:
    """A data set's display title (tables and figures only; everything else keys it by its slug)."""
    return SET_TITLES.get(key, key)


def make_table(results: Sequence[SetResult], net: str, pyramids: dict | None = None, seed: int = 0):
    """Tables 3/4 layout: descriptor, the paper's dims and mAP (Table 3: ImageNet AlexNet, Holidays and Oxford5K
    columns; Table 4: Places AlexNet), ours per data set with its 95 % bootstrap interval over the queries."""
    import pandas as pd

    from ...claims import bootstrap_mean

    si = stand_in(net)
    rows = []
    for n in results[0].mAP:
        paper, places = PAPER_MAP.get(n, (None, None)), PAPER_MAP_PLACES.get(n, (None, None))
        row = {
            "descriptor": n,
            "ours is": si.get(n, n),
            "dims (paper, AlexNet)": paper_dim(n, pyramids),
            "dims (ours)": " / ".join(str(d) for d in dict.fromkeys(r.dims[n] for r in results)),
            "paper T3 Holidays": paper[0],
            "paper T3 Oxford5K": paper[1],
            "paper T4 (Places) Holidays": places[0],
            "paper T4 (Places) Oxford5K": places[1],
        }
        for r in results:
            est = bootstrap_mean(r.items(n), seed=seed, what=r.item_word)
            row[f"ours {set_title(r.name)}"] = r.mAP[n]
            row[f"95% CI {set_title(r.name)}"] = f"[{est.lo:.3f}, {est.hi:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def rank_agreement(results: Sequence[SetResult]) -> dict[str, float]:
    """Spearman correlation between the paper's Holidays mAP and ours over the descriptors both have."""
    from scipy.stats import spearmanr

    out = {}
    for r in results:
        common = [n for n in r.mAP if PAPER_MAP.get(n, (None,))[0] is not None]
        if len(common) >= 3:
            out[r.name] = float(spearmanr([PAPER_MAP[n][0] for n in common], [r.mAP[n] for n in common])[0])
    return out


def gap_sentences(results: Sequence[SetResult]) -> list[str]:
    """One generated sentence per claim of the paper, true for whatever numbers were computed."""
    out = []
    for r in results:
        m = r.mAP
        best = max(m, key=m.get)
        s = f"{set_title(r.name)}: best descriptor {best} ({m[best]:.4f}, {r.dims[best]}-d)."
        pyr = [n for n in m if n.startswith("pyramid")]
        if pyr and "max" in m:
            bp = max(pyr, key=m.get)
            s += (
                f" Best pyramid {bp} {m[bp]:.4f} vs global max {m['max']:.4f}: "
                f"{'pyramid ahead' if m[bp] > m['max'] else 'global max ahead or equal'} (paper: pyramids ahead)."
            )
        if pyr and "L5" in m:
            bp = max(pyr, key=m.get)
            s += (
                f" {bp} vs flattened L5 {m['L5']:.4f}: {'pyramid ahead' if m[bp] > m['L5'] else 'L5 ahead or equal'}"
                f" (paper: pyramids ahead by ~0.09 on Holidays)."
            )
        if "hybrid" in m and "max" in m:
            s += (
                f" Hybrid {m['hybrid']:.4f} vs max {m['max']:.4f}: "
                f"{'hybrid ahead' if m['hybrid'] > m['max'] else 'max ahead or equal'}."
            )
        if "fc6" in m and "fc7" in m and pyr:
            bp = max(pyr, key=m.get)
            fc = max(m["fc6"], m["fc7"]) if r.dims["fc7"] != 1000 else m["fc6"]  # logits (1000 classes) are no code
            s += (
                f" Best FC stand-in {fc:.4f} vs {bp}: {'pyramid ahead' if m[bp] > fc else 'FC stand-in ahead or equal'}"
                f" (paper: pyramids ahead of fc6/fc7)."
            )
        out.append(s)
    return out


def tables(results: Sequence[SetResult], net: str, pyramids: dict, p: dict):
    """``(table, paper_vs_ours, title, note)``: the Tables 3/4 layout over every set, and the paper's Holidays
    column beside our first set."""
    from ... import io

    table = make_table(results, net, pyramids, p["seed"])
    sub = net != "alexnet"
    title = "Tables 3/4 layout: mAP per descriptor" + (
        " - SUBSTITUTE: MobileNetV2 ImageNet on offline sets" if sub else ""
    )
    note = (
        "Paper: AlexNet ImageNet pool5, Holidays (500 queries) and Oxford5K (55 queries). "
        + (
            "Ours: MobileNetV2 features.18; fc6 row := its GAP 1280-d code, fc7 row := its logits 1000-d (a labelled "
            "extra: class scores, not an fc7 code); data sets: "
            + "; ".join(set_title(r.name) for r in results)
            + f". Profile {p['profile']}"
            + (
                f" (CIFAR-10 {p['cifar_train_per_class']}/class database, {p['cifar_test_per_class']}/class queries)"
                if "cifar10" in p["datasets"]
                else ""
            )
            + "."
            if sub
            else ""
        )
        + " Pyramids as the paper's Table 2 composes them; their dims on 6x6x256 are Table 3's. 95% CI: "
        "bootstrap over the queries (an interval over 9 queries is coarse)"
        + "".join(
            f"; {set_title(r.name)}: every frame of a scene is a query ({len(r.aps[next(iter(r.aps))])} queries from "
            f"{len(np.unique(r.scenes))} scenes), its neighbours within the junk window and the rest of its camera "
            f"shot are junk, mAP = mean over {len(r.items(next(iter(r.aps))))} shots (each the mean over its scenes "
            f"of their queries' mean AP), interval over the shots (the independent items)"
            for r in results
            if r.clusters is not None
        )
        + "."
    )
    first = results[0]
    cmp = io.paper_vs_ours(
        [
            {"method": n, "dims": first.dims[n], "paper": PAPER_MAP.get(n, (None,))[0], "ours": first.mAP[n]}
            for n in first.mAP
        ]
    )
    return table, cmp, title, note


def per_clip_table(r: SetResult, descriptors: Sequence[str]):
    """The video set per clip: shots, scenes, queries, and each descriptor's mAP over the clip's shots (each shot
    the mean over its scenes of their queries' mean AP), then every clip pooled; the clips hold unequal numbers of
    shots (the cuts decide), so the pooled row weighs each shot, not each clip, the same."""
    import pandas as pd

    if r.query_clip is None:
        raise ValueError(f"{set_title(r.name)}: no clip per query (only the video set has one)")
    clusters = r.clusters if r.clusters is not None else np.arange(len(r.query_clip))
    scenes = r.scenes if r.scenes is not None else np.arange(len(r.query_clip))
    rows = []
    for name in [*dict.fromkeys(r.query_clip), "all clips"]:
        sel = np.ones(len(r.query_clip), bool) if name == "all clips" else r.query_clip == name
        shots = np.unique(clusters[sel])
        row = {"clip": name, "shots": len(shots), "scenes": len(np.unique(scenes[sel])), "queries": int(sel.sum())}
        for n in descriptors:
            a = np.asarray(r.aps[n])
            row[n] = float(
                np.mean(
                    [
                        np.mean(
                            [
                                a[sel & (clusters == c) & (scenes == s)].mean()
                                for s in np.unique(scenes[sel & (clusters == c)])
                            ]
                        )
                        for c in shots
                    ]
                )
            )
        rows.append(row)
    return pd.DataFrame(rows)


def plot_map_vs_dim(results: Sequence[SetResult], paper: dict[str, tuple] | None = None, paper_dims=None):
    """mAP against descriptor dimension (log scale), one panel per set, plus a panel with the paper's AlexNet
    numbers (Holidays, Oxford5K) where given."""
    import matplotlib.pyplot as plt

    extra = int(bool(paper and paper_dims))
    n_pan = len(results) + extra
    fig, axes = plt.subplots(1, n_pan, figsize=(4.6 * n_pan, 3.8), squeeze=False)
    for ax, r in zip(axes[0], results):
        for n in r.mAP:
            kind = "o" if n.startswith("pyramid") else "s" if n.startswith("window") else "^"
            ax.scatter(r.dims[n], r.mAP[n], marker=kind, s=36)
            ax.annotate(
                n.replace("pyramid", "P").replace("window", "W"),
                (r.dims[n], r.mAP[n]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_title(f"ours: {set_title(r.name)}", fontsize=9)
    if extra:
        ax = axes[0][-1]
        for j, (label, mk) in enumerate((("Holidays", "x"), ("Oxford5K", "+"))):
            pts = [(n, paper_dims[n], v[j]) for n, v in paper.items() if v[j] is not None and n in paper_dims]
            ax.scatter(
                [d for _, d, _ in pts],
                [m for _, _, m in pts],
                marker=mk,
                c="k" if j == 0 else "tab:red",
                s=36,
                label=label,
            )
            for n, d, m in pts:
                ax.annotate(n.replace("pyramid", "P"), (d, m), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.legend(fontsize=7)
        ax.set_title("paper: AlexNet ImageNet (Tables 3/4)", fontsize=9)
    for ax in axes[0]:
        ax.set_xscale("log")
        ax.set_xlabel("descriptor dimension")
        ax.set_ylabel("mAP")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_topk(
    images: Sequence[np.ndarray],
    queries: Sequence[int],
    order: np.ndarray,
    relevant: Sequence,
    k: int = 5,
    title: str = "",
    skip: Sequence = (),
):
    """Each row: a query, then its top-k results (query and ``skip[i]`` items left out), green frame = relevant."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(queries), k + 1, figsize=(1.9 * (k + 1), 1.9 * len(queries)), squeeze=False)
    for i, q in enumerate(queries):
        ignore = {q, *(skip[i] if len(skip) else ())}
        top = [j for j in order[i] if j not in ignore][:k]
        for a, (j, tag) in zip(axes[i], [(q, "query")] + [(j, f"#{t + 1}") for t, j in enumerate(top)]):
            a.imshow(images[j])
            a.set_xticks([]), a.set_yticks([])
            col = "tab:blue" if tag == "query" else "tab:green" if j in set(relevant[i]) else "tab:red"
            for sp in a.spines.values():
                sp.set_edgecolor(col)
                sp.set_linewidth(3)
            a.set_title(tag, fontsize=8, color=col)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def shot_table(r: SetResult, descriptors: Sequence[str]):
    """The video set shot by shot (its independent items): clip, scenes, queries, and whether every descriptor gives
    the shot the same AP (a tie: it adds 0 to every paired difference, so it cannot tell descriptors apart), with
    the lowest and highest AP over the descriptors."""
    import pandas as pd

    if r.clusters is None or r.query_clip is None:
        raise ValueError(f"{set_title(r.name)}: no camera shots (only the video set has them)")
    shots = np.unique(r.clusters)
    x = np.stack([r.items(n) for n in descriptors])  # descriptors x shots, in np.unique order
    tied = r.tied(descriptors)
    scenes = r.scenes if r.scenes is not None else np.arange(len(r.clusters))
    rows = []
    for i, c in enumerate(shots):
        sel = r.clusters == c
        rows.append(
            {
                "shot": int(c),
                "clip": str(r.query_clip[sel][0]),
                "scenes": len(np.unique(scenes[sel])),
                "queries": int(sel.sum()),
                "every descriptor the same AP": "yes (tie)" if tied[i] else "no",
                "lowest AP": float(x[:, i].min()),
                "highest AP": float(x[:, i].max()),
            }
        )
    return pd.DataFrame(rows)
