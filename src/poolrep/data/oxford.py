"""Oxford Buildings / Oxford5K (Philbin et al., CVPR 2007): 5,063 images, 55 queries (11 landmarks x 5).

Official layout: ``oxbuild_images.tgz`` unpacks into ``<name>.jpg`` files; ``gt_files_170407.tgz`` into
``<landmark>_<k>_{query,good,ok,junk}.txt``. A ``query`` file holds one line
``oxc1_<image name> x1 y1 x2 y2`` (the query image and its bounding box, in pixels); ``good``/``ok``/``junk``
list image names, one per line. Evaluation (``compute_ap.cpp``): positives = good + ok, junk ignored.

Query cropping: the standard protocol crops the query image to its box before describing it; we record the
choice in ``OxfordSet.crop_query`` (param ``oxford_crop_query``). The full query image stays in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from .fetch import DataError, ensure_file, safe_unpack
from .images import LazyImages
from .registry import get


@dataclass
class OxfordQuery:
    name: str  # e.g. all_souls_1
    image: str  # image name without .jpg
    bbox: tuple[float, float, float, float]  # x1, y1, x2, y2
    good: list[str]
    ok: list[str]
    junk: list[str]


@dataclass
class OxfordSet:
    images: LazyImages  # decoded on access
    names: list[str]
    queries: list[OxfordQuery]
    query_images: LazyImages  # cropped to the box when crop_query
    positives: list[list[int]]  # database indices of good + ok
    junk: list[list[int]]
    crop_query: bool
    source: str
    missing: list[str] = field(default_factory=list)


def _names(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def read_groundtruth(gt_dir: str | Path) -> list[OxfordQuery]:
    """All ``*_query.txt`` of a ground-truth folder, sorted by name, with their good/ok/junk lists."""
    gt_dir = Path(gt_dir)
    qfiles = sorted(gt_dir.rglob("*_query.txt"))
    if not qfiles:
        raise DataError(f"no *_query.txt in {gt_dir} (expected the contents of gt_files_170407.tgz)")
    out = []
    for qf in qfiles:
        stem = qf.name[: -len("_query.txt")]
        parts = qf.read_text().split()
        if len(parts) != 5:
            raise DataError(f"{qf}: expected 'oxc1_<image> x1 y1 x2 y2', got {' '.join(parts)!r}")
        img = parts[0][len("oxc1_") :] if parts[0].startswith("oxc1_") else parts[0]
        lists = {}
        for kind in ("good", "ok", "junk"):
            p = qf.with_name(f"{stem}_{kind}.txt")
            if not p.exists():
                raise DataError(f"{p} missing (every query needs good, ok and junk lists)")
            lists[kind] = _names(p)
        out.append(OxfordQuery(stem, img, tuple(float(v) for v in parts[1:]), **lists))
    return out


def prepare(root: str | Path | None = None) -> tuple[Path, Path]:
    """(image folder, ground-truth folder): under ``root`` if given, else the registry's archives unpacked once
    into cache/oxford5k/{images,gt}/ (each all or nothing: if the folder exists, it is complete)."""
    if root is not None:
        root = Path(root)
        img = root / "images" if (root / "images").is_dir() else root
        gt = root / "gt" if (root / "gt").is_dir() else root
        return img, gt
    dest = paths.CACHE / "oxford5k"
    files = {Path(f.relpath).name: f for f in get("oxford5k").files}
    for sub, key in (("images", "oxbuild_images"), ("gt", "gt_files")):
        d = dest / sub
        if not d.is_dir():
            f = next(v for k, v in files.items() if k.startswith(key))
            safe_unpack(ensure_file(f), d)
    return dest / "images", dest / "gt"


def load_oxford5k(root: str | Path | None = None, crop_query: bool = True, max_side: int | None = None) -> OxfordSet:
    img_dir, gt_dir = prepare(root)
    queries = read_groundtruth(gt_dir)
    files = {p.stem: p for p in img_dir.rglob("*.jpg")}
    if not files:
        raise DataError(f"no .jpg images under {img_dir}")
    names = sorted(files)
    index = {n: i for i, n in enumerate(names)}
    missing = sorted({n for q in queries for n in (q.image, *q.good, *q.ok) if n not in index})
    if missing:
        raise DataError(f"{len(missing)} ground-truth images are not among the images, e.g. {missing[:3]}")

    # decoded on access: Oxford at 1,024 px is about 12 GB of pixels
    images = LazyImages([files[n] for n in names], max_side=max_side, what="Oxford5K image")
    qimgs = LazyImages(
        [files[q.image] for q in queries],
        max_side=max_side,
        boxes=[q.bbox for q in queries] if crop_query else None,
        what="Oxford5K query image",
    )
    pos = [[index[n] for n in (*q.good, *q.ok)] for q in queries]
    junk = [[index[n] for n in q.junk if n in index] for q in queries]
    return OxfordSet(
        images,
        names,
        queries,
        qimgs,
        pos,
        junk,
        crop_query,
        f"Oxford5K from {img_dir} (queries {'cropped to their box' if crop_query else 'full image'})",
    )
