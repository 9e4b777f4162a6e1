"""The networks of the ``entropy`` stage: the small CIFAR ResNet (``body``) with a pooling head
(:class:`poolrep.heads.PoolHead`), its training-time form (channels-last), the maps of a model, and the statistics
of a weight map."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...features import apply_batched
from ...heads import POOLINGS, PoolHead

WEIGHTED = tuple(p for p in POOLINGS if p not in ("gap", "gmp"))  # poolings that weigh locations (maps to show)


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
    paper's ResNets are far deeper). ``stem_stride=2`` makes the stem a stride-2 convolution, as the stems of He et
    al.'s ImageNet ResNets are: every later layer then runs at half the side, ``N x 64 x 4 x 4`` maps, about a
    fifth of the time per image on a cpu (a cut for cpu time: more epochs in the same budget; see
    ``benchmarks/entropy_recipe.py`` for the probe of how many epochs reach a plateau)."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), blocks: int = 1, stem_stride: int = 1):
        super().__init__()
        if not widths or blocks < 1:
            raise ValueError("need at least one stage and one block per stage")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, stem_stride, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
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


class Net(nn.Module):
    def __init__(self, body: nn.Module, head: PoolHead):
        super().__init__()
        self.body, self.head = body, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def cifar_net(
    pooling: str,
    n_classes: int = 10,
    widths=(16, 32, 64),
    blocks: int = 1,
    temperature: float = 1.0,
    stem_stride: int = 1,
) -> Net:
    body = SmallResNet(tuple(widths), blocks, stem_stride)
    return Net(body, PoolHead(pooling, body.out_channels, n_classes, temperature))


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
    uniform (1 = uniform, 0 = one location), both of the weights renormalised to sum to 1 per map (the
    unnormalised variant's are not)."""
    flat = w.flatten(1).clamp(min=0)
    flat = flat / flat.sum(1, keepdim=True).clamp(min=1e-12)
    ent = -(flat * flat.clamp(min=1e-12).log()).sum(1) / np.log(flat.shape[1])
    return {"max_weight": float(flat.max(1).values.mean()), "rel_entropy": float(ent.mean())}


# torch 2.14.1's cpu (oneDNN) backward of a strided 1x1 convolution in channels-last memory corrupts the heap with
# one thread when it has fewer than 8 input channels (a ResNet shortcut of widths (4, 8, 8)): glibc aborts with
# "double free or corruption" or the process segfaults (issue 29, measured on an AMD EPYC without AVX-512; 16 -> 32
# and 32 -> 64 do not crash, and neither do 2 threads nor contiguous memory). Such narrow networks run contiguous.
CHANNELS_LAST_MIN_WIDTH = 8


def memory_format(widths) -> torch.memory_format:
    """The memory format the CIFAR ResNet of ``widths`` trains in: channels-last (the faster one) unless a width is
    below ``CHANNELS_LAST_MIN_WIDTH``, where channels-last hits the crashing kernel above."""
    return torch.channels_last if min(widths) >= CHANNELS_LAST_MIN_WIDTH else torch.contiguous_format


def training_net(pooling: str, n_classes: int, widths, blocks: int, temperature: float, stem_stride: int) -> Net:
    """``cifar_net`` in ``memory_format(widths)``, as ``fit_cifar`` trains it and ``cifar_from_state`` rebuilds it.
    Channels-last: the same convolutions, ~18 % less time per epoch on this machine's cpu (2.55 vs 3.10 s for 5,000
    images, ResNet-8 with a stride-2 stem)."""
    return cifar_net(pooling, n_classes, widths, blocks, temperature, stem_stride).to(
        memory_format=memory_format(widths)
    )


def maps_of(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Last feature maps of a ``Net`` (``model.body``) for images ``x``, on the cpu."""
    model.eval()
    return apply_batched(model.body, x, batch_size=batch_size)


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
