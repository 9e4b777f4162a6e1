"""The pooling zoo: every operator of the five papers, plus global average, max and GeM, on one backbone.

All operators read the same ImageNet MobileNetV2 maps (the ``backbone`` stage: last block ``features.18``,
1280 x 6 x 6 at 192 px, and the block before it, ``features.17``, 320 x 6 x 6) and are evaluated the same way:
a linear probe on CIFAR-10, CIFAR-10 class retrieval and instance / scene retrieval, with their output dimension
and pooling time per image.

Some operators need more than the maps; each gets it here, in the most direct form the backbone allows:
- auto-pooling learns its non-negative P from consecutive frames of the mirror's real videos. With 1280 x 36
  inputs a full P (K x 46,080) is out of reach on 2 cores, so P pools the 36 locations and is shared by all
  channels (``SharedAutoPool``): learned pooling regions against the fixed grids of spatial pooling.
- entropy pooling uses the backbone's own ImageNet classifier (1000 classes) at every location.
- attention pooling is trained with a linear softmax head on the CIFAR-10 training maps (labels used).
- cross-layer pooling takes ``features.17`` as layer t (PCA-reduced 3x3 neighbourhoods) and ``features.18`` as t+1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..features import apply_batched
from ..heads import fit_head
from ..pooling.attention import SpatialAttentionPool
from ..pooling.autopool import train_autopool
from ..pooling.crosslayer import CrossLayerPool
from .crosslayer import PostProcess, fit_pca, sample_local_features
from ..pooling.entropy import EntropyPool
from ..pooling.global_pool import GeM, GlobalAvgPool, GlobalMaxPool
from ..pooling.group_l2 import GroupL2Pool
from ..pooling.spatial import MultiGridPool, SpatialPool
from ..pooling.window import HybridPool, WindowMaxPool


class SharedAutoPool(nn.Module):
    """Auto-pooling over locations, shared by channels: ``N x C x H x W -> N x C*K``, ``z_c = P x_c`` with
    ``x_c`` the ``H*W`` values of channel c and ``P >= 0`` (K x H*W) learned by ``train_autopool``."""

    def __init__(self, P: torch.Tensor):
        super().__init__()
        if P.ndim != 2 or (P < 0).any():
            raise ValueError("P must be a non-negative K x (H*W) matrix")
        self.P = nn.Buffer(P.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[2] * x.shape[3] != self.P.shape[1]:
            raise ValueError(f"expected N x C x H x W maps with H*W = {self.P.shape[1]}, got {tuple(x.shape)}")
        n, c = x.shape[:2]
        return (x.reshape(n, c, -1).float() @ self.P.T).reshape(n, -1)


class CrossLayerOnBoth(nn.Module):
    """Adapter: the zoo calls ``op(last, prev)``; cross-layer pooling wants ``(layer t, layer t+1)``."""

    def __init__(self, cross: CrossLayerPool):
        super().__init__()
        self.cross = cross

    def forward(self, last: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        return self.cross(prev, last)


@dataclass
class Op:
    name: str
    paper: str  # which paper (or "reference")
    module: str  # where the operator lives
    pool: nn.Module
    two_layers: bool = False  # needs (last, prev) maps
    learned: str = "none"  # what it learned from, if anything
    post_process: bool = False  # cross-layer's post-processing (poolrep.papers.crosslayer.PostProcess) after pooling


def learn_shared_autopool(pairs_a: np.ndarray, pairs_b: np.ndarray, K: int, lam: float, epochs: int, lr: float,
                          batch: int, seed: int, device) -> tuple[SharedAutoPool, dict]:
    """Train P (K x H*W) on maps of consecutive frames: every channel of every pair is one training pair."""
    n, c, h, w = pairs_a.shape
    xa = torch.as_tensor(pairs_a, dtype=torch.float32).reshape(n * c, h * w)
    xb = torch.as_tensor(pairs_b, dtype=torch.float32).reshape(n * c, h * w)
    keep = (xa.sum(1) + xb.sum(1)) > 0  # channels silent in both frames carry no information about P
    xa, xb = xa[keep], xb[keep]

    def batches(ep):
        g = torch.Generator().manual_seed(seed + ep)
        order = torch.randperm(len(xa), generator=g)
        for s in range(0, len(order), batch):
            i = order[s : s + batch]
            yield xa[i], xb[i]

    ap, log = train_autopool(batches, K=K, D=h * w, lam=lam, epochs=epochs, lr=lr, seed=seed, device=device,
                             desc="zoo auto-pooling")
    # frame_pairs: consecutive-frame pairs; channel_pairs: the training pairs P sees (one per non-silent channel)
    return SharedAutoPool(ap.P.cpu()), {"frame_pairs": int(n), "channel_pairs": int(len(xa)), "cost": log.cost,
                                        "seconds": log.seconds}


def train_attention(train_maps: np.ndarray, labels: np.ndarray, head: dict, seed: int, device) -> SpatialAttentionPool:
    """Spatial attention pooling trained with a linear softmax head on labelled maps, with the entropy stage's head
    recipe (``poolrep.heads.fit_head``: SGD, warm-up then cosine, its epochs, batch, learning rate, weight
    decay and dropout); the classifier is discarded, the attention kept."""
    h, _ = fit_head("attention", seed, torch.as_tensor(train_maps), torch.as_tensor(labels), epochs=head["head_epochs"],
                    batch_size=head["head_batch_size"], lr=head["head_lr"], weight_decay=head["head_weight_decay"],
                    dropout=head["head_dropout"], device=device)
    return h.pool.eval()


def build_ops(p: dict, train_maps, train_prev, train_labels, video_pairs, classifier: nn.Linear, device,
              head: dict, pyramids: dict) -> tuple[list[Op], dict]:
    """The zoo's operators, each configured from params ``p``; ``head``: the entropy stage's head recipe (its
    ``head_*`` parameters), with which the attention baseline is trained as there; ``pyramids``: the pyramid
    stage's compositions. Returns (ops, info about what was learned)."""
    info = {}
    ops = [
        Op("global average (GAP)", "reference", "pooling.global_pool", GlobalAvgPool()),
        Op("global max", "reference", "pooling.global_pool", GlobalMaxPool()),
        Op(f"GeM p={p['gem_p']:g}", "reference", "pooling.global_pool", GeM(p["gem_p"])),
        Op("spatial sum 2x2", "auto-pooling (SP baseline)", "pooling.spatial", SpatialPool(2, "sum")),
        Op("spatial sum 1x1+2x2", "auto-pooling (SP baseline)", "pooling.spatial", MultiGridPool((1, 2), "sum")),
    ]
    a, b = video_pairs
    t0 = time.perf_counter()
    ap, ap_info = learn_shared_autopool(a, b, p["autopool_k"], p["autopool_lam"], p["autopool_epochs"],
                                        p["autopool_lr"], p["autopool_batch"], p["seed"], device)
    info["autopool"] = {**ap_info, "train_s": time.perf_counter() - t0}
    ops.append(Op(f"auto-pooling K={p['autopool_k']} (shared over channels)", "auto-pooling", "pooling.autopool",
                  ap, learned=(f"{len(a)} consecutive-frame pairs of real video, from frames in no test scene; "
                               f"{p['autopool_epochs']} epochs, cost {ap_info['cost'][0]:.4g} -> "
                               f"{ap_info['cost'][-1]:.4g} per epoch")))
    ops.append(Op(f"L2 group pooling ({p['l2_group']} ch, {p['l2_kernel']}x{p['l2_kernel']})", "slow features",
                  "pooling.group_l2", GroupL2Pool(p["l2_group"], p["l2_kernel"])))
    ops += window_ops(p["windows"], pyramids)
    t0 = time.perf_counter()
    local = sample_local_features(train_prev, 3, 3, p["cross_pca_samples"], p["seed"])
    mean, comp, _ = fit_pca(local, p["cross_pca_dim"], p["seed"])
    info["crosslayer"] = {"pca_dim": p["cross_pca_dim"], "pca_samples": len(local), "fit_s": time.perf_counter() - t0}
    # layer t+1 weighs 3x3 neighbourhoods of layer t through its own 1x1 positions: the zoo caches only two layers,
    # so the paper's Eq. 1 correspondence (t+1 = an m x n convolution of t) is not matched here; named in the name
    ops.append(Op(f"cross-layer (17 -> 18 as 1x1 weights, PCA {p['cross_pca_dim']}, standardised + signed sqrt)",
                  "cross-layer",
                  "pooling.crosslayer", CrossLayerOnBoth(CrossLayerPool(mean, comp, normalise_sum=True)),
                  two_layers=True, post_process=True,
                  learned="PCA and post-processing statistics on CIFAR-10 training maps"))
    ops.append(Op("entropy (ImageNet classifier, linear weights)", "entropy", "pooling.entropy",
                  EntropyPool(classifier, "linear"), learned="none (backbone's own classifier)"))
    ops.append(Op(f"entropy (ImageNet classifier, softmax T={p['entropy_t']:g} log C)", "entropy", "pooling.entropy",
                  EntropyPool(classifier, "softmax", p["entropy_t"]), learned="none (backbone's own classifier)"))
    t0 = time.perf_counter()
    att = train_attention(train_maps, train_labels, head, p["seed"], device)
    info["attention"] = {"train_s": time.perf_counter() - t0}
    ops.append(Op("spatial attention", "entropy (baseline)", "pooling.attention", att,
                  learned=f"CIFAR-10 training labels (the entropy stage's head recipe, {head['head_epochs']} epochs)"))
    return ops, info


