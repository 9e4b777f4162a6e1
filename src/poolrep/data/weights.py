"""Pretrained weights, offline, loaded only from the checksum-verified registry file.

We fetch the registered file into ``data/weights/`` (from the mirror, or its official URL, with checksum), build
the torchvision model without weights and load the state dict from that file with ``weights_only=True``. Nothing
goes through torch's hub folder: torchvision would load whatever file of the right name sits there with
``weights_only=False`` (a planted pickle runs code), and nothing there is checked against our registry.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .fetch import ensure_file
from .registry import get

# registry data set -> (torchvision builder name, weights enum name)
BACKBONES = {
    "mobilenet_v2": ("mobilenet_v2", "MobileNet_V2_Weights", "IMAGENET1K_V1"),
    "alexnet": ("alexnet", "AlexNet_Weights", "IMAGENET1K_V1"),
}


def load_backbone(name: str):
    """(model in eval mode, weights enum) for ``name`` in BACKBONES, ImageNet weights loaded offline.

    The file's checksum is verified on every call (no per-process memo: weights files are small, and the file is
    read right after), and it is unpickled with ``weights_only=True`` (tensors and containers only)."""
    import torchvision.models as tvm

    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    builder, enum_name, member = BACKBONES[name]
    weights = getattr(getattr(tvm, enum_name), member)
    f = get(name).files[0]
    expected = Path(weights.url).name
    if Path(f.relpath).name != expected:
        raise RuntimeError(f"registry file for {name} does not match torchvision's {expected}")
    path = ensure_file(f, memo=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = getattr(tvm, builder)(weights=None, num_classes=len(weights.meta["categories"]))
    model.load_state_dict(state)
    return model.eval(), weights
