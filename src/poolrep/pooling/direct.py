"""Direct pooling of local features (Liu et al. CVPR 2015, Sec. 4: the baselines of cross-layer pooling): the same
PCA-reduced local features that :class:`poolrep.pooling.crosslayer.CrossLayerPool` weights, pooled directly,
``sum_i x_i`` or ``max_i x_i`` over the positions i."""

from __future__ import annotations

import torch
from torch import nn

from .crosslayer import CrossLayerPool


class DirectPool(nn.Module):
    """Baselines of the paper: the same PCA-reduced local features pooled directly, ``sum_i x_i`` or ``max_i x_i``."""

    def __init__(self, cross: CrossLayerPool, mode: str = "sum"):
        super().__init__()
        if mode not in ("sum", "max"):
            raise ValueError(f"mode must be 'sum' or 'max', not {mode!r}")
        self.cross, self.mode = cross, mode

    def forward(self, maps_t: torch.Tensor) -> torch.Tensor:
        x = self.cross.project(maps_t)
        return x.sum(1) if self.mode == "sum" else x.amax(1)
