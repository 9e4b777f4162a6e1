"""The mirror's same-scene image set ``pairs/``: groups of views of one scene, and unrelated distractors.

It is laid out like INRIA Holidays: a group's first image is its query, the others are its relevant images,
distractors are relevant to nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .fetch import DataError, ensure_file
from .registry import get


@dataclass
class ImageSet:
    images: list[np.ndarray]  # uint8 H x W x 3, sizes differ
    names: list[str]
    groups: list[list[int]]  # indices into images; first of each group is the query
    source: str


def load_pairs(max_side: int | None = None) -> ImageSet:
    files = {f.relpath.split("/", 1)[1]: f for f in get("pairs").files}
    meta_path = ensure_file(files["groups.json"])
    try:
        meta = json.loads(meta_path.read_text())
        groups_n, distract = meta["groups"], meta["distractors"]
    except (ValueError, KeyError) as e:
        raise DataError(f"{meta_path}: expected JSON with 'groups' and 'distractors' ({e})") from e
    names = [n for g in groups_n for n in g] + list(distract)
    images = []
    for n in names:
        if n not in files:
            raise DataError(f"{meta_path} names {n}, which the registry does not list")
        img = Image.open(ensure_file(files[n])).convert("RGB")
        if max_side and max(img.size) > max_side:
            img.thumbnail((max_side, max_side), Image.BICUBIC)
        images.append(np.asarray(img))
    idx = {n: i for i, n in enumerate(names)}
    groups = [[idx[n] for n in g] for g in groups_n]
    return ImageSet(images, names, groups, "mirror pairs/ (OpenCV sample photographs)")
