"""Jose et al.'s descriptors (ICIP 2018, Sec. 2): every descriptor of the last conv block, L2-normalised.

- ``L5``: the flattened last conv map (AlexNet pool5: 9,216-d; MobileNetV2 features.18 at 224 px: 62,720-d);
- ``fc6`` / ``fc7``: the neural codes of the fully connected layers. AlexNet: ReLU(fc6), ReLU(fc7), computed from
  pool5 by the network's own classifier layers. MobileNetV2 has no hidden FC layers; its stand-ins are
  ``fc6`` := the 1,280-d global-average-pooled conv map (the pre-classifier feature) and ``fc7`` := the
  1,000-d classifier logits (the next, and last, layer up);
- ``max`` (global max), ``hybrid`` (global max + average), ``window1-3``, ``pyramid1-5``
  (:mod:`poolrep.pooling.window`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ...features import LAST_CONV, extract, extractor
from ...normalize import l2_normalize
from ...pooling.window import PYRAMIDS, WINDOWS, HybridPool, WindowMaxPool

CONV_NODE = LAST_CONV  # the maps every descriptor pools (AlexNet: pool5 = features.12)


DESCRIPTORS = (
    "L5",
    "fc6",
    "fc7",
    "max",
    "hybrid",
    "window1",
    "window2",
    "window3",
    "pyramid1",
    "pyramid2",
    "pyramid3",
    "pyramid4",
    "pyramid5",
)


def stand_in(net: str) -> dict[str, str]:
    """What each paper descriptor is for ``net`` (for table notes)."""
    if net == "alexnet":
        return {"L5": "pool5 flattened", "fc6": "ReLU(fc6)", "fc7": "ReLU(fc7)"}
    if net == "mobilenet_v2":
        return {
            "L5": "features.18 flattened",
            "fc6": "GAP 1280-d (pre-classifier code)",
            "fc7": "logits 1000-d (extra: class scores, not a code; no fc7)",
        }
    raise ValueError(f"unknown backbone {net!r}; known: alexnet, mobilenet_v2")


def pyramid_defs(params_pyramids: dict | None) -> dict[str, tuple[str, ...]]:
    """The pyramids in use: the package defaults overridden by params.yaml's ``pyramids`` mapping."""
    out = dict(PYRAMIDS)
    for k, v in (params_pyramids or {}).items():
        out[k] = tuple(v)
    return out


@torch.inference_mode()
def head_codes(net: str, model: nn.Module, maps: torch.Tensor) -> dict[str, torch.Tensor]:
    """fc6 / fc7 codes (or their stand-ins) from the last conv maps, through the model's own layers."""
    model = model.eval()
    if net == "mobilenet_v2":
        gap = maps.mean(dim=(2, 3))
        return {"fc6": gap, "fc7": model.classifier(gap)}
    if net == "alexnet":
        x = torch.flatten(model.avgpool(maps), 1)
        c = model.classifier  # Dropout, fc6, ReLU, Dropout, fc7, ReLU, fc8
        h6 = c[2](c[1](x))
        return {"fc6": h6, "fc7": c[5](c[4](h6))}
    raise ValueError(f"unknown backbone {net!r}; known: alexnet, mobilenet_v2")


@torch.inference_mode()
def describe(
    maps,
    names: Sequence[str] = DESCRIPTORS,
    pyramids: dict | None = None,
    net: str | None = None,
    model: nn.Module | None = None,
    batch_size: int = 256,
    device="cpu",
    dtype: torch.dtype = torch.float16,
) -> dict[str, torch.Tensor]:
    """{descriptor: N x D, L2-normalised, stored as ``dtype``} from conv maps (array or tensor N x C x H x W)."""
    maps = torch.as_tensor(np.asarray(maps)) if not isinstance(maps, torch.Tensor) else maps
    if maps.ndim != 4:
        raise ValueError(f"expected conv maps N x C x H x W, got {tuple(maps.shape)}")
    unknown = [n for n in names if n not in DESCRIPTORS and n not in (pyramids or {})]
    if unknown:
        raise ValueError(f"unknown descriptor(s) {unknown}; known: {', '.join(DESCRIPTORS)}")
    if any(n in ("fc6", "fc7") for n in names) and (model is None or net is None):
        raise ValueError("fc6/fc7 need the backbone (net=..., model=...)")
    ops = {}
    for n in names:
        if n == "hybrid":
            ops[n] = HybridPool()
        elif n not in ("L5", "fc6", "fc7"):
            ops[n] = WindowMaxPool(n, pyramids)
    if model is not None:
        model = model.to(device)
    pyr = pyramid_defs(pyramids)
    out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for s in range(0, len(maps), batch_size):
        x = maps[s : s + batch_size].to(device).float()
        head = head_codes(net, model, x) if model is not None and {"fc6", "fc7"} & set(names) else {}
        base: dict[str, torch.Tensor] = {}  # each window pooled once per batch, shared by the pyramids

        def window(name: str, base: dict = base, x: torch.Tensor = x) -> torch.Tensor:  # bound to this batch
            if name not in base:
                base[name] = WindowMaxPool(name)(x)
            return base[name]

        for n in names:
            parts = pyr.get(n) if n.startswith("pyramid") or n in (pyramids or {}) else None
            if n == "L5":
                d = x.flatten(1)
            elif n in ("fc6", "fc7"):
                d = head[n]
            elif n in WINDOWS:
                d = window(n)
            elif parts is not None and all(p in WINDOWS for p in parts):
                d = torch.cat([window(p) for p in parts], dim=1)
            else:
                d = ops[n](x)
            out[n].append(l2_normalize(d).to(dtype).cpu())
    return {n: torch.cat(v) for n, v in out.items()}


def conv_maps(
    model: nn.Module, net: str, images, size: int, batch_size: int = 32, device="cpu", desc: str = "conv maps"
) -> np.ndarray:
    """Last-conv maps (float16 N x C x h x w) of uint8 images (array or list of any sizes, squashed to size)."""
    fx, mean, std = extractor(net, [LAST_CONV[net]], model=model)
    return extract(fx, mean, std, images, size, batch_size, device, desc=desc)[LAST_CONV[net]]
