"""CUB-200-2011 (Caltech-UCSD Birds-200-2011, Wah et al. 2011) in its official archive layout.

``CUB_200_2011.tgz`` unpacks to ``CUB_200_2011/`` holding ``images/<class folder>/<file>.jpg`` and the index
files (one record per line, ids 1-based):

- ``images.txt``: ``<image_id> <relative path under images/>``
- ``image_class_labels.txt``: ``<image_id> <class_id>``
- ``train_test_split.txt``: ``<image_id> <is_training_image>`` (1: train, 0: test; 5,994 / 5,794)
- ``classes.txt``: ``<class_id> <class name>``

No part annotations are used; images are whole or cropped to their bounding box (``bounding_boxes.txt``,
``crop_box``): the cross-layer pooling paper's Table 1 does not say which, and the CNN-SVM numbers it compares
with used boxes. The archive is unpacked once into ``cache/cub200/``; images are decoded lazily, batch by batch,
and resized on the fly (``CubSplit.images(size)``), so the 11,788 photos never sit in memory at full size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import paths
from .fetch import DataError, ensure_file, safe_unpack
from .images import LazyImages
from .registry import get

INDEX_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")
BOXES_FILE = "bounding_boxes.txt"  # <image_id> <x> <y> <width> <height>, pixels
N_TRAIN, N_TEST = 5994, 5794


@dataclass
class CubSplit:
    paths: list[Path]
    labels: np.ndarray  # int64, 0-based class index
    classes: tuple[str, ...]
    source: str
    boxes: list | None = None  # (x1, y1, x2, y2) per image: crop to the bird's bounding box

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, size: int | tuple[int, int]) -> LazyImages:
        """A sequence of uint8 ``size x size x 3`` arrays (the image, or its box when ``boxes`` is set, resized;
        aspect not kept), decoded on access."""
        return LazyImages(self.paths, size, boxes=self.boxes, what="CUB image")

    def subset(self, per_class: int | None, seed: int = 0) -> CubSplit:
        if per_class is None:
            return self
        from .cifar import balanced_indices

        idx = balanced_indices(self.labels, per_class, seed)
        return CubSplit(
            [self.paths[i] for i in idx],
            self.labels[idx],
            self.classes,
            self.source + f" [{per_class}/class subset]",
            None if self.boxes is None else [self.boxes[i] for i in idx],
        )


def _read_index(path: Path, n_fields: int) -> list[list[str]]:
    if not path.exists():
        raise DataError(f"{path} missing: not the official CUB_200_2011 layout (needs {', '.join(INDEX_FILES)})")
    rows = []
    for k, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=n_fields - 1)
        if len(parts) != n_fields:
            raise DataError(f"{path}:{k}: expected {n_fields} fields, got {line!r}")
        rows.append(parts)
    return rows


def find_root(folder: str | Path) -> Path:
    """The folder holding ``images.txt``: ``folder`` itself or its ``CUB_200_2011/`` child."""
    folder = Path(folder)
    for cand in (folder, folder / "CUB_200_2011"):
        if (cand / "images.txt").exists():
            return cand
    raise DataError(f"{folder}: no images.txt here or in CUB_200_2011/; not the official CUB-200-2011 layout")


def read_boxes(root: Path) -> dict[int, tuple[float, float, float, float]]:
    """``bounding_boxes.txt`` as ``{image_id: (x1, y1, x2, y2)}``."""
    out = {}
    for i, x, y, w, h in _read_index(root / BOXES_FILE, 5):
        x, y, w, h = (float(v) for v in (x, y, w, h))
        if w <= 0 or h <= 0:
            raise DataError(f"{root / BOXES_FILE}: image {i} has an empty box ({w} x {h})")
        out[int(i)] = (x, y, x + w, y + h)
    return out


def read_cub(folder: str | Path, check_files: bool = True, crop_box: bool = False) -> dict[str, CubSplit]:
    """Both splits of an unpacked CUB-200-2011 tree (``folder`` or ``folder/CUB_200_2011``); ``crop_box``: each
    image cropped to its bounding box (``bounding_boxes.txt``)."""
    root = find_root(folder)
    boxes = read_boxes(root) if crop_box else None
    images = {int(i): p for i, p in _read_index(root / "images.txt", 2)}
    labels = {int(i): int(c) for i, c in _read_index(root / "image_class_labels.txt", 2)}
    split = {int(i): int(t) for i, t in _read_index(root / "train_test_split.txt", 2)}
    cls_rows = sorted((int(i), name) for i, name in _read_index(root / "classes.txt", 2))
    if [i for i, _ in cls_rows] != list(range(1, len(cls_rows) + 1)):
        raise DataError(f"{root / 'classes.txt'}: class ids must be 1..{len(cls_rows)}")
    classes = tuple(name for _, name in cls_rows)
    if not (images.keys() == labels.keys() == split.keys()):
        raise DataError(f"{root}: images.txt, image_class_labels.txt and train_test_split.txt list different ids")
    out = {}
    for name, flag in (("train", 1), ("test", 0)):
        ids = sorted(i for i, t in split.items() if t == flag)
        files = [root / "images" / images[i] for i in ids]
        if check_files:
            missing = [f for f in files if not f.exists()]
            if missing:
                raise DataError(f"{root}: {len(missing)} image(s) listed in images.txt are missing, e.g. {missing[0]}")
        y = np.array([labels[i] - 1 for i in ids], np.int64)
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise DataError(f"{root}: class ids outside 1..{len(classes)} in image_class_labels.txt")
        if boxes is not None and any(i not in boxes for i in ids):
            raise DataError(f"{root / BOXES_FILE}: some images have no box")
        out[name] = CubSplit(
            files,
            y,
            classes,
            f"CUB-200-2011 official split ({root}; {'cropped to bounding boxes' if crop_box else 'whole images'})",
            None if boxes is None else [boxes[i] for i in ids],
        )
    return out


def unpack(archive: str | Path, dest: str | Path) -> Path:
    """Unpack ``CUB_200_2011.tgz`` into ``dest`` once, all or nothing (if ``dest`` exists, it is complete);
    returns the root."""
    return find_root(safe_unpack(archive, dest))


def load_cub200(split: str = "train", archive: str | Path | None = None, crop_box: bool = False) -> CubSplit:
    """CUB-200-2011 ``split`` ('train' or 'test') with the official train_test_split.txt; ``crop_box``: each image
    cropped to its bounding box.

    ``archive`` None: the registered ``CUB_200_2011.tgz`` from data/, the mirror or its official URL (checksum).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if archive is None:
        archive = ensure_file(get("cub200").files[0])
    root = unpack(archive, paths.CACHE / "cub200")
    return read_cub(root, crop_box=crop_box)[split]
