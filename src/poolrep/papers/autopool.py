"""Auto-pooling (Sukhbaatar, Makino & Aihara 2013): the ``autopool`` stage's experiment.

The operator is :class:`poolrep.pooling.autopool.AutoPool` (and its training, ``train_autopool``); here are the
parts of the paper's pipeline around it (Sec. 3): the low-level features, the frame pairs they are computed on,
the pooled CIFAR-10 features and the linear classifier of Table 1, and the cluster figures (Fig. 4/5, Fig. 9).

Low-level features (Sec. 3.1 "We used a sparse auto-encoder to learn 400 features from patches"; Sec. 3.2 "a
sparse auto-encoder with 100 hidden units on 6x6 small patches extracted from CIFAR10 images"), after Coates,
Lee & Ng (2011):

- contrast normalisation of a patch ``p`` (values in 0..255): ``(p - mean(p)) / sqrt(var(p) + eps_cn)``, eps_cn = 10;
- ZCA whitening (:class:`poolrep.normalize.ZCA`, eps_zca = 0.1);
- sparse auto-encoder: ``h = sigmoid(W1 x + b1)``, ``x_hat = W2 h + b2`` (linear decoder), cost

      J = 1/(2N) sum ||x_hat - x||^2 + decay/2 (||W1||^2 + ||W2||^2) + beta sum_j KL(rho || rho_hat_j),

  ``rho_hat_j`` the mean activation of unit j over the batch (UFLDL's sparseAutoencoderLinearCost), trained with
  full-batch L-BFGS (torch.optim.LBFGS, as the author's code used minFunc's L-BFGS);
- convolutional features (Sec. 3.2 "those local features are duplicated to all possible locations of 32x32
  images"): every ``s x s`` patch of an image at stride 1 goes through the same normalisation, whitening and
  encoder, giving ``H x (32 - s + 1) x (32 - s + 1)`` non-negative maps (100 x 27 x 27 = 72,900 values per CIFAR
  image for the colour model). :func:`conv_features` works on one batch of images at a time, so the 72,900-d
  features of a data set are never held in memory together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data.framepairs import Pairs
from ..normalize import ZCA
from ..pooling.autopool import AutoPool
from ..pooling.spatial import MultiGridPool, grid_name

# --------------------------------------------------------------------------------------------- features


def _as_float_patches(p) -> torch.Tensor:
    p = torch.as_tensor(p)
    if p.ndim != 2:
        raise ValueError(f"expected patches as a 2-d array N x D, got shape {tuple(p.shape)}")
    return p.to(torch.float32) if not p.is_floating_point() else p


def contrast_normalize(patches, eps: float = 10.0) -> torch.Tensor:
    """Per-patch brightness and contrast normalisation, ``(p - mean) / sqrt(var + eps)`` (rows are patches)."""
    p = _as_float_patches(patches)
    mu = p.mean(dim=1, keepdim=True)
    var = p.var(dim=1, keepdim=True)  # unbiased, as Coates et al.'s var(patches, [], 2)
    return (p - mu) / torch.sqrt(var + eps)


def sample_patches(images: np.ndarray, n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` random ``size x size`` patches of ``images`` (N x H x W [x C], uint8), flattened in (y, x, c) order
    -> float32 ``n x size*size*C``."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"expected images N x H x W [x C], got shape {images.shape}")
    N, H, W, _ = images.shape
    if size > H or size > W:
        raise ValueError(f"patch size {size} larger than images {H}x{W}")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, N, n)
    y = rng.integers(0, H - size + 1, n)
    x = rng.integers(0, W - size + 1, n)
    out = np.stack([images[a, b:b + size, c:c + size] for a, b, c in zip(i, y, x)])
    return out.reshape(n, -1).astype(np.float32)


class SparseAutoencoder(nn.Module):
    """Sigmoid encoder, linear decoder, KL sparsity penalty and weight decay (UFLDL's linear decoder)."""

    def __init__(self, visible: int, hidden: int, rho: float = 0.035, beta: float = 5.0, decay: float = 3e-3,
                 seed: int = 0):
        super().__init__()
        if not 0 < rho < 1:
            raise ValueError("rho (sparsity target) must be in (0, 1)")
        g = torch.Generator().manual_seed(seed)
        r = float(np.sqrt(6.0 / (visible + hidden + 1)))  # UFLDL initialisation
        self.W1 = nn.Parameter((torch.rand(hidden, visible, generator=g) * 2 - 1) * r)
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.W2 = nn.Parameter((torch.rand(visible, hidden, generator=g) * 2 - 1) * r)
        self.b2 = nn.Parameter(torch.zeros(visible))
        self.rho, self.beta, self.decay = rho, beta, decay

    @property
    def visible(self) -> int:
        return self.W1.shape[1]

    @property
    def hidden(self) -> int:
        return self.W1.shape[0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.visible:
            raise ValueError(f"expected N x {self.visible} inputs, got {tuple(x.shape)}")
        return torch.sigmoid(x @ self.W1.T + self.b1)

    def cost(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encode(x)
        rec = 0.5 * ((h @ self.W2.T + self.b2 - x) ** 2).sum() / x.shape[0]
        wd = 0.5 * self.decay * ((self.W1 ** 2).sum() + (self.W2 ** 2).sum())
        rho_hat = h.mean(dim=0).clamp(1e-6, 1 - 1e-6)
        rho = self.rho
        kl = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
        return rec + wd + self.beta * kl

    def fit(self, x, iters: int = 200, progress: bool = True) -> list[float]:
        """Full-batch L-BFGS on ``x`` (N x visible, already normalised and whitened); returns the cost history."""
        x = _as_float_patches(x).to(self.W1.device)
        opt = torch.optim.LBFGS(self.parameters(), lr=1.0, max_iter=iters, history_size=20,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)
        hist: list[float] = []
        bar = tqdm(total=iters, desc="SAE L-BFGS", leave=False, disable=not progress)

        def closure():
            opt.zero_grad()
            c = self.cost(x)
            c.backward()
            hist.append(float(c.detach()))
            bar.update(1)
            return c

        opt.step(closure)
        bar.close()
        return hist


@dataclass
class PatchModel:
    """Everything that maps a ``size x size`` patch to its hidden code: normalisation, whitening, encoder."""

    size: int
    channels: int
    zca: ZCA
    sae: SparseAutoencoder
    eps_cn: float = 10.0

    def encode_patches(self, patches) -> torch.Tensor:
        return self.sae.encode(self.zca(contrast_normalize(patches, self.eps_cn)))

    def filters(self) -> np.ndarray:
        """The features' decoder atoms (columns of ``W2``, in whitened patch space, as UFLDL displays a linear
        decoder's features) in pixel order, ``hidden x size x size [x C]``, for display."""
        w = self.sae.W2.detach().cpu().T.numpy()
        shape = (self.size, self.size) + ((self.channels,) if self.channels > 1 else ())
        return w.reshape(-1, *shape)


def train_patch_model(patches, size: int, channels: int, hidden: int, rho: float, beta: float, decay: float,
                      iters: int, eps_cn: float = 10.0, eps_zca: float = 0.1, seed: int = 0,
                      device: torch.device | str = "cpu") -> tuple[PatchModel, list[float]]:
    """Normalise, whiten and train the SAE on ``patches`` (N x size*size*channels, 0..255)."""
    xn = contrast_normalize(patches, eps_cn)
    zca = ZCA(eps_zca).fit(xn)
    xw = zca(xn).to(device)
    sae = SparseAutoencoder(xw.shape[1], hidden, rho, beta, decay, seed).to(device)
    hist = sae.fit(xw, iters)
    return PatchModel(size, channels, zca.to(device), sae, eps_cn), hist


@torch.no_grad()
def conv_features(images, model: PatchModel, device: torch.device | str = "cpu") -> torch.Tensor:
    """Convolutional features of one batch of images (N x H x W x C uint8 or float, 0..255):
    ``N x hidden x (H - s + 1) x (W - s + 1)`` float32 on ``device``. Call it per batch."""
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    if x.ndim == 3 and model.channels == 1:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] != model.channels:
        raise ValueError(f"expected images N x H x W x {model.channels}, got shape {tuple(x.shape)}")
    N, H, W, C = x.shape
    s = model.size
    x = x.to(device=device, dtype=torch.float32).permute(0, 3, 1, 2)
    cols = F.unfold(x, s)  # N x (C*s*s) x L, channel-major (c, y, x)
    L = cols.shape[-1]
    # reorder to (y, x, c) so columns match sample_patches' flattening
    cols = cols.view(N, C, s * s, L).permute(0, 3, 2, 1).reshape(N * L, s * s * C)
    h = model.encode_patches(cols)
    oh, ow = H - s + 1, W - s + 1
    return h.view(N, oh, ow, -1).permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------------------------- experiment


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
             seed: int = 0) -> np.ndarray:
    """Per test item, is it classified right (bool vector) by a linear L2-SVM (scikit-learn ``LinearSVC``, squared
    hinge, one-vs-rest, as Coates et al.'s liblinear classifier) on standardised features (mean/std of the
    training set)? Its mean is the test accuracy; kept per item for paired intervals."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError("features and labels must have the same length")
    clf = make_pipeline(StandardScaler(), LinearSVC(C=C, dual=xtr.shape[1] > xtr.shape[0], max_iter=5000,
                                                    random_state=seed))
    clf.fit(xtr, ytr)
    return clf.predict(xte) == yte


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


# --------------------------------------------------------------------------------------------- the stage
# The paper's numbers, typed in once from Table 1 (CIFAR-10 accuracy, %, linear SVM): AP at each K, and the
# range of its SP rows per training set (the SP grid labels were lost in our copy's text extraction).
PAPER_K = [400, 800, 1300, 1600, 2000, 2500]
PAPER_AP = {"full": dict(zip(PAPER_K, [64.6, 67.2, 69.0, 69.4, 69.7, 69.3])),
            "small": dict(zip(PAPER_K, [61.6, 62.9, 63.8, 64.3, 65.0, 63.5]))}
PAPER_SP_RANGE = {"full": "63.8-68.4", "small": "57.6-61.5"}


def sizes_table(p: dict):
    """This run's sizes against the paper's (from the stage's parameters ``p``)."""
    import pandas as pd

    return pd.DataFrame([
        ("pooled units K", p["ks"], PAPER_K),
        ("SAE hidden units (colour / grey)", f"{p['hidden']} / {p['gray_hidden']}", "100 / 400"),
        ("SAE patches, L-BFGS iterations (colour)", f"{p['sae_patches']:,}, {p['sae_iters']}", "not given"),
        ("colour frame pairs x epochs for P (batch)", f"{p['n_pairs']:,} x {p['epochs']} ({p['batch_pairs']})",
         "not given"),
        ("frames per clip (scale)", f"{p['max_frames'] or 'all'} ({p['video_scale']})", "not given"),
        ("CIFAR-10 training per class: full / small", f"{p['train_full']} / {p['train_small']}", "5000 / 1000"),
        ("CIFAR-10 test per class", p["test_per_class"], 1000),
        ("grey clustering: K, pairs x epochs", f"{p['cluster_k']}, {p['cluster_pairs']:,} x {p['cluster_epochs']}",
         "not given"),
        ("lambda values (grey invariance curve)", p["lambdas"], "not given"),
    ], columns=["what", f"ours ({p['profile']})", "paper"])


def cifar_sets(p: dict):
    """``(train_all, full, small_idx, test)``: the 'full' training subset, the 'small' one nested in it (indices
    into ``full``), and the test set (all of it at 1,000 per class)."""
    from ..data.cifar import balanced_indices, load_cifar10

    train_all, test_all = load_cifar10("train"), load_cifar10("test")
    full = train_all.subset(p["train_full"], p["seed"])
    small_idx = balanced_indices(full.labels, p["train_small"], p["seed"] + 1)  # small is nested in full
    test = test_all if p["test_per_class"] >= 1000 else test_all.subset(p["test_per_class"], p["seed"])
    return train_all, full, small_idx, test


def train_conv_pools(train_pairs: Pairs, model: PatchModel, D: int, p: dict, device, run) -> tuple[dict, dict]:
    """P for every K in ``p['ks']``, trained on the streamed conv features of ``train_pairs``; ``(ap, logs)``."""
    from ..pooling.autopool import train_autopool

    ap, logs = {}, {}
    for K in p["ks"]:
        with run.timed(f"P K={K}"):
            ap[K], logs[K] = train_autopool(pair_batches(train_pairs, model, p["batch_pairs"], device, p["seed"]), K,
                                            D, p["lam"], p["epochs"], p["lr"], p["optimizer"], p["seed"], device,
                                            init_members=p["init_members"], desc=f"AP K={K}")
        lg = logs[K]
        print(f"K={K}: cost {lg.cost[0]:.4g} -> {lg.cost[-1]:.4g}; {lg.steps} steps")
        if float(ap[K].P.min()) < 0:
            raise AssertionError("P left the non-negative orthant")
    return ap, logs


def conv_invariance(held: Pairs, model: PatchModel, ap: dict, shape: tuple[int, int, int], p: dict,
                    device) -> tuple[dict[str, float], dict[str, tuple]]:
    """Invariance score (Sec. 2.1) of the raw conv features, of AP at each K and of 2x2 sum pooling, on held-out
    pairs; and per code its per-pair (near, far) distances, for intervals."""
    from ..metrics.invariance import invariance_parts, invariance_score

    codes = {}
    xa, xb = pair_codes(held, model, None, p["feature_batch"], device, conv=True)
    codes["raw features"] = (xa, xb)
    for K in p["ks"]:
        P = ap[K].P.double().cpu().numpy()
        codes[f"AP K={K}"] = (xa @ P.T, xb @ P.T)
    sp2 = MultiGridPool([2])
    codes["SP 2x2"] = (sp2(torch.from_numpy(xa).view(-1, *shape)).numpy(), sp2(torch.from_numpy(xb).view(-1, *shape)).numpy())
    scores = {k: invariance_score(a, b, p["seed"]) for k, (a, b) in codes.items()}
    parts = {k: invariance_parts(a, b, p["seed"]) for k, (a, b) in codes.items()}
    return scores, parts


def table1(ftr: dict, fte: dict, full, small_idx: np.ndarray, test, p: dict, n_pairs: int):
    """Table 1 (ours beside the paper's), its note, and per test item the correctness of every classifier
    (``{(method, "full"|"small"): bool vector}``): a linear classifier per pooled feature set, trained on the full
    and on the small training set."""
    from .. import io

    rows, correct = [], {}
    for setting, idx in (("full", np.arange(len(full))), ("small", small_idx)):
        for name in ftr:
            correct[(name, setting)] = classify(ftr[name][idx], full.labels[idx], fte[name], test.labels, p["svm_C"],
                                                p["seed"])
            acc = 100.0 * float(correct[(name, setting)].mean())
            is_ap = name.startswith("AP")
            k = int(name.split("=")[1]) if is_ap else None
            rows.append({"method": name, "features": ftr[name].shape[1], "train": setting,
                         "train_per_class": p["train_full"] if setting == "full" else p["train_small"],
                         "paper_SP_range": "" if is_ap else PAPER_SP_RANGE[setting],
                         "paper": PAPER_AP[setting].get(k) if is_ap else None, "ours": acc})
    table = io.paper_vs_ours(rows)
    note = (f"Ours: {len(full) // 10}/class ('full', paper 5000) and {p['train_small']}/class ('small', paper 1000) "
            f"CIFAR-10 training images, {len(test)} test images (paper 10,000), JPEG re-encoded CIFAR-10; K in "
            f"{p['ks']} (paper 400-2500); P trained on {n_pairs} pairs x {p['epochs']} epochs from the mirror's 4 "
            f"clips (substitute video); SAE {p['hidden']} hidden units on {p['sae_patches']} patches, "
            f"{p['sae_iters']} L-BFGS iterations. Classifier: scikit-learn LinearSVC (C={p['svm_C']}) on "
            f"standardised features. SP = sum pooling over the named grids; the paper gives only the SP range per "
            f"training set (its grid labels are lost), shown in paper_SP_range. Profile: {p['profile']}.")
    return table, note, correct


def grey_model(videos, names: list[str], p: dict, device, run):
    """The non-convolutional grey model of Sec. 3.1: SAE on video patches, then P for every lambda (Fig. 6) on
    consecutive-frame patch pairs; returns ``(model, P per lambda, raw invariance, invariance per lambda, per-pair
    (near, far) distances of the raw codes and of each lambda's pooled codes)``."""
    from ..data.framepairs import load_clips, sample_pairs
    from ..metrics.invariance import invariance_parts, invariance_score
    from ..pooling.autopool import train_autopool

    gframes = load_clips(videos, scale=p["video_scale"], gray=True, max_frames=p["max_frames"])
    gp = sample_pairs(gframes, p["gray_sae_patches"], p["gray_patch"], p["seed"] + 2, p["cut_threshold"], names)
    with run.timed("grey SAE"):
        gmodel, _ = train_patch_model(gp.a.reshape(len(gp), -1), p["gray_patch"], 1, p["gray_hidden"], p["rho"],
                                      p["beta"], p["decay"], p["gray_sae_iters"], p["eps_cn"], p["eps_zca"],
                                      p["seed"], device)
    gpairs = sample_pairs(gframes, p["cluster_pairs"] + p["invariance_pairs"], p["gray_patch"], p["seed"] + 3,
                          p["cut_threshold"], names)
    gtrain, gheld = gpairs.split(p["cluster_pairs"])
    ga, gb = pair_codes(gheld, gmodel, None, 1000, device)
    inv_raw = invariance_score(ga, gb, p["seed"])
    parts = {"raw": invariance_parts(ga, gb, p["seed"])}
    gP, inv_by_lam = {}, {}
    with run.timed("grey P for each lambda"):
        for lm in sorted(set(p["lambdas"]) | {p["cluster_lam"]}):
            m, _ = train_autopool(pair_batches(gtrain, gmodel, p["cluster_batch"], device, p["seed"], conv=False),
                                  p["cluster_k"], p["gray_hidden"], lm, p["cluster_epochs"], p["cluster_lr"],
                                  p["optimizer"], p["seed"], device, init_members=p["init_members"], progress=False)
            gP[lm] = m.P.double().cpu().numpy()
            inv_by_lam[lm] = invariance_score(ga @ gP[lm].T, gb @ gP[lm].T, p["seed"])
            parts[lm] = invariance_parts(ga @ gP[lm].T, gb @ gP[lm].T, p["seed"])
    return gmodel, gP, inv_raw, inv_by_lam, parts


def plot_fig10(table, profile: str):
    """Fig. 10: accuracy against the number of pooled features, ours (AP and SP) and the paper's AP."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for setting, ls in (("full", "-"), ("small", "--")):
        t = table[table.train == setting]
        for kind, mk in (("AP", "o"), ("SP", "s")):
            s = t[t.method.str.startswith(kind)].sort_values("features")
            ax.plot(s.features, s.ours, ls, marker=mk, label=f"{kind} ours ({setting})")
        pk = sorted(PAPER_AP[setting])
        ax.plot(pk, [PAPER_AP[setting][k] for k in pk], ls, color="grey", alpha=0.5, marker="x",
                label=f"AP paper ({setting})")
    ax.set_xscale("log")
    ax.set_xlabel("number of pooled features")
    ax.set_ylabel("CIFAR-10 test accuracy (%)")
    ax.set_title(f"Fig. 10: accuracy vs features ({profile} profile)", fontsize=9)
    ax.legend(fontsize=6)
    return fig


def plot_fig6(inv_by_lam: dict, inv_raw: float, lambdas: list[float]):
    """Fig. 6: invariance score against lambda, before and after pooling."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    lx = [l for l in sorted(inv_by_lam) if l in lambdas]
    xs = [max(l, min(x for x in lx if x > 0) / 3) for l in lx]  # plot lambda = 0 at the left edge of the log axis
    ax.plot(xs, [inv_by_lam[l] for l in lx], "o-", label="after pooling (AP)")
    ax.axhline(inv_raw, color="k", ls="--", label="before pooling (SAE features)")
    ax.set_xscale("log")
    ax.set_xlabel("lambda (leftmost point: lambda = 0)")
    ax.set_ylabel("invariance score")
    ax.set_title("Fig. 6: invariance vs lambda (grey model, held-out pairs)", fontsize=8)
    ax.legend(fontsize=7)
    return fig


def gap_report(table, logs: dict, inv_raw: float, inv_by_lam: dict, conv_inv: dict) -> tuple[str, bool]:
    """Markdown sentences generated from this run's numbers, and whether AP beats the best SP on the small set."""
    import pandas as pd

    lines = []
    for _, r in table.iterrows():
        if pd.notna(r.paper):
            lines.append(f"- {r.method} ({r.train}): ours {r.ours:.1f} % vs paper {r.paper:.1f} % "
                         f"({r['diff']:+.1f} points).")
        elif r.method.startswith("AP"):
            lines.append(f"- {r.method} ({r.train}): ours {r.ours:.1f} %; the paper reports no K={r.features}.")
        else:
            lo, hi = (float(v) for v in r.paper_SP_range.split("-"))
            where = "inside" if lo <= r.ours <= hi else ("below" if r.ours < lo else "above")
            lines.append(f"- {r.method} ({r.train}): ours {r.ours:.1f} %, {where} the paper's SP range {lo}-{hi} %.")
    small = table[table.train == "small"]
    best_sp_small = small[small.method.str.startswith("SP")].ours.max()
    ap_small = small[small.method.str.startswith("AP")]
    winners = ap_small[ap_small.ours > best_sp_small]
    ap_beats_sp_small = len(winners) > 0
    verdict = (f"**On the small training set, AP beats the best SP grid ({best_sp_small:.1f} %) for "
               f"{', '.join(winners.method)} in this run.**" if ap_beats_sp_small else
               f"**On the small training set, AP does NOT beat the best SP grid ({best_sp_small:.1f} %) for any K in "
               f"this run (best AP {ap_small.ours.max():.1f} %).**")
    same_size = []
    for _, r in ap_small.iterrows():
        sp_same = small[small.method.str.startswith("SP") & (small.features == r.features)]
        if len(sp_same):
            same_size.append(f"{r.method} {r.ours:.1f} % vs {sp_same.method.iloc[0]} {sp_same.ours.iloc[0]:.1f} % "
                             f"at {r.features} features")
    p_lines = [f"P (K={k}): training cost {lg.cost[0]:.4g} -> {lg.cost[-1]:.4g} per pair "
               f"({100 * (lg.cost[0] - lg.cost[-1]) / lg.cost[0]:.1f} % lower) over {lg.steps} steps"
               for k, lg in logs.items()]
    inv_line = (f"Invariance (grey model): raw {inv_raw:.2f}; pooled " +
                ", ".join(f"{v:.2f} at lambda={k:g}" for k, v in inv_by_lam.items()) +
                (". Pooling raises the score for every lambda." if min(inv_by_lam.values()) > inv_raw else
                 ". Pooling does not raise the score for every lambda.") +
                " Conv model (held-out colour pairs): " + ", ".join(f"{k} {v:.2f}" for k, v in conv_inv.items()) + ".")
    text = ("\n".join(lines) + "\n\n" + verdict + "\n\n" + "; ".join(p_lines) + "."
            + ("\n\nSame size: " + "; ".join(same_size) if same_size else "") + "\n\n" + inv_line)
    return text, ap_beats_sp_small


# --------------------------------------------------------------------------------------------- claims
PAPER = "Sukhbaatar, Makino & Aihara (2013)"


def matched_sp(k: int, sp_features: dict[str, int]) -> str:
    """The SP grid whose number of features is nearest to ``k`` on a log scale (Fig. 10 compares the two at the
    same number of features)."""
    return min(sp_features, key=lambda n: (abs(np.log(sp_features[n] / k)), sp_features[n]))


def claims(table, correct: dict, inv_parts: dict, p: dict, sizes: dict) -> list:
    """The paper's claims, evaluated on this run (see :mod:`poolrep.claims`). ``correct``: per-item correctness of
    each (method, setting) (``table1``); ``inv_parts``: per-pair (near, far) of the grey model's raw codes
    (``"raw"``) and pooled codes per lambda (``grey_model``); ``sizes``: counts for the setting sentence."""
    from .. import claims as C
    from ..metrics.invariance import score_of

    stage = "autopool"
    ap_k = sorted(int(m.split("=")[1]) for m in table.method if m.startswith("AP"))
    sp_feat = {m: int(f) for m, f in zip(table.method, table.features) if m.startswith("SP")}
    match = {k: matched_sp(k, sp_feat) for k in ap_k}
    data = (f"profile {p['profile']}; CIFAR-10 (JPEG copy of the mirror), {sizes['test']:,} test images (paper 10,000); "
            f"P trained on {sizes['pairs']:,} frame pairs of the mirror's {sizes['clips']} clips (substitute for the "
            f"paper's 44 videos); SP grid matched to each AP by number of features: "
            + ", ".join(f"K={k} ~ {match[k]}" for k in ap_k))
    train = {"full": f"{sizes['train_full']:,} training images ({p['train_full']}/class; paper 5,000)",
             "small": f"{sizes['train_small']:,} training images ({p['train_small']}/class; paper 1,000)"}

    def gap(setting):  # per test item: mean over K of correct(AP K) - correct(matched SP)
        return np.mean([correct[(f"AP K={k}", setting)].astype(float) - correct[(match[k], setting)]
                        for k in ap_k], axis=0)

    out = []
    quote = ("\"Auto-pooling outperformed traditional spatial pooling for most of the time.\"")
    for setting in ("full", "small"):
        est = C.bootstrap_mean(gap(setting), seed=p["seed"], scale=100, what="test images")
        out.append(C.greater(
            f"ap_beats_sp_{setting}", stage, quote if setting == "full" else
            "\"Especially for small training data, the difference between the two pooling methods was substantial.\"",
            "Sec. 3.2, Table 1, Fig. 10",
            f"mean over K of accuracy(AP K) - accuracy(SP, same size), {setting} training set", est, unit="points",
            setting=f"{data}; {train[setting]}", why=""))
    est = C.bootstrap_mean(gap("small") - gap("full"), seed=p["seed"], scale=100, what="test images")
    out.append(C.greater(
        "ap_gain_larger_on_small", stage,
        "\"Especially for small training data, the difference between the two pooling methods was substantial. "
        "This indicates that auto-pooling is better at generalization\"", "Sec. 3.2, Table 1",
        "(AP - SP) on the small set - (AP - SP) on the full set", est, unit="points", setting=data, why=""))

    lams = sorted(k for k in inv_parts if k != "raw")
    grey = (f"profile {p['profile']}; grey model, {p['gray_hidden']} SAE features of {p['gray_patch']}x"
            f"{p['gray_patch']} patches, K={p['cluster_k']}, held-out pairs of the mirror's clips")
    nr, fr = inv_parts["raw"]
    lam1 = p["cluster_lam"]
    n1, f1 = inv_parts[lam1]
    est = C.bootstrap(lambda a, b, c, d, axis: score_of(c, d, axis) - score_of(a, b, axis), nr, fr, n1, f1,
                      seed=p["seed"], what="held-out pairs")
    out.append(C.greater(
        "pooling_raises_invariance", stage, "\"The invariance score is significantly improved by the pooling\"",
        "Sec. 3.1, Fig. 6", f"invariance score(pooled, lambda={lam1:g}) - score(raw features)", est,
        setting=grey, why=""))
    lo_l, hi_l = lams[0], lams[-1]
    est = C.bootstrap(lambda a, b, c, d, axis: score_of(c, d, axis) - score_of(a, b, axis),
                      *inv_parts[lo_l], *inv_parts[hi_l], seed=p["seed"], what="held-out pairs")
    out.append(C.greater(
        "invariance_rises_with_lambda", stage, "\"The invariance score is significantly improved by the pooling, "
        "especially for large lambda values.\"", "Sec. 3.1, Fig. 6",
        f"score(lambda={hi_l:g}) - score(lambda={lo_l:g})", est, setting=grey, why=""))
    if len(lams) >= 3:
        prev = lams[-2]
        est = C.bootstrap(lambda a, b, c, d, axis: score_of(c, d, axis) - score_of(a, b, axis),
                          *inv_parts[prev], *inv_parts[hi_l], seed=p["seed"], what="held-out pairs")
        out.append(C.less(
            "invariance_stops_rising", stage, "\"the invariance score stopped its increase at large lambda\"",
            "Sec. 3.1, Fig. 6", f"score(lambda={hi_l:g}) - score(lambda={prev:g})", est, setting=grey,
            why=f"The largest lambda tried here is {hi_l:g}."))

    k0 = ap_k[0]
    full_acc = C.bootstrap_mean(correct[(f"AP K={k0}", "full")], seed=p["seed"], scale=100, what="test images")
    out.append(C.not_testable(
        f"table1_ap{k0}_full", stage, f"Table 1: AP ({k0} clusters), full training set: "
        f"{PAPER_AP['full'].get(k0, float('nan'))} %", "Table 1", f"accuracy(AP K={k0}), full set", ours=full_acc,
        unit="%", paper=PAPER_AP["full"].get(k0), setting=f"{data}; {train['full']}",
        why="An absolute accuracy: ours is at reduced sizes (training and test subsets, frames, SAE patches) on "
            "substitute video, so it is shown, not judged."))
    return C.check_unique(out)
