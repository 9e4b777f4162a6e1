"""CIFAR-10 in its two layouts, decoded once and cached as ``cache/<name>.npz``.

- ``official``: ``cifar-10-python.tar.gz`` (pickled ``data_batch_1..5`` and ``test_batch``, rows of 3072 bytes
  in CHW order).
- ``folder``: an image-folder tree ``{train,test}/<class>/*.jpg|png``, either as a directory or inside a tar
  archive (the mirror's ``cifar10-jpeg.tar.gz``). Classes are the sorted folder names, which for CIFAR-10 is
  the official label order (airplane ... truck). Files are read in sorted order, so indices are stable.

``load_cifar10(split)`` picks the official archive when present (data/ or mirror) and the JPEG tree otherwise,
and says which in ``Split.source``.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .. import paths
from ..io import save_npz
from .fetch import DataError, ensure_file, verify
from .registry import File, get

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMG_EXT = (".jpg", ".jpeg", ".png")


# Images in the full CIFAR-10 splits (what a subset is compared with to say "reduced")
FULL_SIZE = {"train": 50000, "test": 10000}


@dataclass
class Split:
    images: np.ndarray  # uint8, N x 32 x 32 x 3 (HWC, RGB)
    labels: np.ndarray  # int64, N
    classes: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, per_class: int | None, seed: int = 0) -> Split:
        """A class-balanced random subset with ``per_class`` images of each class (None: all)."""
        if per_class is None:
            return self
        idx = balanced_indices(self.labels, per_class, seed)
        return Split(self.images[idx], self.labels[idx], self.classes, self.source + f" [{per_class}/class subset]")

    def tensors(self):
        """(float images N x 3 x H x W in [0, 1], int64 labels) as torch tensors."""
        import torch

        x = torch.from_numpy(self.images).permute(0, 3, 1, 2).float().div_(255)
        return x, torch.from_numpy(self.labels)


def balanced_indices(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if per_class > len(idx):
            raise ValueError(f"asked for {per_class} images of class {c}, only {len(idx)} exist")
        out.append(np.sort(rng.choice(idx, per_class, replace=False)))
    return np.concatenate(out)


def read_official(archive: str | Path, expected: File | None = None) -> dict[str, Split]:
    """Decode ``cifar-10-python.tar.gz``; raises DataError naming the archive if it is unreadable.

    Its members are pickles (unpickling runs code), so the archive is first checked against the registry's
    official CIFAR-10 checksum, or against ``expected`` (tests' fixture archives); a mismatch, or an ``expected``
    without a checksum, is a DataError before anything is unpickled."""
    archive = Path(archive)
    want = expected or get("cifar10").files[0]
    if not (want.sha256 or want.md5):
        raise DataError(f"{archive}: no checksum to verify it against ({want.relpath}); refusing to unpickle it")
    try:
        verify(archive, want)
    except OSError as e:
        raise DataError(f"{archive}: cannot read it ({e})") from e
    batches: dict[str, dict] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar.getmembers():
                base = Path(m.name).name
                if base.startswith("data_batch_") or base in ("test_batch", "batches.meta"):
                    batches[base] = pickle.load(tar.extractfile(m), encoding="bytes")
    except (tarfile.TarError, EOFError, OSError, pickle.UnpicklingError) as e:
        raise DataError(f"{archive}: not a readable CIFAR-10 python archive ({e}); delete it and fetch again") from e
    need = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in need if n not in batches]
    if missing:
        raise DataError(f"{archive}: missing {', '.join(missing)}; not the official cifar-10-python.tar.gz")
    classes = CLASSES
    if "batches.meta" in batches:
        classes = tuple(n.decode() for n in batches["batches.meta"][b"label_names"])

    def to_split(names):
        x = np.concatenate([batches[n][b"data"] for n in names]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        y = np.concatenate([np.asarray(batches[n][b"labels"]) for n in names]).astype(np.int64)
        return Split(np.ascontiguousarray(x, dtype=np.uint8), y, classes, f"official {archive.name}")

    return {"train": to_split(need[:5]), "test": to_split(["test_batch"])}


def read_folder(root: str | Path) -> dict[str, Split]:
    """Decode an image-folder tree ``{train,test}/<class>/*`` from a directory or a tar archive."""
    root = Path(root)
    entries: dict[str, list[tuple[str, str, object]]] = {"train": [], "test": []}
    if root.is_dir():
        for p in root.rglob("*"):
            if p.suffix.lower() in IMG_EXT:
                rel = p.relative_to(root).parts
                _add_entry(entries, rel, p)
        opener = lambda ref: open(ref, "rb")  # noqa: E731
        tar = None
    else:
        try:
            tar = tarfile.open(root, "r:*")
            members = tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(f"{root}: not a readable image-folder archive ({e}); delete it and fetch again") from e
        for m in members:
            if m.isfile() and Path(m.name).suffix.lower() in IMG_EXT:
                _add_entry(entries, Path(m.name).parts, m)
        opener = tar.extractfile
    out = {}
    try:
        for split, items in entries.items():
            if not items:
                raise DataError(f"{root}: no images under {split}/<class>/; expected {{train,test}}/<class>/*.jpg")
            items.sort(key=lambda t: (t[0], t[1]))
            classes = tuple(sorted({c for c, _, _ in items}))
            cidx = {c: i for i, c in enumerate(classes)}
            x = np.empty((len(items), 32, 32, 3), np.uint8)
            y = np.empty(len(items), np.int64)
            for i, (c, name, ref) in enumerate(tqdm(items, desc=f"decode {root.name}:{split}", leave=False)):
                try:
                    with opener(ref) as fh:
                        img = Image.open(io.BytesIO(fh.read())).convert("RGB")
                except Exception as e:
                    raise DataError(f"{root}: cannot decode {split}/{c}/{name} ({e})") from e
                if img.size != (32, 32):
                    raise DataError(f"{root}: {split}/{c}/{name} is {img.size}, expected 32x32")
                x[i] = np.asarray(img)
                y[i] = cidx[c]
            out[split] = Split(x, y, classes, f"image folder {root.name}")
    finally:
        if tar is not None:
            tar.close()
    if out["train"].classes != out["test"].classes:
        raise DataError(f"{root}: train and test have different class folders")
    return out


def _add_entry(entries, parts, ref) -> None:
    # accept an optional top folder: [top/]{train,test}/<class>/<file>
    for i, p in enumerate(parts):
        if p in ("train", "test") and len(parts) - i == 3:
            entries[p].append((parts[i + 1], parts[i + 2], ref))
            return


CACHE_FILE = "cifar10.npz"


def _cached(layout: str, decode) -> dict[str, Split]:
    """Decoded splits from ``cache/cifar10.npz`` if it was made from the same layout, else decode and cache."""
    cache = paths.CACHE / CACHE_FILE
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        if str(z["layout"]) == layout:
            classes = tuple(str(c) for c in z["classes"])
            src = str(z["source"])
            return {s: Split(z[f"{s}_x"], z[f"{s}_y"], classes, src) for s in ("train", "test")}
    splits = decode()
    save_npz(
        cache,
        layout=np.array(layout),
        classes=np.array(splits["train"].classes),
        source=np.array(splits["train"].source),
        **{f"{s}_{k}": getattr(v, a) for s, v in splits.items() for k, a in (("x", "images"), ("y", "labels"))},
    )
    return splits


def _jpeg_source(splits: dict[str, Split]) -> dict[str, Split]:
    for s in splits.values():
        s.source = "CIFAR-10 JPEG re-encoding (mirror cifar10-jpeg.tar.gz; pixels differ slightly from official)"
    return splits


def load_cifar10(split: str = "train", layout: str = "auto") -> Split:
    """CIFAR-10 ``split`` ('train' or 'test'). ``layout``: 'official', 'folder' (the JPEG tree) or 'auto': the
    official pickles when a copy is at hand or none of the JPEG tree is (then downloaded), else the JPEG tree
    (:func:`poolrep.data.manifest.cifar10_dataset`)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if layout == "auto":  # the choice the pipeline's data stage records (manifests/cifar10.json)
        from .manifest import cifar10_dataset

        layout = "official" if cifar10_dataset() == "cifar10" else "folder"
    if layout == "official":
        path = ensure_file(get("cifar10").files[0])
        splits = _cached("official", lambda: read_official(path))
    elif layout == "folder":
        path = ensure_file(get("cifar10-jpeg").files[0])
        splits = _cached("folder", lambda: _jpeg_source(read_folder(path)))
    else:
        raise ValueError(f"layout must be 'auto', 'official' or 'folder', not {layout!r}")
    return splits[split]
