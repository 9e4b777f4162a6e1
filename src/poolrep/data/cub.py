"""CUB-200-2011 (Caltech-UCSD Birds-200-2011, Wah et al. 2011) in its official archive layout.

``CUB_200_2011.tgz`` unpacks to ``CUB_200_2011/`` holding ``images/<class folder>/<file>.jpg`` and the index
files (one record per line, ids 1-based):

- ``images.txt``: ``<image_id> <relative path under images/>``
- ``image_class_labels.txt``: ``<image_id> <class_id>``
- ``train_test_split.txt``: ``<image_id> <is_training_image>`` (1: train, 0: test; 5,994 / 5,794)
- ``classes.txt``: ``<class_id> <class name>``

We use whole images (no part annotations, no bounding boxes), as the cross-layer pooling paper's whole-image
setting does. The archive is unpacked once into ``cache/cub200/``; images are decoded lazily, batch by batch,
and resized on the fly (``CubSplit.images(size)``), so the 11,788 photos never sit in memory at full size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .. import paths
from .fetch import DataError, ensure_file, safe_unpack
from .registry import get

INDEX_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")
N_TRAIN, N_TEST = 5994, 5794


@dataclass
class CubSplit:
    paths: list[Path]
    labels: np.ndarray  # int64, 0-based class index
    classes: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, size: int | tuple[int, int]) -> "LazyImages":
        """A sequence of uint8 ``size x size x 3`` arrays (whole image resized, aspect not kept), decoded on access."""
        return LazyImages(self.paths, size)

    def subset(self, per_class: int | None, seed: int = 0) -> "CubSplit":
        if per_class is None:
            return self
        from .cifar import balanced_indices

        idx = balanced_indices(self.labels, per_class, seed)
        return CubSplit([self.paths[i] for i in idx], self.labels[idx], self.classes,
                        self.source + f" [{per_class}/class subset]")


class LazyImages(Sequence):
    """Decodes and resizes on indexing; a slice gives a uint8 array ``n x h x w x 3``."""

    def __init__(self, files: list[Path], size):
        self.files = list(files)
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, p: Path) -> np.ndarray:
        try:
            with Image.open(p) as im:
                im = im.convert("RGB").resize((self.size[1], self.size[0]), Image.BICUBIC)
                return np.asarray(im)
        except Exception as e:  # noqa: BLE001 - name the file in the error
            raise DataError(f"cannot decode CUB image {p} ({e})") from e

    def __getitem__(self, i):
        if isinstance(i, slice):
            files = self.files[i]
            return np.stack([self._load(p) for p in files]) if files else np.empty((0, *self.size, 3), np.uint8)
        return self._load(self.files[i])


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


def read_cub(folder: str | Path, check_files: bool = True) -> dict[str, CubSplit]:
    """Both splits of an unpacked CUB-200-2011 tree (``folder`` or ``folder/CUB_200_2011``)."""
    root = find_root(folder)
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
        out[name] = CubSplit(files, y, classes, f"CUB-200-2011 official split ({root})")
    return out


def unpack(archive: str | Path, dest: str | Path) -> Path:
    """Unpack ``CUB_200_2011.tgz`` into ``dest`` once, all or nothing (if ``dest`` exists, it is complete);
    returns the root."""
    return find_root(safe_unpack(archive, dest))


def load_cub200(split: str = "train", archive: str | Path | None = None) -> CubSplit:
    """CUB-200-2011 ``split`` ('train' or 'test') with the official train_test_split.txt.

    ``archive`` None: the registered ``CUB_200_2011.tgz`` from data/, the mirror or its official URL (checksum).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if archive is None:
        archive = ensure_file(get("cub200").files[0])
    root = unpack(archive, paths.CACHE / "cub200")
    return read_cub(root)[split]
