"""Feature maps from a pretrained backbone, batched, with a progress bar, on whatever device is given.

``extractor(backbone, layers)`` wraps torchvision's ``create_feature_extractor`` (named graph nodes, e.g.
``features.18`` for MobileNetV2's last conv block, ``features.12`` for AlexNet's pool5); ``extract`` runs it over
uint8 images, resizing to ``size`` and normalising with the weights' ImageNet mean and std. ``apply_batched``
runs any module or function (a pooling operator, a trained layer, a classifier) over arrays in batches: the one
batched loop of the package.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data.weights import load_backbone

# The last convolutional block of each backbone (the "conv5" of the papers).
LAST_CONV = {"mobilenet_v2": "features.18", "alexnet": "features.12"}
# The block before it (MobileNetV2's last inverted residual, 320 channels; AlexNet's conv4 after ReLU).
PREV_CONV = {"mobilenet_v2": "features.17", "alexnet": "features.9"}


# torchvision's ImageNet weights all normalise with these (``weights.transforms().mean/std``).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def load_model(backbone: str, weights_file: str | None = None) -> torch.nn.Module:
    """The backbone in eval mode: torchvision's ImageNet weights (offline, checksummed: ``load_backbone``), or,
    with ``weights_file``, a state dict for the same torchvision architecture (e.g. an AlexNet trained on Places,
    the paper's Table 4), loaded with ``weights_only=True`` (no code runs from the file)."""
    import torchvision.models as tvm

    if backbone not in LAST_CONV:
        raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(LAST_CONV)}")
    if weights_file is None:
        return load_backbone(backbone)[0]
    from pathlib import Path

    from .data import DataError

    path = Path(weights_file)
    if not path.is_file():
        raise DataError(f"weights file {path} not found (parameter weights_file; null uses the ImageNet weights)")
    model = getattr(tvm, backbone)(weights=None)
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as e:  # a wrong architecture or a file that is no state dict: one clear message
        raise DataError(f"{path} is not a {backbone} state dict ({type(e).__name__}: {e})") from e
    return model.eval()


def extractor(backbone: str, layers: Sequence[str], pretrained: bool = True, model: torch.nn.Module | None = None):
    """``(fx, mean, std)``: a module returning ``{layer: maps}`` and the input normalisation.

    ``pretrained`` loads the ImageNet weights offline (``load_backbone``); ``pretrained=False`` builds torchvision's
    randomly initialised model (tests of the paper profile's AlexNet path, whose weights are not offline);
    ``model`` wraps a model the caller already has (e.g. to reuse its classifier layers too).
    """
    import torchvision.models as tvm
    from torchvision.models.feature_extraction import create_feature_extractor

    if backbone not in LAST_CONV:
        raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(LAST_CONV)}")
    if model is None:
        model = load_backbone(backbone)[0] if pretrained else getattr(tvm, backbone)(weights=None)
    fx = create_feature_extractor(model.eval(), return_nodes={name: name for name in layers}).eval()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return fx, mean, std