def window_ops(windows, pyramids: dict) -> list[Op]:
    """The windows and pyramids of Jose et al. (Tables 1 and 2) named in ``windows``, composed as the pyramid stage
    composes them (``pyramids``), and their hybrid pooling."""
    ops = [Op(f"window max {w}", "pyramid", "pooling.window", WindowMaxPool(w, pyramids)) for w in windows]
    return ops + [Op("hybrid max+avg", "pyramid", "pooling.window", HybridPool())]


def apply(op: Op, last: np.ndarray, prev: np.ndarray | None, batch: int = 100, device="cpu") -> tuple[np.ndarray, float]:
    """Pooled descriptors (float32 N x D) and the pooling time per image in milliseconds (after one warm-up)."""
    return apply_batched(op.pool, last, prev if op.two_layers else None, batch_size=batch, device=device,
                         dtype=np.float32, timed=True)


def linear_probe(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray,
                 alphas=(0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0)) -> tuple[np.ndarray, float]:
    """(per test item, is it classified right; chosen alpha) of a ridge linear classifier on standardised
    descriptors (scikit-learn).

    Ridge has a closed form, so every operator gets the same cost and no convergence tuning; its regularisation
    is chosen per operator by efficient leave-one-out on the training set (``RidgeClassifierCV``), since one fixed
    alpha would favour some descriptor dimensions over others.
    """
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(xtr)
    clf = RidgeClassifierCV(alphas=alphas).fit(sc.transform(xtr), ytr)
    return clf.predict(sc.transform(xte)) == np.asarray(yte), float(clf.alpha_)


