"""The experiments of auto-pooling (Sukhbaatar, Makino & Aihara 2013) as functions the notebook calls:
streaming pair features, pooled CIFAR-10 features (AP and SP) computed batch by batch, the linear classifier,
and the figures (clusters, conv-model clusters)."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from .data.framepairs import Pairs
from .pooling.autopool import AutoPool
from .pooling.spatial import MultiGridPool, grid_name
from .sae import PatchModel, conv_features


def pair_batches(pairs: Pairs, model: PatchModel, batch_size: int, device="cpu", seed: int = 0, conv: bool = True):
    """``batches(epoch)`` for :func:`poolrep.pooling.autopool.train_autopool`: shuffles the pairs each epoch and
    computes the features of each batch on the fly (``conv``: convolutional maps flattened; else the patch code)."""

    def feats(p):
        if conv:
            return conv_features(p, model, device).flatten(1)
        x = torch.as_tensor(p.reshape(len(p), -1), dtype=torch.float32, device=device)
        with torch.no_grad():
            return model.encode_patches(x)

    def batches(epoch: int):
        order = np.random.default_rng(seed + epoch).permutation(len(pairs))
        for s in range(0, len(order), batch_size):
            idx = np.sort(order[s:s + batch_size])
            yield feats(pairs.a[idx]), feats(pairs.b[idx])

    return batches


@torch.no_grad()
def pair_codes(pairs: Pairs, model: PatchModel, pool=None, batch_size: int = 200, device="cpu", conv: bool = False):
    """Features (``pool=None``) or pooled codes of both frames of every pair: two ``N x d`` float64 arrays."""
    a_out, b_out = [], []
    for s in range(0, len(pairs), batch_size):
        for src, dst in ((pairs.a, a_out), (pairs.b, b_out)):
            p = src[s:s + batch_size]
            if conv:
                x = conv_features(p, model, device).flatten(1)
            else:
                x = model.encode_patches(torch.as_tensor(p.reshape(len(p), -1), dtype=torch.float32, device=device))
            dst.append((pool(x) if pool is not None else x).double().cpu().numpy())
    return np.concatenate(a_out), np.concatenate(b_out)


@torch.no_grad()
def pooled_cifar(images: np.ndarray, model: PatchModel, ap: dict[int, AutoPool], sp_grids: list, batch_size: int = 100,
                 device="cpu", desc: str = "pooled features") -> dict[str, np.ndarray]:
    """Pooled features of ``images`` (N x 32 x 32 x 3) for every AP model (key ``AP K=<K>``) and every SP grid set
    (key ``SP <grids>``, sum pooling), computing the 72,900-d conv features one batch at a time."""
    Ks = sorted(ap)
    P_all = torch.cat([ap[k].P for k in Ks]).to(device) if Ks else None
    sps = {f"SP {grid_name(g)}": MultiGridPool(g, "sum") for g in sp_grids}
    out: dict[str, list] = {**{f"AP K={k}": [] for k in Ks}, **{n: [] for n in sps}}
    for s in tqdm(range(0, len(images), batch_size), desc=desc, leave=False):
        maps = conv_features(images[s:s + batch_size], model, device)
        if P_all is not None:
            z = maps.flatten(1) @ P_all.T
            for k, part in zip(Ks, torch.split(z, Ks, dim=1)):
                out[f"AP K={k}"].append(part.cpu().numpy())
        for n, pool in sps.items():
            out[n].append(pool(maps).cpu().numpy())
    return {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}


def classify(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray, C: float = 0.01,
             seed: int = 0) -> float:
    """Test accuracy (%) of a linear L2-SVM (scikit-learn ``LinearSVC``, squared hinge, one-vs-rest, as Coates et
    al.'s liblinear classifier) on standardised features (mean/std of the training set)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError("features and labels must have the same length")
    clf = make_pipeline(StandardScaler(), LinearSVC(C=C, dual=xtr.shape[1] > xtr.shape[0], max_iter=5000,
                                                    random_state=seed))
    clf.fit(xtr, ytr)
    return 100.0 * float((clf.predict(xte) == yte).mean())


# --------------------------------------------------------------------------------------------- figures


def _tile(f: np.ndarray) -> np.ndarray:
    f = f - f.min()
    return f / f.max() if f.max() > 0 else f


def cluster_members(P: np.ndarray, threshold: float) -> list[np.ndarray]:
    """For each row of P, the features with ``P_ij > threshold * max_j P_ij``, strongest first."""
    out = []
    for row in P:
        m = row.max()
        idx = np.flatnonzero(row > threshold * m) if m > 0 else np.array([], int)
        out.append(idx[np.argsort(-row[idx])])
    return out


def plot_clusters(P: np.ndarray, filters: np.ndarray, threshold: float, n_clusters: int = 12, max_members: int = 10,
                  title: str = ""):
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


def plot_conv_clusters(P: np.ndarray, filters: np.ndarray, C: int, H: int, W: int, n_clusters: int = 6,
                       n_filters: int = 6, seed: int = 0, title: str = ""):
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
