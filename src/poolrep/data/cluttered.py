"""Cluttered CIFAR-10: real images on a constructed localisation task (the offline stand-in for a data set with
object boxes; name it so wherever it is used).

Each object image (32 x 32) is pasted at a random position of a larger ``canvas`` whose background is tiled with
``patch`` x ``patch`` crops of other images (random images, random crop positions), so every location of the canvas
holds natural-image texture and only the pasted image is the labelled object. Its box is known exactly.

``plain`` pastes the same way on a canvas of one flat colour: the easy case, where only the object has content.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Cluttered:
    images: np.ndarray  # N x canvas x canvas x 3 uint8
    labels: np.ndarray  # N, the pasted object's label
    boxes: np.ndarray  # N x 4 (x0, y0, x1, y1) in pixels, half-open
    canvas: int


def cluttered(
    objects: np.ndarray, labels: np.ndarray, background: np.ndarray, canvas: int = 64, patch: int = 16, seed: int = 0
) -> Cluttered:
    """Paste every image of ``objects`` (N x h x w x 3) on its own canvas tiled with ``patch``-sized crops of
    ``background`` images (M x H x W x 3, drawn at random; pass images that are not among ``objects``)."""
    objects, background = np.asarray(objects), np.asarray(background)
    if objects.ndim != 4 or background.ndim != 4 or objects.shape[-1] != 3 or background.shape[-1] != 3:
        raise ValueError(f"need colour images N x H x W x 3, got {objects.shape} and {background.shape}")
    n, h, w, _ = objects.shape
    bh, bw = background.shape[1:3]
    if canvas < max(h, w) or canvas % patch or patch > min(bh, bw):
        raise ValueError(
            f"canvas {canvas} must hold the {h}x{w} objects and be tiled by {patch}-px crops of {bh}x{bw} images"
        )
    if len(labels) != n:
        raise ValueError(f"{n} objects but {len(labels)} labels")
    rng = np.random.default_rng(seed)
    tiles = canvas // patch
    out = np.empty((n, canvas, canvas, 3), np.uint8)
    boxes = np.empty((n, 4), np.int64)
    for i in range(n):
        src = rng.integers(0, len(background), tiles * tiles)
        ys, xs = rng.integers(0, bh - patch + 1, tiles * tiles), rng.integers(0, bw - patch + 1, tiles * tiles)
        for t, (b, y, x) in enumerate(zip(src, ys, xs)):
            r, c = divmod(t, tiles)
            out[i, r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = background[
                b, y : y + patch, x : x + patch
            ]
        y0, x0 = rng.integers(0, canvas - h + 1), rng.integers(0, canvas - w + 1)
        out[i, y0 : y0 + h, x0 : x0 + w] = objects[i]
        boxes[i] = (x0, y0, x0 + w, y0 + h)
    return Cluttered(out, np.asarray(labels), boxes, canvas)


CIFAR_MEAN_RGB = (125, 123, 114)  # the CIFAR-10 training images' mean colour, 0-255 (0.4914, 0.4822, 0.4465)


def plain(objects: np.ndarray, labels: np.ndarray, canvas: int = 64, seed: int = 0, colour=CIFAR_MEAN_RGB) -> Cluttered:
    """Paste every image of ``objects`` (N x h x w x 3) at a random place of its own ``canvas`` of one flat
    ``colour``: the object is the only content, so a map that sees content should find it."""
    objects = np.asarray(objects)
    if objects.ndim != 4 or objects.shape[-1] != 3:
        raise ValueError(f"need colour images N x H x W x 3, got {objects.shape}")
    n, h, w, _ = objects.shape
    if canvas < max(h, w):
        raise ValueError(f"canvas {canvas} must hold the {h}x{w} objects")
    if len(labels) != n:
        raise ValueError(f"{n} objects but {len(labels)} labels")
    rng = np.random.default_rng(seed)
    out = np.empty((n, canvas, canvas, 3), np.uint8)
    out[:] = np.asarray(colour, np.uint8)
    boxes = np.empty((n, 4), np.int64)
    for i in range(n):
        y0, x0 = rng.integers(0, canvas - h + 1), rng.integers(0, canvas - w + 1)
        out[i, y0 : y0 + h, x0 : x0 + w] = objects[i]
        boxes[i] = (x0, y0, x0 + w, y0 + h)
    return Cluttered(out, np.asarray(labels), boxes, canvas)
