"""Pretrained weights through torchvision's own weights API, offline.

torchvision downloads ``weights.url`` into ``<torch hub dir>/checkpoints/<file name>`` and loads it from there if
present. We fetch the registered file into ``data/weights/`` (from the mirror, or its official URL, with checksum),
then place it in the hub checkpoint folder, so ``torchvision.models.mobilenet_v2(weights=...)`` loads without
a network.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from ..io import atomic_path
from .fetch import ensure_file
from .registry import get

# registry data set -> (torchvision builder name, weights enum name)
BACKBONES = {
    "mobilenet_v2": ("mobilenet_v2", "MobileNet_V2_Weights", "IMAGENET1K_V1"),
    "alexnet": ("alexnet", "AlexNet_Weights", "IMAGENET1K_V1"),
}


def place_in_hub(name: str) -> Path:
    """Fetch the weights of ``name`` and put them where torchvision looks; returns the checkpoint path."""
    f = get(name).files[0]
    src = ensure_file(f)
    dest = Path(torch.hub.get_dir()) / "checkpoints" / Path(f.relpath).name
    if not dest.exists() or dest.stat().st_size != src.stat().st_size:
        with atomic_path(dest) as tmp:
            try:
                os.link(src, tmp.with_suffix(".lnk"))
                os.replace(tmp.with_suffix(".lnk"), tmp)
            except OSError:
                shutil.copyfile(src, tmp)
    return dest


def load_backbone(name: str):
    """(model in eval mode, weights enum) for ``name`` in BACKBONES, ImageNet weights loaded offline."""
    import torchvision.models as tvm

    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    builder, enum_name, member = BACKBONES[name]
    weights = getattr(getattr(tvm, enum_name), member)
    expected = Path(weights.url).name
    if Path(get(name).files[0].relpath).name != expected:
        raise RuntimeError(f"registry file for {name} does not match torchvision's {expected}")
    place_in_hub(name)
    model = getattr(tvm, builder)(weights=weights)
    return model.eval(), weights
