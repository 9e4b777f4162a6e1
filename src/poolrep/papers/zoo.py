"""The pooling zoo: every operator of the five papers, plus global average, max and GeM, on one backbone.

All operators read the same ImageNet MobileNetV2 maps (the ``backbone`` stage: last block ``features.18``,
1280 x 6 x 6 at 192 px, and the block before it, ``features.17``, 320 x 6 x 6) and are evaluated the same way:
a linear probe on CIFAR-10 and instance/scene retrieval, with their output dimension and pooling time per image.

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
from ..pooling.attention import SpatialAttentionPool
from ..pooling.autopool import train_autopool
from ..pooling.crosslayer import CrossLayerPool
from .crosslayer import fit_pca, sample_local_features
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
    return SharedAutoPool(ap.P.cpu()), {"pairs": int(len(xa)), "cost": log.cost, "seconds": log.seconds}


def train_attention(train_maps: np.ndarray, labels: np.ndarray, epochs: int, lr: float, batch: int, seed: int,
                    device) -> SpatialAttentionPool:
    """Spatial attention pooling trained with a linear softmax head on labelled maps (the head is discarded)."""
    torch.manual_seed(seed)
    c = train_maps.shape[1]
    att = SpatialAttentionPool(c).to(device)
    head = nn.Linear(c, int(labels.max()) + 1).to(device)
    opt = torch.optim.Adam([*att.parameters(), *head.parameters()], lr=lr)
    x_all = torch.as_tensor(train_maps)
    y_all = torch.as_tensor(labels)
    g = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(epochs), desc="zoo attention", leave=False):
        for i in torch.randperm(len(x_all), generator=g).split(batch):
            x, y = x_all[i].to(device).float(), y_all[i].to(device)
            loss = nn.functional.cross_entropy(head(att(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return att.cpu().eval()


def build_ops(p: dict, train_maps, train_prev, train_labels, video_pairs, classifier: nn.Linear, device) -> tuple[list[Op], dict]:
    """The zoo's operators, each configured from params ``p``; returns (ops, info about what was learned)."""
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
                  ap, learned=f"{len(a)} consecutive-frame pairs of real video"))
    ops.append(Op(f"L2 group pooling ({p['l2_group']} ch, {p['l2_kernel']}x{p['l2_kernel']})", "slow features",
                  "pooling.group_l2", GroupL2Pool(p["l2_group"], p["l2_kernel"])))
    ops += window_ops(p)
    t0 = time.perf_counter()
    local = sample_local_features(train_prev, 3, 3, p["cross_pca_samples"], p["seed"])
    mean, comp, _ = fit_pca(local, p["cross_pca_dim"], p["seed"])
    info["crosslayer"] = {"pca_dim": p["cross_pca_dim"], "pca_samples": len(local), "fit_s": time.perf_counter() - t0}
    ops.append(Op(f"cross-layer (17 -> 18, PCA {p['cross_pca_dim']})", "cross-layer", "pooling.crosslayer",
                  CrossLayerOnBoth(CrossLayerPool(mean, comp, normalise_sum=True)), two_layers=True,
                  learned="PCA on CIFAR-10 training maps"))
    ops.append(Op("entropy (ImageNet classifier, linear weights)", "entropy", "pooling.entropy",
                  EntropyPool(classifier, "linear"), learned="none (backbone's own classifier)"))
    ops.append(Op(f"entropy (ImageNet classifier, softmax T={p['entropy_t']:g})", "entropy", "pooling.entropy",
                  EntropyPool(classifier, "softmax", p["entropy_t"]), learned="none (backbone's own classifier)"))
    t0 = time.perf_counter()
    att = train_attention(train_maps, train_labels, p["attention_epochs"], p["attention_lr"], p["attention_batch"],
                          p["seed"], device)
    info["attention"] = {"train_s": time.perf_counter() - t0}
    ops.append(Op("spatial attention", "entropy (baseline)", "pooling.attention", att,
                  learned="CIFAR-10 training labels"))
    return ops, info


def window_ops(p: dict) -> list[Op]:
    """Sliding-window and pyramid max pooling and hybrid pooling (Jose et al.), windows named in params."""
    ops = [Op(f"window max {w}", "pyramid", "pooling.window", WindowMaxPool(w)) for w in p["windows"]]
    return ops + [Op("hybrid max+avg", "pyramid", "pooling.window", HybridPool())]


def apply(op: Op, last: np.ndarray, prev: np.ndarray | None, batch: int = 100, device="cpu") -> tuple[np.ndarray, float]:
    """Pooled descriptors (float32 N x D) and the pooling time per image in milliseconds (after one warm-up)."""
    return apply_batched(op.pool, last, prev if op.two_layers else None, batch_size=batch, device=device,
                         dtype=np.float32, timed=True)


def linear_probe(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray,
                 alphas=(0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0)) -> tuple[float, float]:
    """(accuracy in %, chosen alpha) of a ridge linear classifier on standardised descriptors (scikit-learn).

    Ridge has a closed form, so every operator gets the same cost and no convergence tuning; its regularisation
    is chosen per operator by efficient leave-one-out on the training set (``RidgeClassifierCV``), since one fixed
    alpha would favour some descriptor dimensions over others.
    """
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(xtr)
    clf = RidgeClassifierCV(alphas=alphas).fit(sc.transform(xtr), ytr)
    return 100.0 * float((clf.predict(sc.transform(xte)) == yte).mean()), float(clf.alpha_)


# ------------------------------------------------------------------------------------------------- the stage


