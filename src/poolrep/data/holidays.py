"""INRIA Holidays (Jegou, Douze, Schmid, ECCV 2008): 1,491 holiday photos in 500 groups of one scene each.

Official layout: ``jpg1.tar.gz`` and ``jpg2.tar.gz`` unpack into ``jpg/NNNNNN.jpg``; ``eval_holidays.tgz`` holds
``holidays_images.dat`` (one image name per line) and ``holidays_map.py``. Ground truth as ``holidays_map.py``
builds it: images are read in file order; an image whose number is a multiple of 100 (``100000.jpg``) starts a
new group and is its query; the following images until the next query are its relevant images. So 500 queries,
991 relevant images, and each query is excluded from its own result list when scoring
(``poolrep.metrics.retrieval.holidays_ap``).

Two releases: ``original`` (images as the camera stored them; some are rotated by 90 degrees) and ``rotated``
(the same images turned upright by hand, which the neural-codes literature uses). The rotated release has no
official archive we can name with certainty: put its images, same names, in ``holidays/jpg_rotated/`` (or pass
``root``); ``rotations=`` can instead turn the originals by a given angle per image name.
"""

from __future__ import annotations

from pathlib import Path

from .. import paths
from .fetch import DataError, ensure_file, safe_unpack
from .images import LazyImages
from .pairs import ImageSet
from .registry import get

VARIANTS = ("original", "rotated")


def image_number(name: str) -> int:
    stem = Path(name).stem
    if not stem.isdigit():
        raise DataError(f"Holidays image name {name!r} is not NNNNNN.jpg")
    return int(stem)


def groundtruth(names: list[str]) -> list[list[int]]:
    """Groups as indices into ``names`` (in the order given: holidays_images.dat order); first = the query."""
    groups: list[list[int]] = []
    for i, n in enumerate(names):
        if image_number(n) % 100 == 0:
            groups.append([i])
        elif not groups:
            raise DataError(f"Holidays list starts with {n}, which is not a query (NNNN00.jpg)")
        else:
            groups[-1].append(i)
    return groups


def read_image_list(path: str | Path) -> list[str]:
    """``holidays_images.dat``: one image name per line (blank lines ignored)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} not found (it comes in eval_holidays.tgz)")
    names = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    if not names:
        raise DataError(f"{path} lists no images")
    return names


def prepare(root: str | Path | None = None) -> Path:
    """Folder holding ``jpg/`` and ``holidays_images.dat``: ``root`` if given, else the registry's archives
    (fetched into data/holidays/) unpacked once into cache/holidays/ (all three or nothing: if the folder
    exists, it is complete)."""
    if root is not None:
        return Path(root)
    dest = paths.CACHE / "holidays"
    if not dest.is_dir():
        safe_unpack([ensure_file(f) for f in get("holidays").files], dest)
    return dest


def load_holidays(
    root: str | Path | None = None,
    variant: str = "original",
    max_side: int | None = None,
    rotations: dict[str, int] | None = None,
    limit: int | None = None,
) -> ImageSet:
    """Holidays as an ``ImageSet`` (images uint8 RGB, names, groups with the query first).

    ``limit``: keep the first ``limit`` groups (for quick runs). ``max_side``: shrink larger images. The images
    are a :class:`~poolrep.data.images.LazyImages`: decoded when indexed, never all in memory.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown Holidays variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    base = prepare(root)
    dat = next(iter(sorted(base.rglob("holidays_images.dat"))), None)
    if dat is not None:
        names = read_image_list(dat)
    else:  # the listing is the sorted file names of jpg/ (holidays_images.dat is exactly that)
        names = sorted(p.name for p in (base / "jpg").glob("*.jpg"))
        if not names:
            raise DataError(f"no holidays_images.dat and no jpg/*.jpg under {base}")
    groups = groundtruth(names)
    if limit is not None:
        groups = groups[:limit]
        keep = [i for g in groups for i in g]
        names = [names[i] for i in keep]
        groups = groundtruth(names)
    folder = base / ("jpg_rotated" if variant == "rotated" and rotations is None else "jpg")
    if not folder.is_dir():
        raise DataError(
            f"Holidays {variant}: folder {folder} missing"
            + (" (put the upright-rotated release there, same file names)" if variant == "rotated" else "")
        )
    files = [folder / n for n in names]
    missing = [p for p in files if not p.exists()]
    if missing:
        raise DataError(f"Holidays image {missing[0]} missing (listed in the ground truth; {len(missing)} missing)")
    turns = [rotations.get(n, 0) for n in names] if variant == "rotated" and rotations is not None else None
    images = LazyImages(files, max_side=max_side, rotations=turns, what="Holidays image")  # decoded on access
    src = (
        f"INRIA Holidays ({variant}) from {base}"
        if root is not None
        else f"INRIA Holidays ({variant}), data/holidays/ -> {base}"
    )
    return ImageSet(images, names, groups, src)