# ------------------------------------------------------------------------------------------------- the stage
# Each measure: its label and the scale of its per-item values (0/1 hits -> %, per-query AP -> mAP as is).
METRICS = {"cifar10_probe_acc": ("CIFAR-10 linear probe accuracy (%)", 100.0),
           "cifar10_class_mAP": ("CIFAR-10 class-retrieval mAP", 1.0),
           "pairs_mAP": ("pairs mAP (Holidays protocol)", 1.0),
           "video_scene_mAP": ("video scene mAP (Oxford protocol)", 1.0)}


def inputs(p: dict, bb: dict, device, run) -> dict:
    """Everything the operators are evaluated on besides the cached CIFAR-10 maps ``bb``: the ``pairs/`` photographs'
    maps, the video scene set of the ``pyramid`` stage (defined once, by its parameters, over all the mirror's
    clips) and consecutive-frame pairs for auto-pooling's P taken only from frames that lie in no scene (so P never
    sees a test frame), all through the same network at ``p['input_px']``."""
    from .. import config
    from ..data import source_of
    from ..data.pairs import load_pairs
    from ..data.scenes import outside_scenes, video_scene_set
    from ..data.video import clips, read_frames
    from ..features import LAST_CONV, PREV_CONV, extract, extractor

    net, px = str(bb["net"]), p["input_px"]
    fx, mean, std = extractor(net, [PREV_CONV[net], LAST_CONV[net]])
    pairs = load_pairs()
    run.data("pairs", source=source_of("pairs"), images=len(pairs.images), substitute="stands in for INRIA Holidays")
    pm = extract(fx, mean, std, pairs.images, px, 16, device, desc="pairs")

    pyr = config.resolve("pyramid", profile=p["profile"])
    paths_ = clips()
    scenes = video_scene_set(paths_, (px, px), pyr["video_step"], pyr["video_threshold"], pyr["video_min_len"],
                             pyr["video_max_len"], pyr["video_gap"], pyr["video_max_frames"],
                             segment_gap=pyr["video_segment_gap"])
    run.data("video scenes", source=scenes.source, frames=len(scenes.frames), queries=len(scenes.queries),
             substitute="scene retrieval cut from real video, as in the pyramid stage (Megamind.avi is animated)")
    sm = extract(fx, mean, std, scenes.frames, px, 32, device, desc="scene frames")

    rng = np.random.default_rng(p["seed"])
    per_clip = [p["autopool_pairs"] // len(paths_) + (k < p["autopool_pairs"] % len(paths_))
                for k in range(len(paths_))]
    max_f = None if pyr["video_max_frames"] is None else pyr["video_max_frames"] * pyr["video_step"]
    pa, pb = [], []
    for k, (clip, n) in enumerate(zip(paths_, per_clip)):
        fr = read_frames(clip, size=(px, px), max_frames=max_f)
        free = outside_scenes(scenes.spans[k], len(fr))
        if len(free) == 0 or n == 0:
            continue
        t = np.sort(rng.choice(free, min(n, len(free)), replace=False))
        m = extract(fx, mean, std, np.concatenate([fr[t], fr[t + 1]]), px, 32, device, desc=clip.name)[LAST_CONV[net]]
        pa.append(m[: len(t)])
        pb.append(m[len(t):])
    if not pa:
        raise ValueError("no consecutive frames outside the scenes: auto-pooling has nothing to learn from")
    run.data("videos", source=source_of("videos"), pairs=sum(len(a) for a in pa),
             note="consecutive frames of the mirror's clips that lie in no test scene, for auto-pooling's P")
    return {"pairs": pairs, "pairs_maps": (pm[LAST_CONV[net]], pm[PREV_CONV[net]]),
            "video_pairs": (np.concatenate(pa), np.concatenate(pb)), "scenes": scenes,
            "scene_maps": (sm[LAST_CONV[net]], sm[PREV_CONV[net]])}


