"""A small ResNet-style CIFAR network with a swappable global pooling head, its deterministic training loop,
evaluation, and class activation maps (CAM, Zhou et al. 2016).

The network is ``body`` (images -> last feature maps ``N x D x h x w``) followed by a ``PoolHead`` (pooling ->
``N x D`` -> one ``nn.Linear`` classifier). The head is also used alone on cached backbone maps (the frozen
ImageNet MobileNetV2 of the ``backbone`` stage), so the same poolings are compared on both networks.

Poolings (``POOLINGS``): ``gap`` / ``gmp`` (poolrep.pooling.global_pool), ``attention`` (learned spatial
attention, poolrep.pooling.attention), ``entropy_linear`` / ``entropy_softmax`` (poolrep.pooling.entropy, the two
weight formulas; the entropy pool shares the head's classifier).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .pooling.attention import SpatialAttentionPool
from .pooling.entropy import EntropyPool
from .pooling.global_pool import GlobalAvgPool, GlobalMaxPool

POOLINGS = ("gap", "gmp", "attention", "entropy_linear", "entropy_softmax")
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1-conv projection) shortcut, He et al. 2016."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Identity()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.short(x))


class SmallResNet(nn.Module):
    """CIFAR ResNet body: 3x3 stem, then one stage per width (stride 2 from the second), ``blocks`` blocks each.

    ``widths=(16, 32, 64), blocks=1`` on 32x32 images gives ``N x 64 x 8 x 8`` maps (a cut-down ResNet-8; the
    paper's ResNets are far deeper)."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), blocks: int = 1):
        super().__init__()
        if not widths or blocks < 1:
            raise ValueError("need at least one stage and one block per stage")
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers, cin = [], widths[0]
        for s, w in enumerate(widths):
            for b in range(blocks):
                layers.append(BasicBlock(cin, w, stride=2 if (s > 0 and b == 0) else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.out_channels = cin
        self.register_buffer("mean", torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images N x 3 x H x W in [0, 1], got shape {tuple(x.shape)}")
        return self.layers(self.stem((x - self.mean) / self.std))


def make_pool(name: str, fc: nn.Linear, temperature: float = 1.0) -> nn.Module:
    if name == "gap":
        return GlobalAvgPool()
    if name == "gmp":
        return GlobalMaxPool()
    if name == "attention":
        return SpatialAttentionPool(fc.in_features)
    if name == "entropy_linear":
        return EntropyPool(fc, weighting="linear")
    if name == "entropy_softmax":
        return EntropyPool(fc, weighting="softmax", temperature=temperature)
    raise ValueError(f"unknown pooling {name!r}; choose one of {', '.join(POOLINGS)}")


class PoolHead(nn.Module):
    """Feature maps ``N x D x h x w`` -> pooling -> ``nn.Linear(D, n_classes)`` -> logits."""

    def __init__(self, pooling: str, in_channels: int, n_classes: int, temperature: float = 1.0, dropout: float = 0.0):
        super().__init__()
        self.pooling = pooling
        self.fc = nn.Linear(in_channels, n_classes)
        self.pool = make_pool(pooling, self.fc, temperature)
        self.drop = nn.Dropout(dropout)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.pool(maps.float())))

    def location_weights(self, maps: torch.Tensor) -> torch.Tensor | None:
        """The pooling's own location weights ``N x h x w`` (entropy / attention), else None."""
        return self.pool.weights(maps.float()) if hasattr(self.pool, "weights") else None

    def cam(self, maps: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """Class activation map ``W_c . f_i`` of class ``cls[n]`` for each image, ``N x h x w`` (Zhou et al.; for a
        GAP head, the logit of class c is the mean of this map plus the bias)."""
        w = self.fc.weight[cls]  # N x D
        return torch.einsum("ndhw,nd->nhw", maps.float(), w)


class Net(nn.Module):
    def __init__(self, body: nn.Module, head: PoolHead):
        super().__init__()
        self.body, self.head = body, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def cifar_net(pooling: str, n_classes: int = 10, widths=(16, 32, 64), blocks: int = 1, temperature: float = 1.0) -> Net:
    body = SmallResNet(tuple(widths), blocks)
    return Net(body, PoolHead(pooling, body.out_channels, n_classes, temperature))


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (zero pad ``pad``) and horizontal flip of a batch ``N x 3 x H x W``, drawn from ``gen``."""
    n, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    ar_y, ar_x = torch.arange(h), torch.arange(w)
    rows = (dy[:, None] + ar_y[None]).to(x.device)  # N x H
    cols = (dx[:, None] + ar_x[None])
    cols = torch.where(flip[:, None], cols.flip(1), cols).to(x.device)  # N x W
    idx = torch.arange(n, device=x.device)[:, None, None]
    return xp.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
          weight_decay: float = 5e-4, seed: int = 0, device: torch.device | str = "cpu", images: bool = True,
          desc: str = "train") -> list[float]:
    """SGD (momentum 0.9, Nesterov), learning rate warmed up linearly over 15% of the steps then cosine-decayed; mini-batches and augmentation
    (crop + flip, only when ``images``) are drawn from one generator seeded with ``seed``, so a run is repeatable.
    ``x`` stays on the cpu (any dtype; batches are moved and cast to float32). Returns the mean loss per epoch."""
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need as many labels as inputs (got {len(x)} and {len(y)}), and at least one")
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be >= 1")
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    warm = max(1, int(0.15 * steps))
    # linear warm-up then cosine decay (torch's OneCycleLR divides by zero on schedules of a few steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: (t + 1) / warm if t < warm else
                                              0.5 * (1 + math.cos(math.pi * (t - warm) / max(1, steps - warm))))
    losses = []
    bar = tqdm(range(epochs), desc=desc, leave=False)
    for _ in bar:
        perm = torch.randperm(len(x), generator=gen)
        tot, n = 0.0, 0
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            xb = x[idx].to(device).float()
            if images:
                xb = augment(xb, gen)
            yb = y[idx].to(device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
            n += len(idx)
        losses.append(tot / n)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    return losses


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256, device: torch.device | str = "cpu") -> torch.Tensor:
    """Logits for ``x`` (in batches, eval mode), on the cpu."""
    model.to(device).eval()
    return torch.cat([model(x[i:i + batch_size].to(device).float()).cpu() for i in range(0, len(x), batch_size)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256,
             device: torch.device | str = "cpu") -> float:
    return float((predict(model, x, batch_size, device).argmax(1) == y).float().mean())


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``N x H x W x 3`` -> float ``N x 3 x H x W`` in [0, 1]."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images N x H x W x 3, got shape {images.shape}")
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """``N x h x w`` maps bilinearly upsampled to ``size`` and min-max scaled to [0, 1] per map (for overlays)."""
    m = F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]
    lo = m.flatten(1).min(1).values[:, None, None]
    hi = m.flatten(1).max(1).values[:, None, None]
    return ((m - lo) / (hi - lo).clamp(min=1e-12)).cpu().numpy()


def weight_stats(w: torch.Tensor) -> dict[str, float]:
    """How concentrated location weights ``N x h x w`` are: mean max weight, and mean weight entropy relative to
    uniform (1 = uniform, 0 = one location)."""
    flat = w.flatten(1)
    ent = -(flat * flat.clamp(min=1e-12).log()).sum(1) / np.log(flat.shape[1])
    return {"max_weight": float(flat.max(1).values.mean()), "rel_entropy": float(ent.mean())}


# --- experiment helpers used by notebooks/entropy.ipynb -------------------------------------------------------

def fit_cifar(pooling: str, seed: int, x_train: torch.Tensor, y_train: torch.Tensor, *, widths, blocks: int,
              epochs: int, batch_size: int, lr: float, weight_decay: float, temperature: float = 1.0,
              device: torch.device | str = "cpu") -> Net:
    """A ``cifar_net`` with ``pooling``, initialised from ``seed`` and trained from scratch (same schedule for all)."""
    torch.manual_seed(seed)
    net = cifar_net(pooling, int(y_train.max()) + 1, widths, blocks, temperature)
    train(net, x_train, y_train, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
          seed=seed, device=device, images=True, desc=f"{pooling} s{seed}")
    return net.cpu().eval()


def fit_head(pooling: str, seed: int, maps: torch.Tensor, labels: torch.Tensor, *, epochs: int, batch_size: int,
             lr: float, weight_decay: float, temperature: float = 1.0, dropout: float = 0.0,
             device: torch.device | str = "cpu") -> PoolHead:
    """A ``PoolHead`` trained on frozen backbone maps (only the head learns; no augmentation)."""
    torch.manual_seed(seed)
    head = PoolHead(pooling, maps.shape[1], int(labels.max()) + 1, temperature, dropout)
    train(head, maps, labels, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
          device=device, images=False, desc=f"head {pooling} s{seed}")
    return head.cpu().eval()


def summarise(df, by=("network", "pooling"), value: str = "accuracy"):
    """Mean, sample std (ddof=1; 0 for one seed), min, max and number of seeds of ``value`` per group."""
    g = df.groupby(list(by), sort=False)[value]
    out = g.agg(mean="mean", std=lambda v: float(v.std(ddof=1)) if len(v) > 1 else 0.0, min="min", max="max",
                seeds="count").reset_index()
    return out


@torch.no_grad()
def cam_agreement(cam: torch.Tensor, weights: torch.Tensor) -> float:
    """Mean over images of the Spearman rank correlation between a CAM and a weight map (both ``N x h x w``):
    does the pooling weight the locations the GAP model's CAM highlights?"""
    from scipy.stats import spearmanr

    if cam.shape != weights.shape:
        raise ValueError(f"cam {tuple(cam.shape)} and weights {tuple(weights.shape)} differ")
    rs = [spearmanr(a.flatten().numpy(), b.flatten().numpy()).statistic for a, b in zip(cam, weights)]
    rs = [r for r in rs if np.isfinite(r)]
    return float(np.mean(rs)) if rs else float("nan")


@torch.no_grad()
def maps_of(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Last feature maps of a ``Net`` (``model.body``) for images ``x``, on the cpu."""
    model.eval()
    return torch.cat([model.body(x[i:i + batch_size].float()) for i in range(0, len(x), batch_size)])
