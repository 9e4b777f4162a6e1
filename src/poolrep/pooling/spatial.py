"""Spatial pooling over fixed grids (the baseline "SP" of auto-pooling; Coates, Lee & Ng 2011 style).

A ``g x g`` grid cuts the ``H x W`` maps into cells with edges ``round(linspace(0, H, g + 1))`` (for 27 x 27
maps and g = 2: rows 0-13 and 14-26, Coates et al.'s quadrants) and pools each channel over each cell:

    sum: z[c, i, j] = sum_{(y, x) in cell(i, j)} x[c, y, x]        max: the maximum instead of the sum

Output ``N x (C * g * g)``, ordered channel-major (c, i, j). :class:`MultiGridPool` concatenates several grids
(``grids=(1, 2, 4)`` is a 1x1 + 2x2 + 4x4 pyramid, ``C * 21`` features). :func:`grid_matrix` writes a grid as a
0/1 pooling matrix ``P`` (``C g^2 x C H W``), so that sum pooling equals ``P x`` (auto-pooling's form).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .helpers import check_maps

OPS = ("sum", "max")


def grid_edges(n: int, g: int) -> np.ndarray:
    if g < 1 or g > n:
        raise ValueError(f"grid {g} must be between 1 and the map size {n}")
    return np.round(np.linspace(0, n, g + 1)).astype(int)


class SpatialPool(nn.Module):
    """Sum or max pooling over a ``grid x grid`` partition of the maps: ``N x C x H x W -> N x C*grid^2``."""

    def __init__(self, grid: int, op: str = "sum"):
        super().__init__()
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}; use one of {OPS}")
        if int(grid) != grid or grid < 1:
            raise ValueError(f"grid must be a positive integer, got {grid!r}")
        self.grid, self.op = int(grid), op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_maps(x)
        N, C, H, W = x.shape
        ey, ex = grid_edges(H, self.grid), grid_edges(W, self.grid)
        cells = []
        for i in range(self.grid):
            for j in range(self.grid):
                block = x[:, :, ey[i] : ey[i + 1], ex[j] : ex[j + 1]]
                cells.append(block.sum(dim=(2, 3)) if self.op == "sum" else block.amax(dim=(2, 3)))
        return torch.stack(cells, dim=2).reshape(N, C * self.grid * self.grid)

    def extra_repr(self) -> str:
        return f"grid={self.grid}, op={self.op}"


class MultiGridPool(nn.Module):
    """Concatenation of :class:`SpatialPool` over several grids (e.g. ``(1, 2, 3)``)."""

    def __init__(self, grids, op: str = "sum"):
        super().__init__()
        grids = tuple(int(g) for g in grids)
        if not grids:
            raise ValueError("MultiGridPool needs at least one grid")
        self.grids = grids
        self.pools = nn.ModuleList(SpatialPool(g, op) for g in grids)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([p(x) for p in self.pools], dim=1)


def grid_name(grids) -> str:
    """``(1, 2, 3)`` -> ``'1x1+2x2+3x3'``."""
    return "+".join(f"{g}x{g}" for g in grids)


def n_features(grids, channels: int) -> int:
    return channels * sum(g * g for g in grids)


def grid_matrix(grid: int | tuple[int, int], C: int, H: int, W: int) -> torch.Tensor:
    """The 0/1 pooling matrix of a ``grid x grid`` (or ``gy x gx``) sum pooling on ``C x H x W`` maps (rows ordered
    (c, i, j), columns in the flattening order of ``N x C x H x W``)."""
    gy, gx = (grid, grid) if isinstance(grid, int) else grid
    ey, ex = grid_edges(H, gy), grid_edges(W, gx)
    P = torch.zeros(C, gy, gx, C, H, W)
    for c in range(C):
        for i in range(gy):
            for j in range(gx):
                P[c, i, j, c, ey[i] : ey[i + 1], ex[j] : ex[j + 1]] = 1.0
    return P.reshape(C * gy * gx, C * H * W)


def grid_for(K: int, C: int) -> tuple[int, int]:
    """The ``gy x gx`` grid (``gy <= gx``, as square as possible) whose sum pooling of C channels has exactly K
    outputs: the spatial pooling that is a feasible auto-pooling P of the same size."""
    if K % C:
        raise ValueError(f"no grid of {C} channels gives {K} outputs (K must be a multiple of C)")
    cells = K // C
    gy = max(d for d in range(1, int(cells**0.5) + 1) if cells % d == 0)
    return gy, cells // gy
