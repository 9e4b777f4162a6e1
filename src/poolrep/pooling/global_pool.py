"""Global pooling references: average, max and generalised mean (GeM, Radenovic et al. 2018)."""

from __future__ import annotations

import torch
from torch import nn

from .helpers import check_maps


class GlobalAvgPool(nn.Module):
    """Mean over all locations: ``N x C x H x W -> N x C``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_maps(x)
        return x.mean(dim=(2, 3))


class GlobalMaxPool(nn.Module):
    """Max over all locations: ``N x C x H x W -> N x C``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_maps(x)
        return x.amax(dim=(2, 3))


class GeM(nn.Module):
    """``(mean_i x_i^p)^(1/p)`` per channel; p = 1 is average, p -> inf approaches max. Inputs are clamped at
    ``eps`` (GeM is defined for non-negative maps, e.g. after ReLU)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6, learn_p: bool = False):
        super().__init__()
        if p <= 0:
            raise ValueError("GeM needs p > 0")
        t = torch.tensor(float(p))
        self.p = nn.Parameter(t) if learn_p else nn.Buffer(t)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_maps(x)
        x = x.clamp(min=self.eps)
        # computed as m * (mean (x/m)^p)^(1/p) with m the channel's max: the same value, but x^p itself overflows
        # float32 for large p (p = 50 on values of 6 gave inf), while (x/m)^p lies in (0, 1] and its mean >= 1/(HW)
        m = x.amax(dim=(2, 3), keepdim=True)
        return (x / m).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p) * m.flatten(1)