def to_input(images, size: int | tuple[int, int], mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 ``N x H x W x 3`` (array or list of equal-size arrays) -> normalised float ``N x 3 x size x size``."""
    x = torch.from_numpy(np.ascontiguousarray(np.stack(images) if isinstance(images, list) else images))
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 images N x H x W x 3, got shape {tuple(x.shape)}")
    x = x.permute(0, 3, 1, 2).float().div_(255)
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return (x - mean) / std


@torch.inference_mode()
def extract(
    fx,
    mean: torch.Tensor,
    std: torch.Tensor,
    images,
    size: int | tuple[int, int],
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float16,
    desc: str = "features",
) -> dict[str, np.ndarray]:
    """Run ``fx`` over ``images`` (uint8 array N x H x W x 3, or a list of arrays of any size, each resized).

    Returns {layer: array N x C x h x w} stored as ``dtype`` (float16 halves the memory of cached maps).

    Every visible GPU is used, two ways, both PyTorch's own:
    - in a torchrun worker (a ``torch.distributed`` group is up, see :mod:`poolrep.distributed`), this process
      extracts only its contiguous shard on its own GPU, and the shards are gathered in order: rank 0 gets the
      whole result, the other ranks ``{}``;
    - in one process (a notebook) with several GPUs and ``device="cuda"``, ``torch.nn.DataParallel`` splits each
      batch across them.
    """
    from .distributed import gather, local_device, rank_world, shard

    rank, world = rank_world()
    if world > 1:
        part = _extract(
            fx,
            mean,
            std,
            images[shard(len(images), rank, world)],
            size,
            batch_size,
            local_device(torch.device(device)),
            dtype,
            f"{desc} [rank {rank}/{world}]",
            parallel=False,
        )
        return gather(part, rank, world)
    return _extract(fx, mean, std, images, size, batch_size, torch.device(device), dtype, desc, parallel=True)


def _extract(fx, mean, std, images, size, batch_size, device: torch.device, dtype, desc, parallel: bool):
    fx = fx.to(device)
    if parallel and device.type == "cuda" and device.index is None and torch.cuda.device_count() > 1:
        # Every visible GPU, through PyTorch's own data-parallel wrapper (batches are split across GPUs).
        fx = torch.nn.DataParallel(fx)
    mean, std = mean.to(device), std.to(device)
    n = len(images)
    out: dict[str, list[np.ndarray]] = {}
    for s in tqdm(range(0, n, batch_size), desc=desc, unit="batch"):
        chunk = images[s : s + batch_size]
        x = to_input(
            chunk if not isinstance(chunk, list) else [_resize(im, size) for im in chunk], size, mean.cpu(), std.cpu()
        ).to(device)
        for k, v in fx(x).items():
            out.setdefault(k, []).append(v.to(dtype).cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _resize(im: np.ndarray, size) -> np.ndarray:
    from PIL import Image

    size = (size, size) if isinstance(size, int) else tuple(size)
    return np.asarray(Image.fromarray(im).resize((size[1], size[0]), Image.BICUBIC))


@torch.no_grad()
def apply_batched(
    fn,
    *inputs,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    dtype=None,
    timed: bool = False,
    desc: str | None = None,
):
    """``fn(*batch)`` over ``inputs`` (arrays or tensors with the same first dimension) in batches of
    ``batch_size`` on ``device``; inputs are cast to float32 on the device, ``None`` inputs are left out.

    Returns the outputs concatenated on the cpu: a torch tensor (``dtype=None``), or a numpy array of ``dtype``
    (e.g. ``np.float16`` to halve the memory of 100k-dimensional representations; a value beyond the float16
    range is an ``OverflowError``, never a silent inf). ``timed=True`` returns ``(outputs, milliseconds per
    item)``, timed after one warm-up batch (synchronising CUDA), excluding the copies to the cpu.
    ``no_grad`` (not ``inference_mode``): the outputs may feed a later training step (greedy layer-wise stacks).
    """
    xs = [x for x in inputs if x is not None]
    if not xs:
        raise ValueError("apply_batched needs at least one input")
    n = len(xs[0])
    if any(len(x) != n for x in xs):
        raise ValueError(f"inputs differ in length: {[len(x) for x in xs]}")
    device = torch.device(device)
    if isinstance(fn, torch.nn.Module):
        fn = fn.to(device).eval()

    def run(s):
        return fn(*(torch.as_tensor(x[s : s + batch_size]).to(device).float() for x in xs))

    if timed and n:
        run(0)  # warm-up: first-call allocations and lazy initialisation are not pooling time
    out, seconds = None, 0.0
    parts = []
    bar = tqdm(range(0, n, batch_size), desc=desc, unit="batch", leave=False, disable=desc is None)
    for s in bar:
        t0 = time.perf_counter()
        r = run(s)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
        r = r.cpu()
        if dtype is None:
            parts.append(r)
            continue
        r = r.float().numpy()
        if out is None:
            out = np.empty((n, *r.shape[1:]), dtype)
        if dtype == np.float16 and r.size and np.abs(r).max() > 6e4:
            raise OverflowError("values exceed the float16 range; rescale them or store float32")
        out[s : s + len(r)] = r
    if dtype is None:
        out = torch.cat(parts) if parts else torch.empty(0)
    return (out, 1000 * seconds / max(n, 1)) if timed else out