def descriptors(op: Op, bb: dict, inp: dict, device) -> tuple[tuple[np.ndarray, ...], float]:
    """``op``'s descriptors of the CIFAR-10 training and test maps, the ``pairs/`` photographs and the video scene
    frames, and its pooling milliseconds per image (test maps). Where ``op.post_process``, cross-layer's
    post-processing (``PostProcess``: standardise, signed square root, L2) is fitted on the CIFAR-10 training
    descriptors alone and applied to all four."""
    xtr, _ = apply(op, bb["train_maps"], bb["train_prev_maps"], device=device)
    xte, t_ms = apply(op, bb["test_maps"], bb["test_prev_maps"], device=device)
    xpr, _ = apply(op, *inp["pairs_maps"], device=device)
    xsc, _ = apply(op, *inp["scene_maps"], device=device)
    if op.post_process:
        pp = PostProcess().fit(xtr)
        xtr, xte, xpr, xsc = (pp.transform(x) for x in (xtr, xte, xpr, xsc))
    return (xtr, xte, xpr, xsc), t_ms


def tie_marks(per_item: dict[str, np.ndarray], scale: float, seed: int = 0) -> list[str]:
    """Per operator (``per_item``: name -> its per-item scores on one measure, same items for all, in table order):
    ``best`` for every operator at the top mean (on a saturated measure several reach it exactly, and picking one
    of them would be arbitrary), ``tied`` where the paired 95 % interval of (the first best - this operator)
    includes 0, else empty."""
    from ..claims import paired_bootstrap

    means = {name: float(np.mean(v)) for name, v in per_item.items()}
    top = max(means.values())
    ref = next(name for name, v in means.items() if v == top)
    marks = []
    for name, v in per_item.items():
        if means[name] == top:
            marks.append("best")
            continue
        e = paired_bootstrap(per_item[ref], v, seed=seed, scale=scale)
        marks.append("tied" if e.lo <= 0 else "")
    return marks


