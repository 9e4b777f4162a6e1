"""Slow-feature pooling auto-encoders (Goroshin, Bruna, Tompson, Eigen, LeCun, ICLR 2015).

Eq. 2, for two consecutive frames ``x_t, x_t'`` with codes ``h = ReLU(W_e x + b)`` and L2 pooling groups ``P_i``:

    L = sum_{tau in {t, t'}} ( ||W_d h_tau - x_tau||^2 + alpha |h_tau|_1 ) + beta sum_i | ||h_t||_{P_i} - ||h_t'||_{P_i} |

Reconstruction is from ``h``, not from the pooled code. ``sparsity="group"`` replaces ``|h|_1`` by the group
norm ``sum_i ||h||_{P_i}`` (the "group sparsity" baseline, used with ``beta = 0``).

Eq. 1 (DrLIM, Hadsell et al. 2006), codes ``G(x)`` of the same encoder, positives = temporal neighbours,
negatives = random frames of other scenes (``M >= 5`` per positive), margin ``m``:

    L = ||G(x_a) - G(x_p)||^2 + sum_{j=1..M} max(0, m - ||G(x_a) - G(x_n_j)||)^2

Decoder atoms are renormalised to unit L2 norm after every step (otherwise the sparsity term is defeated by
shrinking ``h`` and growing ``W_d``; the paper's models are sparse auto-encoders with this usual constraint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .pooling.group_l2 import GroupL2Pool

# --------------------------------------------------------------------------------------------- data


@dataclass
class Frames:
    """Frames of several clips cut into scenes: ``images`` uint8 N x H x W x 3 (or N x H x W grey),
    ``scene`` (global scene id per frame), ``video`` (clip index per frame), ``names`` (clip names)."""

    images: np.ndarray
    scene: np.ndarray
    video: np.ndarray
    names: list[str]
    scenes: list[tuple[int, int]] = field(default_factory=list)  # global [start, end) per scene id


def load_scenes(
    clips: list[Path],
    size: tuple[int, int],
    threshold: float,
    min_len: int = 2,
    max_len: int = 40,
    step: int = 1,
    max_frames: int | None = None,
    gray: bool = False,
    cut_size: tuple[int, int] = (32, 32),
) -> Frames:
    """Decode ``clips`` at ``size`` (width, height) and cut each into scenes with
    :func:`poolrep.data.video.cut_scenes` (frame differences measured on ``cut_size`` colour frames, so the
    threshold does not depend on ``size``). Frames outside every scene (pieces shorter than ``min_len``) are dropped."""
    from .data.video import cut_scenes, read_frames

    imgs, scene, video, spans = [], [], [], []
    n = 0
    for vi, path in enumerate(clips):
        small = read_frames(path, size=cut_size, step=step, max_frames=max_frames)
        full = small if (tuple(size) == tuple(cut_size) and not gray) else read_frames(
            path, size=size, gray=gray, step=step, max_frames=max_frames)
        for a, b in cut_scenes(small, threshold, min_len, max_len):
            imgs.append(full[a:b])
            scene += [len(spans)] * (b - a)
            video += [vi] * (b - a)
            spans.append((n, n + b - a))
            n += b - a
    if not imgs:
        raise ValueError(f"no scene of >= {min_len} frames in {[p.name for p in clips]}")
    return Frames(np.concatenate(imgs), np.asarray(scene), np.asarray(video), [p.name for p in clips], spans)


class ZCA:
    """ZCA whitening ``x -> U diag(1/sqrt(s + eps)) U^T (x - mu)`` of flattened images.

    scikit-learn's ``PCA(whiten=True)`` whitens in the rotated basis (PCA whitening); ZCA rotates back so the
    whitened data stay images, which is what the paper's convolutional model sees, hence this small class.
    """

    def __init__(self, eps: float = 1e-2):
        self.eps = float(eps)

    def fit(self, x: np.ndarray) -> "ZCA":
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        self.shape = None
        self.mean = x.mean(0)
        xc = x - self.mean
        cov = xc.T @ xc / len(x)
        s, u = np.linalg.eigh(cov)
        s = np.clip(s, 0, None)
        self.W = ((u / np.sqrt(s + self.eps)) @ u.T).astype(np.float32)
        self.mean = self.mean.astype(np.float32)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        shp = x.shape
        flat = np.asarray(x, np.float32).reshape(len(x), -1)
        if flat.shape[1] != len(self.mean):
            raise ValueError(f"ZCA was fitted on {len(self.mean)}-d data, got {flat.shape[1]}-d")
        return ((flat - self.mean) @ self.W).reshape(shp)


def to_chw(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 N x H x W x 3 -> float32 N x 3 x H x W in [0, 1]."""
    if images_uint8.ndim != 4 or images_uint8.shape[-1] != 3:
        raise ValueError(f"expected N x H x W x 3 colour images, got {images_uint8.shape}")
    return np.ascontiguousarray(images_uint8.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def temporal_pairs(scene: np.ndarray) -> np.ndarray:
    """All index pairs ``(t, t+1)`` of consecutive frames inside the same scene: ``P x 2``."""
    scene = np.asarray(scene)
    t = np.flatnonzero(scene[:-1] == scene[1:])
    return np.stack([t, t + 1], 1)


def random_negatives(scene: np.ndarray, anchors: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """``len(anchors) x m`` random frame indices, each from a scene other than its anchor's."""
    scene = np.asarray(scene)
    if len(np.unique(scene)) < 2:
        raise ValueError("negatives need at least two scenes")
    out = rng.integers(0, len(scene), size=(len(anchors), m))
    bad = scene[out] == scene[anchors][:, None]
    while bad.any():
        out[bad] = rng.integers(0, len(scene), size=int(bad.sum()))
        bad = scene[out] == scene[anchors][:, None]
    return out


def patch_pairs(frames_gray: np.ndarray, scene: np.ndarray, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n x 2 x size*size`` patches cut at the same place of two consecutive frames of a scene; each patch
    has its mean removed and the set is scaled to unit standard deviation."""
    if frames_gray.ndim != 3:
        raise ValueError(f"expected grey frames N x H x W, got {frames_gray.shape}")
    pairs = temporal_pairs(scene)
    if not len(pairs):
        raise ValueError("no consecutive frames in a scene")
    H, W = frames_gray.shape[1:]
    if size > min(H, W):
        raise ValueError(f"patch {size} larger than frames {H}x{W}")
    pick = pairs[rng.integers(0, len(pairs), n)]
    ys, xs = rng.integers(0, H - size + 1, n), rng.integers(0, W - size + 1, n)
    out = np.empty((n, 2, size * size), np.float32)
    for i, ((a, b), y, x) in enumerate(zip(pick, ys, xs)):
        out[i, 0] = frames_gray[a, y:y + size, x:x + size].ravel()
        out[i, 1] = frames_gray[b, y:y + size, x:x + size].ravel()
    out -= out.mean(axis=2, keepdims=True)
    out /= out.std() + 1e-8
    return out


# --------------------------------------------------------------------------------------------- models


class FCAutoEncoder(nn.Module):
    """Fully connected model: ``h = ReLU(W_e x + b)`` (``n_atoms``), reconstruction ``W_d h``, L2 pooling of
    ``group`` consecutive units (512 atoms in groups of 4 -> 128 pooled outputs in the paper)."""

    def __init__(self, in_dim: int = 400, n_atoms: int = 512, group: int = 4):
        super().__init__()
        if n_atoms % group:
            raise ValueError(f"{n_atoms} atoms cannot be split into groups of {group}")
        self.enc = nn.Linear(in_dim, n_atoms)
        self.dec = nn.Linear(n_atoms, in_dim, bias=False)
        self.pool = GroupL2Pool(group, 1)
        self.renorm()

    def encode(self, x):
        if x.ndim != 2 or x.shape[1] != self.enc.in_features:
            raise ValueError(f"expected N x {self.enc.in_features} inputs, got {tuple(x.shape)}")
        return F.relu(self.enc(x))

    def decode(self, h):
        return self.dec(h)

    def pooled(self, h):
        return self.pool.pool_vector(h)

    @torch.no_grad()
    def renorm(self):
        w = self.dec.weight  # in_dim x n_atoms: atom j is column j
        w.div_(w.norm(dim=0, keepdim=True).clamp_min(1e-8))

    def atoms(self) -> torch.Tensor:
        """Decoder atoms, ``n_atoms x in_dim``."""
        return self.dec.weight.detach().T.cpu()


class ConvAutoEncoder(nn.Module):
    """One convolutional layer: ``h = ReLU(conv(x))`` with ``n_filters`` ``kernel x kernel`` filters ('same'
    padding), decoder ``conv(h)`` back to ``in_ch`` maps, L2 pooling over ``group`` maps and ``pool x pool`` space.
    Layer 1 of the paper: 3 -> 64 filters 9x9, group 4, pool 2 (32x32 -> 16x16x16); layer 2: 16 -> 64 filters 5x5,
    group 1, pool 4 (-> 64x4x4)."""

    def __init__(self, in_ch: int, n_filters: int, kernel: int, group: int, pool: int):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError("use an odd kernel so 'same' padding keeps the map size")
        self.enc = nn.Conv2d(in_ch, n_filters, kernel, padding=kernel // 2)
        self.dec = nn.Conv2d(n_filters, in_ch, kernel, padding=kernel // 2, bias=False)
        self.pool = GroupL2Pool(group, pool)
        self.renorm()

    def encode(self, x):
        if x.ndim != 4 or x.shape[1] != self.enc.in_channels:
            raise ValueError(f"expected N x {self.enc.in_channels} x H x W inputs, got {tuple(x.shape)}")
        return F.relu(self.enc(x))

    def decode(self, h):
        return self.dec(h)

    def pooled(self, h):
        return self.pool.pool_map(h)

    def features(self, x):
        """Pooled maps (the next layer's input and, flattened, the descriptor)."""
        return self.pooled(self.encode(x))

    @torch.no_grad()
    def renorm(self):
        w = self.dec.weight  # in_ch x n_filters x k x k: atom j is w[:, j]
        w.div_(w.pow(2).sum(dim=(0, 2, 3), keepdim=True).sqrt().clamp_min(1e-8))

    def atoms(self) -> torch.Tensor:
        """Decoder atoms ``n_filters x in_ch x k x k``."""
        return self.dec.weight.detach().transpose(0, 1).cpu()


def _sum_per_sample(t):
    return t.flatten(1).sum(1)


def slow_loss(model, x1, x2, alpha: float, beta: float, sparsity: str = "l1"):
    """Eq. 2, averaged over the batch. Returns ``(loss, parts)`` with the mean reconstruction, sparsity and
    slowness terms (before weighting)."""
    if x1.shape != x2.shape:
        raise ValueError(f"frame pairs differ in shape: {tuple(x1.shape)} vs {tuple(x2.shape)}")
    if sparsity not in ("l1", "group"):
        raise ValueError(f"unknown sparsity {sparsity!r}; use 'l1' or 'group'")
    rec = sp = 0.0
    pooled = []
    for x in (x1, x2):
        h = model.encode(x)
        m = model.pooled(h)
        pooled.append(m)
        rec = rec + _sum_per_sample((model.decode(h) - x) ** 2)
        sp = sp + _sum_per_sample(h.abs() if sparsity == "l1" else m)
    slow = _sum_per_sample((pooled[0] - pooled[1]).abs())
    loss = (rec + alpha * sp + beta * slow).mean()
    return loss, {"rec": rec.mean().item(), "sparsity": sp.mean().item(), "slow": slow.mean().item()}


def drlim_loss(za, zp, zn, margin: float):
    """Eq. 1, averaged over anchors: ``za``, ``zp`` are ``B x D``, ``zn`` ``B x M x D`` (M negatives each)."""
    za, zp = za.flatten(1), zp.flatten(1)
    if zn.ndim < 3 or zn.shape[0] != za.shape[0]:
        raise ValueError(f"negatives must be B x M x ..., got {tuple(zn.shape)} for B={za.shape[0]}")
    zn = zn.flatten(2)
    pos = (za - zp).pow(2).sum(1)
    dn = (za[:, None, :] - zn).pow(2).sum(2).clamp_min(1e-12).sqrt()
    neg = F.relu(margin - dn).pow(2).sum(1)
    return (pos + neg).mean(), {"pos": pos.mean().item(), "neg": neg.mean().item()}


# --------------------------------------------------------------------------------------------- training


@dataclass
class TrainCfg:
    steps: int = 200
    batch: int = 32
    lr: float = 1e-3
    alpha: float = 0.0
    beta: float = 0.0
    sparsity: str = "l1"
    margin: float = 1.0
    negatives: int = 5
    seed: int = 0


def train_autoencoder(model, data, pairs, cfg: TrainCfg, device="cpu", desc="slow AE"):
    """Adam on Eq. 2 over random minibatches of ``pairs`` (``P x 2`` indices into ``data``, a float tensor).
    ``data`` may also be ``P x 2 x D`` pair-major (then ``pairs`` is None). Returns the loss history."""
    g = torch.Generator().manual_seed(cfg.seed)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    hist = []
    n = len(data) if pairs is None else len(pairs)
    for _ in tqdm(range(cfg.steps), desc=desc, leave=False):
        b = torch.randint(0, n, (cfg.batch,), generator=g)
        if pairs is None:
            x1, x2 = data[b, 0], data[b, 1]
        else:
            p = pairs[b.numpy()]
            x1, x2 = data[p[:, 0]], data[p[:, 1]]
        loss, parts = slow_loss(model, x1.to(device), x2.to(device), cfg.alpha, cfg.beta, cfg.sparsity)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.renorm()
        hist.append({"loss": loss.item(), **parts})
    return hist


def train_drlim(encode, params, data, scene, cfg: TrainCfg, device="cpu", desc="DrLIM", pairs=None):
    """Adam on Eq. 1: anchors/positives from ``pairs`` (default: consecutive frames of a scene), ``cfg.negatives``
    random frames of other scenes per anchor. ``encode`` maps a batch to codes."""
    if cfg.negatives < 1:
        raise ValueError("DrLIM needs at least one negative per positive")
    rng = np.random.default_rng(cfg.seed)
    pairs = temporal_pairs(scene) if pairs is None else pairs
    opt = torch.optim.Adam(params, lr=cfg.lr)
    hist = []
    for _ in tqdm(range(cfg.steps), desc=desc, leave=False):
        p = pairs[rng.integers(0, len(pairs), cfg.batch)]
        neg = random_negatives(scene, p[:, 0], cfg.negatives, rng)
        idx = np.concatenate([p[:, 0], p[:, 1], neg.ravel()])
        z = encode(data[idx].to(device))
        B = len(p)
        loss, parts = drlim_loss(z[:B], z[B:2 * B], z[2 * B:].reshape(B, cfg.negatives, *z.shape[1:]), cfg.margin)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append({"loss": loss.item(), **parts})
    return hist


@torch.no_grad()
def apply(fn, x: torch.Tensor, device="cpu", batch: int = 256) -> torch.Tensor:
    """``fn`` over ``x`` in batches, results on the cpu."""
    return torch.cat([fn(x[i:i + batch].to(device)).cpu() for i in range(0, len(x), batch)])


def layer_specs(n_filters1=64, kernel1=9, group1=4, pool1=2, n_filters2=64, kernel2=5, group2=1, pool2=4):
    """The two layers' shapes; the defaults are the paper's (4,096-d and 1,024-d pooled outputs at 32x32)."""
    return ({"n_filters": n_filters1, "kernel": kernel1, "group": group1, "pool": pool1},
            {"n_filters": n_filters2, "kernel": kernel2, "group": group2, "pool": pool2})


def train_greedy(x, scene, specs, cfgs, method="slow", device="cpu", in_ch=3):
    """Greedy layer-wise training of a two-layer stack on frames ``x`` (N x C x H x W float tensor).

    ``method``: ``"slow"`` (Eq. 2 with each cfg's alpha/beta/sparsity) or ``"drlim"`` (Eq. 1 on the pooled
    codes of the same encoders). Layer 2 is trained on layer 1's pooled maps of the (frozen) first layer.
    Returns the list of trained layers and their loss histories.
    """
    if method not in ("slow", "drlim"):
        raise ValueError(f"unknown method {method!r}; use 'slow' or 'drlim'")
    layers, hists = [], []
    inp, ch = x, in_ch
    pairs = temporal_pairs(scene)
    for li, (spec, cfg) in enumerate(zip(specs, cfgs)):
        torch.manual_seed(cfg.seed + li)
        layer = ConvAutoEncoder(ch, spec["n_filters"], spec["kernel"], spec["group"], spec["pool"]).to(device)
        if method == "slow":
            h = train_autoencoder(layer, inp, pairs, cfg, device, desc=f"{method} layer {li + 1}")
        else:
            layer.train()
            h = train_drlim(layer.features, list(layer.enc.parameters()), inp, scene, cfg, device,
                            desc=f"{method} layer {li + 1}")
        layer.eval()
        layers.append(layer)
        hists.append(h)
        inp = apply(layer.features, inp, device)
        ch = inp.shape[1]
    return layers, hists


def stack_features(layers, x, device="cpu") -> list[torch.Tensor]:
    """Flattened pooled features of each layer of a stack (``[N x D1, N x D2, ...]``)."""
    out, inp = [], x
    for layer in layers:
        inp = apply(layer.features, inp, device)
        out.append(inp.flatten(1))
    return out


class SupervisedNet(nn.Module):
    """The supervised comparison: two conv + ReLU + L2-pooling stages shaped like the unsupervised stack,
    then a linear classifier on the flattened second-stage output."""

    def __init__(self, specs=None, n_classes: int = 10, in_ch: int = 3, size: int = 32):
        super().__init__()
        specs = layer_specs() if specs is None else specs
        self.stages = nn.ModuleList()
        ch, s = in_ch, size
        for spec in specs:
            conv = nn.Conv2d(ch, spec["n_filters"], spec["kernel"], padding=spec["kernel"] // 2)
            self.stages.append(nn.ModuleDict({"conv": conv, "pool": GroupL2Pool(spec["group"], spec["pool"])}))
            ch, s = spec["n_filters"] // spec["group"], s // spec["pool"]
        self.fc = nn.Linear(ch * s * s, n_classes)

    def stage_features(self, x) -> list[torch.Tensor]:
        out = []
        for st in self.stages:
            x = st["pool"].pool_map(F.relu(st["conv"](x)))
            out.append(x)
        return out

    def forward(self, x):
        return self.fc(self.stage_features(x)[-1].flatten(1))


def train_supervised(model, x, y, steps: int, batch: int, lr: float, seed: int = 0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = []
    for _ in tqdm(range(steps), desc="supervised", leave=False):
        b = torch.randint(0, len(x), (batch,), generator=g)
        loss = F.cross_entropy(model(x[b].to(device)), y[b].to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append(loss.item())
    model.eval()
    return hist


@torch.no_grad()
def accuracy(model, x, y, device="cpu") -> float:
    pred = apply(lambda b: model(b).argmax(1), x, device)
    return float((pred == y).float().mean())


# --------------------------------------------------------------------------------------------- toy (Figure 1)


class ToyNet(nn.Module):
    """The two-layer net of Figure 1: image -> hidden (ReLU) -> 2-D."""

    def __init__(self, in_dim: int, hidden: int = 64, out_dim: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, x):
        return self.net(x)


def grid_pairs_and_ids(n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    """For an ``n_a x n_b`` grid of views (index ``i * n_b + j``): positive pairs = neighbours one step apart on
    either angle, and a per-view id (every view its own 'scene', so negatives are any other view)."""
    idx = np.arange(n_a * n_b).reshape(n_a, n_b)
    pairs = np.concatenate([np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1),
                            np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1)])
    return pairs, idx.ravel()


def pick_clips(names: list[str], folder: str | None = None) -> list[Path]:
    """The clips called ``names`` among the registered clips (``folder`` None) or the videos of ``folder``."""
    from .data.video import clips, folder_clips

    avail = clips() if folder is None else folder_clips(folder)
    by_name = {p.name: p for p in avail}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"no clip named {', '.join(missing)}; available: {', '.join(sorted(by_name))}")
    return [by_name[n] for n in names]
