"""What every pooling operator shares: the check of its input maps (one message everywhere)."""

from __future__ import annotations

import torch


def check_maps(x, what: str = "feature maps", channels: int | None = None, channels_of: str = "") -> None:
    """Raise a ``ValueError`` naming the problem unless ``x`` is a tensor ``N x C x H x W`` with a non-empty map
    (and ``C == channels`` when given; ``channels_of`` says who expects them)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"expected {what} as a tensor N x C x H x W, got shape {shape}")
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"empty {what} {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{what} have {x.shape[1]} channels, {channels_of or 'expected'} {channels}")