def inputs(p: dict, bb: dict, device, run) -> dict:
    """Everything the operators are evaluated on besides the cached CIFAR-10 maps ``bb``: the ``pairs/`` photographs'
    maps, consecutive-frame pairs of the mirror's clips (auto-pooling's training data) and the video scene set of the
    ``pyramid`` stage (defined once, by its parameters), all through the same network at ``p['input_px']``."""
    from .. import config
    from ..data import source_of
    from ..data.pairs import load_pairs
    from ..data.scenes import video_scene_set
    from ..data.video import clips, read_frames
    from ..features import LAST_CONV, PREV_CONV, extract, extractor

    net, size = str(bb["net"]), p["input_px"]
    fx, mean, std = extractor(net, [PREV_CONV[net], LAST_CONV[net]])
    pairs = load_pairs()
    run.data("pairs", source=source_of("pairs"), images=len(pairs.images), substitute="stands in for INRIA Holidays")
    pm = extract(fx, mean, std, pairs.images, size, 16, device, desc="pairs")

    rng = np.random.default_rng(p["seed"])
    pa, pb = [], []
    per_clip = max(1, p["autopool_pairs"] // 4)
    for clip in clips():
        fr = read_frames(clip, size=(size, size), max_frames=p["video_frames"] * 4)
        t = np.sort(rng.choice(len(fr) - 1, min(per_clip, len(fr) - 1), replace=False))
        m = extract(fx, mean, std, np.concatenate([fr[t], fr[t + 1]]), size, 32, device, desc=clip.name)[LAST_CONV[net]]
        pa.append(m[: len(t)])
        pb.append(m[len(t):])
    run.data("videos", source=source_of("videos"), pairs=sum(len(a) for a in pa),
             note="consecutive frames of the four real clips, for auto-pooling's P")

    pyr = config.resolve("pyramid", profile=p["profile"])
    scenes = video_scene_set(clips(), (size, size), pyr["video_step"], pyr["video_threshold"], pyr["video_min_len"],
                             pyr["video_max_len"], pyr["video_gap"], pyr["video_max_frames"])
    run.data("video scenes", source=scenes.source, frames=len(scenes.frames), queries=len(scenes.queries),
             substitute="scene retrieval cut from real video, as in the pyramid stage")
    sm = extract(fx, mean, std, scenes.frames, size, 32, device, desc="scene frames")
    return {"pairs": pairs, "pairs_maps": (pm[LAST_CONV[net]], pm[PREV_CONV[net]]),
            "video_pairs": (np.concatenate(pa), np.concatenate(pb)), "scenes": scenes,
            "scene_maps": (sm[LAST_CONV[net]], sm[PREV_CONV[net]])}


def evaluate(ops: list[Op], bb: dict, inp: dict, probe_alphas, device):
    """One row per operator: dimension, CIFAR-10 linear-probe accuracy and class-retrieval mAP, and the mAP of the
    two retrieval substitutes (``pairs/`` under the Holidays protocol, the video scenes under Oxford's). Returns
    ``(table, pooling milliseconds per image by operator)``: the times go to run.json, not the table (they differ
    from one identical run to the next)."""
    import pandas as pd

    from ..metrics.retrieval import class_map, holidays_map, oxford_map, rank

    pairs, scenes = inp["pairs"], inp["scenes"]
    q_idx = [g[0] for g in pairs.groups]
    rows, times = [], {}
    for op in ops:
        xtr, t_ms = apply(op, bb["train_maps"], bb["train_prev_maps"], device=device)
        xte, t_ms = apply(op, bb["test_maps"], bb["test_prev_maps"], device=device)
        xpr, _ = apply(op, *inp["pairs_maps"], device=device)
        acc, alpha = linear_probe(xtr, bb["train_labels"], xte, bb["test_labels"], probe_alphas)
        # rank() compares L2-normalised descriptors (Euclidean = cosine)
        cls_map, _ = class_map(rank(torch.as_tensor(xte), torch.as_tensor(xtr)), bb["test_labels"], bb["train_labels"])
        d = torch.as_tensor(xpr)
        hol_map, _ = holidays_map(rank(d[q_idx], d), q_idx, pairs.groups)
        xsc, _ = apply(op, *inp["scene_maps"], device=device)
        ds = torch.as_tensor(xsc)
        scene_map, _ = oxford_map(rank(ds[scenes.queries], ds), scenes.positives, scenes.junk)
        times[op.name] = t_ms
        rows.append({"operator": op.name, "paper": op.paper, "module": op.module, "dim": xtr.shape[1],
                     "cifar10_probe_acc": acc, "probe_alpha": alpha, "cifar10_class_mAP": cls_map,
                     "pairs_mAP": hol_map, "video_scene_mAP": scene_map, "learned_from": op.learned})
    table = pd.DataFrame(rows)
    if not table[["cifar10_class_mAP", "pairs_mAP", "video_scene_mAP"]].apply(lambda c: c.between(0, 1).all()).all() \
            or not table["cifar10_probe_acc"].between(0, 100).all() or not (table["dim"] > 0).all():
        raise AssertionError("a score outside its range or an empty descriptor")
    return table, times


def plot_tradeoffs(table, title: str):
    """Linear-probe accuracy and instance-retrieval mAP against descriptor dimension."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    for ax, col, lab in zip(axes, ["cifar10_probe_acc", "pairs_mAP"],
                            ["CIFAR-10 linear probe accuracy (%)", "pairs mAP (Holidays protocol)"]):
        sns.scatterplot(data=table, x="dim", y=col, hue="paper", s=70, ax=ax)
        for _, r in table.iterrows():
            ax.annotate(r.operator.split(" (")[0][:22], (r["dim"], r[col]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("descriptor dimension")
        ax.set_ylabel(lab)
        ax.legend(fontsize=6)
    fig.suptitle(title)
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
