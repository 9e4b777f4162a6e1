"""L2 group pooling across channel groups and over space (Goroshin et al., ICLR 2015; Hyvarinen's subspace pooling).

For feature maps ``h`` (``N x C x H x W``), channel groups of ``group`` consecutive maps and non-overlapping
``kernel x kernel`` spatial windows, the pooled map is

    m[n, g, i, j] = sqrt( sum_{c in group g} sum_{(u, v) in window (i, j)} h[n, c, u, v]^2 + eps )

so a ``C x H x W`` map becomes ``C/group x H/kernel x W/kernel``. ``eps`` (default 1e-8) keeps the gradient of the
square root finite at 0. ``forward`` flattens to ``N x D`` (the zoo's convention); ``pool_map`` keeps the map
(what the next convolutional layer of a greedy stack reads). A fully connected code ``N x D`` pools with
``pool_vector`` (groups of ``group`` consecutive units, no space).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .helpers import check_maps


class GroupL2Pool(nn.Module):
    """L2 pooling over ``group`` consecutive channels and ``kernel x kernel`` non-overlapping windows."""

    def __init__(self, group: int = 4, kernel: int = 2, eps: float = 1e-8):
        super().__init__()
        if group < 1 or kernel < 1:
            raise ValueError(f"group and kernel must be >= 1, got group={group}, kernel={kernel}")
        self.group, self.kernel, self.eps = int(group), int(kernel), float(eps)

    def _check(self, x: torch.Tensor) -> None:
        check_maps(x)
        n, c, h, w = x.shape
        if c % self.group:
            raise ValueError(f"{c} channels cannot be split into groups of {self.group}")
        if h % self.kernel or w % self.kernel:
            raise ValueError(f"map {h}x{w} is not divisible by the {self.kernel}x{self.kernel} pooling window")

    def pool_map(self, x: torch.Tensor) -> torch.Tensor:
        """``N x C x H x W -> N x C/group x H/kernel x W/kernel``."""
        self._check(x)
        n, c, h, w = x.shape
        sq = x.pow(2).reshape(n, c // self.group, self.group, h, w).sum(dim=2)
        if self.kernel > 1:
            # avg_pool * k^2 = sum over the window
            sq = F.avg_pool2d(sq, self.kernel, self.kernel) * (self.kernel * self.kernel)
        return (sq + self.eps).sqrt()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool_map(x).flatten(1)

    def pool_vector(self, h: torch.Tensor) -> torch.Tensor:
        """Fully connected codes ``N x D -> N x D/group`` (groups of consecutive units)."""
        if h.ndim != 2:
            raise ValueError(f"expected codes N x D, got shape {tuple(h.shape)}")
        if h.shape[1] % self.group:
            raise ValueError(f"{h.shape[1]} units cannot be split into groups of {self.group}")
        return (h.pow(2).reshape(h.shape[0], -1, self.group).sum(-1) + self.eps).sqrt()

    def extra_repr(self) -> str:
        return f"group={self.group}, kernel={self.kernel}, eps={self.eps}"
