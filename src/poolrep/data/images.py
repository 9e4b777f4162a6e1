"""Image files decoded on access: the paper data sets (Holidays, Oxford5K, CUB-200) never sit in memory whole.

Oxford5K at 1,024 px is about 12 GB of pixels and CUB-200 at 448 px about 7 GB; a feature extractor reads them a
batch at a time (``features.extract`` slices its input), so a sequence that decodes each file when indexed keeps
memory at one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .fetch import DataError


class LazyImages(Sequence):
    """uint8 RGB arrays of ``files``, decoded when indexed.

    ``size`` (int or (h, w)): every image squashed to it, and a slice is one ``n x h x w x 3`` array; else images
    keep their aspect (shrunk to ``max_side`` if larger) and a slice is a list. ``boxes[i]`` ((x1, y1, x2, y2) in
    pixels, or None) crops image i first; ``rotations[i]`` (degrees, counter-clockwise) turns it."""

    def __init__(
        self,
        files: Sequence[str | Path],
        size: int | tuple[int, int] | None = None,
        max_side: int | None = None,
        boxes: Sequence | None = None,
        rotations: Sequence | None = None,
        what: str = "image",
    ):
        self.files = [Path(f) for f in files]
        self.size = None if size is None else ((size, size) if isinstance(size, int) else tuple(size))
        self.max_side, self.what = max_side, what
        for name, v in (("boxes", boxes), ("rotations", rotations)):
            if v is not None and len(v) != len(self.files):
                raise ValueError(f"{name}: {len(v)} entries for {len(self.files)} files")
        self.boxes, self.rotations = boxes, rotations

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, i: int) -> np.ndarray:
        p = self.files[i]
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                box = self.boxes[i] if self.boxes is not None else None
                if box is not None:
                    x1, y1, x2, y2 = box
                    im = im.crop((int(np.floor(x1)), int(np.floor(y1)), int(np.ceil(x2)), int(np.ceil(y2))))
                angle = self.rotations[i] if self.rotations is not None else 0
                if angle and angle % 360:
                    im = im.rotate(angle, expand=True)
                if self.size is not None:
                    im = im.resize((self.size[1], self.size[0]), Image.BICUBIC)
                elif self.max_side and max(im.size) > self.max_side:
                    im.thumbnail((self.max_side, self.max_side), Image.BICUBIC)
                return np.asarray(im)
        except OSError as e:
            raise DataError(f"cannot decode {self.what} {p} ({e}); delete the unpacked folder and fetch again") from e

    def __getitem__(self, i):
        if isinstance(i, slice):
            items = [self._load(k) for k in range(*i.indices(len(self)))]
            if self.size is None:
                return items
            return np.stack(items) if items else np.empty((0, *self.size, 3), np.uint8)
        if isinstance(i, (list, np.ndarray)):
            return [self._load(int(k)) for k in i]
        k = int(i)
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(f"image {i} of {len(self)}")
        return self._load(k)
