"""Natural video: decode clips into frames (OpenCV), list the registered clips, and cut scenes.

OpenCV reads frame by frame until the stream ends, which also counts ``tree.avi`` correctly (imageio does not).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .fetch import DataError, ensure_file
from .registry import get

VIDEO_EXT = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def clips(name: str = "videos") -> list[Path]:
    """Paths of the registered clips of data set ``name`` in data/ (fetched if needed)."""
    return [ensure_file(f) for f in get(name).files]


def folder_clips(folder: str | Path) -> list[Path]:
    """Every video file in a folder (the ``paper`` profile's 'any folder of videos')."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"video folder {folder} does not exist")
    out = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXT)
    if not out:
        raise DataError(f"no video files ({', '.join(VIDEO_EXT)}) in {folder}")
    return out


def read_frames(
    path: str | Path,
    size: tuple[int, int] | None = None,
    gray: bool = False,
    max_frames: int | None = None,
    step: int = 1,
) -> np.ndarray:
    """Frames of a clip as uint8 ``T x H x W x 3`` RGB (or ``T x H x W`` grey).

    ``size=(width, height)`` resizes with area interpolation; ``step`` keeps every step-th frame.
    """
    import cv2

    path = Path(path)
    if not path.exists():
        raise DataError(f"video {path} not found")
    if step < 1:
        raise ValueError("step must be >= 1")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"OpenCV cannot open {path} (corrupt file or missing codec)")
    frames = []
    i = 0
    try:
        while max_frames is None or len(frames) < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % step == 0:
                if size is not None:
                    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY if gray else cv2.COLOR_BGR2RGB))
            i += 1
    finally:
        cap.release()
    if not frames:
        raise DataError(f"{path}: no frames could be decoded")
    return np.stack(frames)


CUT_SIZE = (32, 32)  # cuts and decorrelation gaps are measured on frames of this size (width, height)


def frame_differences(frames: np.ndarray) -> np.ndarray:
    """Mean absolute difference between consecutive frames, in [0, 255]; length T-1."""
    f = frames.astype(np.float32)
    return np.abs(np.diff(f, axis=0)).reshape(len(f) - 1, -1).mean(axis=1)


def cut_scenes(
    frames: np.ndarray, threshold: float, min_len: int = 2, max_len: int = 40, gap: int = 0
) -> list[tuple[int, int]]:
    """Scenes as half-open frame ranges ``[start, end)``.

    A cut falls wherever the mean absolute frame difference exceeds ``threshold`` (the paper's "detecting large
    amplitude changes between adjacent frames", Goroshin et al. Sec. 5). A shot longer than ``max_len`` is cut
    into segments of at most ``max_len`` frames (the paper's scenes have 2-40 frames) separated by ``gap`` frames
    that belong to no scene, so that the last frame of one segment is not a near-duplicate of the first frame of
    the next (our substitute for the natural cuts our clips lack; :func:`decorrelation_lag` chooses ``gap`` from
    the frames themselves). Pieces shorter than ``min_len`` are dropped.
    """
    if gap < 0 or max_len < 1 or min_len < 1:
        raise ValueError(f"need gap >= 0, max_len >= 1 and min_len >= 1, got {gap}, {max_len}, {min_len}")
    if len(frames) < 2:
        return []
    cuts = np.flatnonzero(frame_differences(frames) > threshold) + 1
    bounds = [0, *cuts.tolist(), len(frames)]
    scenes = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        for s in range(a, b, max_len + gap):
            e = min(s + max_len, b)
            if e - s >= min_len:
                scenes.append((s, e))
    return scenes


def decorrelation_lag(
    frames: np.ndarray, max_lag: int, fraction: float = 0.5, n_random: int = 2000, seed: int = 0
) -> int:
    """The smallest lag L (1..``max_lag``) at which frames L apart differ by at least ``fraction`` of what two
    random frames of the clip differ by (mean absolute pixel difference): frames further apart than that are, by
    the clip's own statistics, no near-duplicates. ``max_lag`` when no lag up to it gets there (a nearly static
    clip). Computed from the frames alone, never from a retrieval score."""
    f = np.asarray(frames, dtype=np.float32)
    T = len(f)
    if T < 2 or max_lag < 1:
        return max(1, min(max_lag, 1))
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, T, n_random), rng.integers(0, T, n_random)
    keep = a != b
    target = fraction * np.abs(f[a[keep]] - f[b[keep]]).mean()
    if target <= 0:  # every frame the same: no lag ever gets there
        return max_lag
    for lag in range(1, min(max_lag, T - 1) + 1):
        if np.abs(f[:-lag] - f[lag:]).mean() >= target:
            return lag
    return max_lag