def evaluate(ops: list[Op], bb: dict, inp: dict, probe_alphas, device, seed: int = 0):
    """One row per operator: dimension, CIFAR-10 linear-probe accuracy and class-retrieval mAP, and the mAP of the
    two retrieval substitutes (``pairs/`` under the Holidays protocol, the video scenes under Oxford's), each with
    its 95 % bootstrap interval over the test items (images or queries) and, per measure, a mark (``tie_marks``:
    ``best`` at the top value, ``tied`` where the paired interval against the best includes 0). Returns ``(table, pooling
    milliseconds per image by operator)``: the times go to run.json, not the table (they differ from one identical
    run to the next)."""
    import pandas as pd

    from ..claims import bootstrap_mean
    from ..metrics.retrieval import class_map, holidays_map, oxford_map, rank

    pairs, scenes = inp["pairs"], inp["scenes"]
    q_idx = [g[0] for g in pairs.groups]
    rows, items, times = [], {}, {}
    for op in tqdm(ops, desc="operators", leave=False):
        (xtr, xte, xpr, xsc), t_ms = descriptors(op, bb, inp, device)
        hits, alpha = linear_probe(xtr, bb["train_labels"], xte, bb["test_labels"], probe_alphas)
        # rank() compares L2-normalised descriptors (Euclidean = cosine)
        _, cls_ap = class_map(rank(torch.as_tensor(xte), torch.as_tensor(xtr)), bb["test_labels"], bb["train_labels"])
        d = torch.as_tensor(xpr)
        _, hol_ap = holidays_map(rank(d[q_idx], d), q_idx, pairs.groups)
        ds = torch.as_tensor(xsc)
        _, sc_ap = oxford_map(rank(ds[scenes.queries], ds), scenes.positives, scenes.junk)
        times[op.name] = t_ms
        items[op.name] = {"cifar10_probe_acc": hits.astype(float), "cifar10_class_mAP": cls_ap, "pairs_mAP": hol_ap,
                          "video_scene_mAP": sc_ap}
        row = {"operator": op.name, "paper": op.paper, "module": op.module, "dim": xtr.shape[1]}
        for m, (_, scale) in METRICS.items():
            e = bootstrap_mean(items[op.name][m], seed=seed, scale=scale)
            row[m], row[f"{m} 95% CI"] = e.value, f"[{e.lo:.3g}, {e.hi:.3g}]"
        rows.append({**row, "probe_alpha": alpha, "learned_from": op.learned})
    table = pd.DataFrame(rows)
    for m, (_, scale) in METRICS.items():
        table[f"{m} tied with best"] = tie_marks({op.name: items[op.name][m] for op in ops}, scale, seed)
    if not table[["cifar10_class_mAP", "pairs_mAP", "video_scene_mAP"]].apply(lambda c: c.between(0, 1).all()).all() \
            or not (table["dim"] > 0).all():
        raise AssertionError("an mAP outside [0, 1] or an empty descriptor")
    return table, times


def plot_tradeoffs(table, title: str):
    """Linear-probe accuracy and instance-retrieval mAP against descriptor dimension."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    for ax, col in zip(axes, ["cifar10_probe_acc", "pairs_mAP"]):
        sns.scatterplot(data=table, x="dim", y=col, hue="paper", s=70, ax=ax)
        for _, r in table.iterrows():
            ax.annotate(r.operator.split(" (")[0][:22], (r["dim"], r[col]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("descriptor dimension")
        ax.set_ylabel(METRICS[col][0])
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_learned(ops: list[Op], inp: dict):
    """Auto-pooling's P (one map per pooled unit over the locations), and entropy / attention weights on a few
    ``pairs/`` photographs."""
    import matplotlib.pyplot as plt

    pairs = inp["pairs"]
    q_idx = [g[0] for g in pairs.groups]
    ap = next(o for o in ops if o.module == "pooling.autopool").pool
    ent = next(o for o in ops if o.name.startswith("entropy (ImageNet classifier, linear")).pool
    att = next(o for o in ops if o.module == "pooling.attention").pool
    k = ap.P.shape[0]
    side = int(round(ap.P.shape[1] ** 0.5))
    show = q_idx[:3]
    fig, axes = plt.subplots(2, max(k, 2 * len(show)), figsize=(2.2 * max(k, 2 * len(show)), 4.6), squeeze=False)
    for a in axes.ravel():
        a.axis("off")
    for i in range(k):
        axes[0, i].imshow(ap.P[i].reshape(side, side).numpy(), cmap="viridis")
        axes[0, i].set_title(f"P row {i}", fontsize=8)
    with torch.no_grad():
        x = torch.as_tensor(inp["pairs_maps"][0][show]).float()
        we, wa = ent.weights(x).numpy(), att.weights(x).numpy()
    for j, i in enumerate(show):
        img = pairs.images[i]
        for c, (w, lab) in enumerate([(we[j], "entropy"), (wa[j], "attention")]):
            ax = axes[1, 2 * j + c]
            ax.imshow(img)
            ax.imshow(np.kron(w, np.ones((img.shape[0] // side + 1, img.shape[1] // side + 1)))[: img.shape[0],
                      : img.shape[1]], alpha=0.5, cmap="magma")
            ax.set_title(f"{pairs.names[i][:14]}: {lab}", fontsize=7)
    fig.tight_layout()
    return fig
