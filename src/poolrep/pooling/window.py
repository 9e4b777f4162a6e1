"""Sliding-window and pyramid max pooling of conv feature maps (after A. Jose, R. D. Lopez, I. Heisterklaus,
M. Wien, "Pyramid pooling of convolutional feature maps for image retrieval", ICIP 2018).

A *window* ``w = (kh, kw)`` slid with stride ``(sh, sw)`` over a map ``x`` (N x C x H x W) gives one bin per
position ``(r, c)``; each bin is the channel-wise maximum over the window:

    b_{r,c} = max_{i in [r, r+kh), j in [c, c+kw)} x[:, :, i, j]          (N x C)

and a window descriptor is its bins concatenated bin-major (``[b_0 | b_1 | ...]``, D = C * #bins). A *pyramid*
concatenates several window descriptors. The paper defines its windows on AlexNet's 6 x 6 pool5 grid (its
Table 1, "Sliding window sizes and corresponding strides"):

    MAX      6x6, one bin                          (256-d for 256 channels)
    Window1  2x2 stride 2  -> 3x3 = 9 bins         (2,304-d)
    Window2  4x4 stride 2  -> 2x2 = 4 bins         (1,024-d)
    Window3  the two half-maps: 3x6 and 6x3 stride 3 -> 2 + 2 = 4 bins (1,024-d)

(The paper's stride column says 1 for Window3, which would give 4 + 4 = 8 bins; its dimensions, e.g.
Pyramid 1 = 3,328 = 13 x 256, only add up with the half-map windows, so we follow the dimensions.)

Any map size: every window is given on a *reference grid* (``ref`` = 6, the paper's); on an ``H x W`` map the
window is scaled to ``k' = max(1, ceil(k * H / ref))`` and the SAME number of positions as on the reference grid
is spread evenly over ``[0, H - k']`` (``round(linspace)``). On the reference grid this is exactly the strided
window above; on 7 x 7 (MobileNetV2 at 224 px) or 13 x 13 maps it keeps the number of bins, hence the
descriptor's dimension, and still covers the whole map. A map smaller than the reference grid works too (windows
of at least one cell).

``HybridPool`` is the paper's hybrid descriptor: global max and global average, concatenated (2C-d).
Descriptors are L2-normalised by the caller (``poolrep.retrieval``), not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .helpers import check_maps


@dataclass(frozen=True)
class Window:
    """A window of ``kernel`` cells slid with ``stride`` on a ``ref x ref`` reference grid."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    ref: int = 6

    def __post_init__(self):
        for name, v in (("kernel", self.kernel), ("stride", self.stride)):
            if len(v) != 2 or min(v) < 1:
                raise ValueError(f"Window {name} must be two positive ints, got {v}")
        if max(self.kernel) > self.ref:
            raise ValueError(f"Window kernel {self.kernel} larger than its reference grid {self.ref}")

    @property
    def positions(self) -> tuple[int, int]:
        """Number of window positions along rows and columns (on the reference grid, hence on every grid)."""
        return tuple((self.ref - k) // s + 1 for k, s in zip(self.kernel, self.stride))

    @property
    def bins(self) -> int:
        return self.positions[0] * self.positions[1]

    def spans(self, h: int, w: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Half-open row spans and column spans of the window positions on an ``h x w`` map."""
        axes = []
        for size, k, n in zip((h, w), self.kernel, self.positions):
            kk = max(1, min(size, -(-k * size // self.ref)))  # ceil: the windows still cover the map
            starts = np.rint(np.linspace(0, size - kk, n)).astype(int) if n > 1 else np.array([0])
            axes.append([(int(s), int(s) + kk) for s in starts])
        return axes[0], axes[1]

    def boxes(self, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """Half-open boxes ``(r0, r1, c0, c1)`` of the window on an ``h x w`` map, row-major (= bin order)."""
        rows, cols = self.spans(h, w)
        return [(r0, r1, c0, c1) for r0, r1 in rows for c0, c1 in cols]


# The paper's windows (Table 1; MAX: "max-pooling applied to the full 6x6 spatial map", Table 2), on its 6 x 6
# reference grid.
WINDOWS: dict[str, tuple[Window, ...]] = {
    "max": (Window((6, 6), (6, 6)),),
    "window1": (Window((2, 2), (2, 2)),),
    "window2": (Window((4, 4), (2, 2)),),
    "window3": (Window((3, 6), (3, 6)), Window((6, 3), (6, 3))),
}

# The paper's pyramids, Table 2 ("Pyramid models"): Pyramid 1 = Window1 + Window3, Pyramid 2 = Window2 + Window3,
# Pyramid 3 = MAX + Window3, Pyramid 4 = MAX + Window1 + Window2, Pyramid 5 = MAX + Window2 + Window3. With the
# windows above they give exactly Table 3's dimensions for 6x6x256: 3,328 / 2,048 / 1,280 / 3,584 / 2,304.
PYRAMIDS: dict[str, tuple[str, ...]] = {
    "pyramid1": ("window1", "window3"),
    "pyramid2": ("window2", "window3"),
    "pyramid3": ("max", "window3"),
    "pyramid4": ("max", "window1", "window2"),
    "pyramid5": ("max", "window2", "window3"),
}


class WindowMaxPool(nn.Module):
    """Max pooling over the bins of one or more windows, concatenated: ``N x C x H x W -> N x (C * bins)``.

    ``windows``: a name from ``WINDOWS`` / ``PYRAMIDS`` (e.g. ``"window1"``, ``"pyramid1"``), or a sequence of
    ``Window`` objects and/or window names.
    """

    def __init__(self, windows: str | Sequence[Window | str], pyramids: dict[str, Sequence[str]] | None = None):
        super().__init__()
        self.windows = resolve_windows(windows, pyramids)

    @property
    def bins(self) -> int:
        return sum(w.bins for w in self.windows)

    def dim(self, channels: int) -> int:
        return channels * self.bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_maps(x)
        h, w = x.shape[-2:]
        parts = []
        for win in self.windows:
            rows, cols = win.spans(h, w)
            # max is separable: over each row span first (N x C x nr x W), then over each column span.
            y = torch.stack([x[:, :, r0:r1, :].amax(dim=2) for r0, r1 in rows], dim=2)
            y = torch.stack([y[..., c0:c1].amax(dim=-1) for c0, c1 in cols], dim=-1)  # N x C x nr x nc
            parts.append(y.flatten(2).transpose(1, 2).flatten(1))  # bin-major, bins row-major
        return torch.cat(parts, dim=1)


class HybridPool(nn.Module):
    """Global max and global average, concatenated: ``[max_ij x | mean_ij x]``, ``N x C x H x W -> N x 2C``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_maps(x)
        return torch.cat([x.amax(dim=(2, 3)), x.mean(dim=(2, 3))], dim=1)


def resolve_windows(
    spec: str | Sequence[Window | str], pyramids: dict[str, Sequence[str]] | None = None
) -> tuple[Window, ...]:
    """Expand a window/pyramid name or a list of them into ``Window`` objects (unknown name: ValueError)."""
    pyr = {**PYRAMIDS, **(pyramids or {})}
    if isinstance(spec, Window):
        return (spec,)
    if isinstance(spec, str):
        key = spec.lower()
        if key in WINDOWS:
            return WINDOWS[key]
        if key in pyr:
            return tuple(w for name in pyr[key] for w in resolve_windows(name, pyramids))
        raise ValueError(f"unknown window or pyramid {spec!r}; known: {', '.join([*WINDOWS, *pyr])}")
    out = tuple(w for s in spec for w in resolve_windows(s, pyramids))
    if not out:
        raise ValueError("no windows given")
    return out
