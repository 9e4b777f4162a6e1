"""How well a location-weight map (entropy weights, attention weights, a class activation map) points at an object
whose box is known: the share of the map's mass inside the box, and the pointing game (is the map's maximum inside
the box?). Maps are ``N x h x w`` on the network's grid, upsampled bilinearly to the image before scoring; negative
values (a CAM's) are set to zero first, so every map is scored as a non-negative distribution of attention.

A map that knows nothing (uniform) scores the box's share of the image on the first measure; on the second the
chance of a random location, the same fraction.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _upsampled(maps, size: int) -> torch.Tensor:
    m = torch.as_tensor(maps).float()
    if m.ndim != 3:
        raise ValueError(f"expected maps N x h x w, got {tuple(m.shape)}")
    m = F.interpolate(m[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    return m.clamp(min=0)


def _check_boxes(boxes, n: int, size: int) -> np.ndarray:
    b = np.asarray(boxes)
    if b.shape != (n, 4) or (b[:, :2] < 0).any() or (b[:, 2:] > size).any() or (b[:, 2:] <= b[:, :2]).any():
        raise ValueError(f"boxes must be N x 4 (x0, y0, x1, y1) inside the {size}-px image, got {b.shape}")
    return b


def box_share(maps, boxes, size: int) -> np.ndarray:
    """Per image, the fraction of the (non-negative, upsampled) map's mass inside its box; an all-zero map gets the
    box's area fraction (it points nowhere)."""
    m = _upsampled(maps, size)
    b = _check_boxes(boxes, len(m), size)
    total = m.flatten(1).sum(1)
    inside = torch.stack([m[i, y0:y1, x0:x1].sum() for i, (x0, y0, x1, y1) in enumerate(b)])
    area = torch.as_tensor((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / size**2, dtype=torch.float32)
    return torch.where(total > 0, inside / total.clamp(min=1e-12), area).numpy()


def pointing_hits(maps, boxes, size: int) -> np.ndarray:
    """Per image, does the map's maximum (after upsampling; the first one on ties) fall inside its box?"""
    m = _upsampled(maps, size)
    b = _check_boxes(boxes, len(m), size)
    idx = m.flatten(1).argmax(1).numpy()
    y, x = np.divmod(idx, size)
    return (x >= b[:, 0]) & (x < b[:, 2]) & (y >= b[:, 1]) & (y < b[:, 3])


def box_fraction(boxes, size: int) -> np.ndarray:
    """Per image, the box's share of the image: what a uniform map scores on both measures."""
    b = _check_boxes(boxes, len(boxes), size)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / size**2


def centre_prior(n: int, size: int, sd: float = 0.25) -> torch.Tensor:
    """``n`` copies of a fixed map that knows only where objects tend to be: an isotropic Gaussian centred on the
    ``size``-px image with standard deviation ``sd * size`` (a quarter of the side: fixed, not tuned). Scored like any
    map, it is what a centre guess achieves: a localisation claim has to beat it, not only a uniform map."""
    c = (size - 1) / 2
    r = torch.arange(size, dtype=torch.float32) - c
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * (sd * size) ** 2))
    return g.expand(n, size, size).clone()
