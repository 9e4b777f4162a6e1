"""Learned spatial attention pooling: the attention-style baseline for entropy pooling.

A 1x1 convolution scores every location, a softmax over the H*W locations turns the scores into weights, and
the pooled feature is the weighted sum:

    a_i = v . f_i + c,     w_i = exp(a_i / T) / sum_j exp(a_j / T),     g = sum_i w_i f_i      (N x D)

With ``v = 0`` at initialisation (our default) the weights start uniform, i.e. the layer starts as global
average pooling, exactly like entropy pooling with uniform predictions; it then learns where to look from the
classification loss alone (class-agnostic), whereas entropy pooling derives its weights from the classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from .helpers import check_maps


class SpatialAttentionPool(nn.Module):
    """``N x D x H x W -> N x D``: softmax-normalised learned 1x1-conv location scores times the features."""

    def __init__(self, in_channels: int, temperature: float = 1.0, zero_init: bool = True):
        super().__init__()
        if in_channels < 1:
            raise ValueError("in_channels must be >= 1")
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        self.score = nn.Conv2d(in_channels, 1, kernel_size=1)
        self.temperature = float(temperature)
        if zero_init:
            nn.init.zeros_(self.score.weight)
            nn.init.zeros_(self.score.bias)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised location weights ``N x H x W``."""
        check_maps(x, channels=self.score.in_channels)
        n, _, h, w = x.shape
        a = self.score(x).reshape(n, h * w) / self.temperature
        return torch.softmax(a, dim=1).reshape(n, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ndhw,nhw->nd", x, self.weights(x))
