"""A scene-retrieval set cut from video clips (the offline stand-in for an instance-retrieval benchmark).

Every clip is decoded with ``poolrep.data.video.read_frames`` (every ``step``-th frame, squashed to ``size``) and
cut into scenes with ``video.cut_scenes`` (a cut where the mean absolute frame difference exceeds ``threshold``;
scenes longer than ``max_len`` sampled frames are split into chunks, shorter than ``min_len`` dropped). Then:

- query = the middle frame of each scene; database = every sampled frame of every clip (the query included);
- relevant = the frames of the query's scene more than ``gap`` sampled frames away from it;
- junk (ignored when scoring, as Oxford's junk) = the query itself and every frame of its clip within ``gap``
  of it, whatever their scene, so near-duplicates of the query cannot inflate AP.

Scored with ``poolrep.metrics.retrieval.oxford_ap``. Caveat, by construction: consecutive chunks of one long shot
are different "scenes" here, although they can look alike, which makes this set harder than its name suggests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .video import cut_scenes, read_frames


@dataclass
class SceneSet:
    frames: np.ndarray  # T x H x W x 3 uint8
    clip: np.ndarray  # T: clip index
    frame_no: np.ndarray  # T: frame number in its clip (before sampling)
    scene: np.ndarray  # T: global scene id, -1 for frames in no scene
    queries: list[int]
    positives: list[list[int]]
    junk: list[list[int]]
    clips: list[str]
    source: str


def build_scene_set(frames_per_clip: Sequence[np.ndarray], clip_names: Sequence[str], step: int, threshold: float,
                    min_len: int, max_len: int, gap: int, source: str = "") -> SceneSet:
    """The retrieval set from already decoded (sampled) frames, one array per clip."""
    if gap < 0:
        raise ValueError("gap must be >= 0")
    frames, clip, fno, scene = [], [], [], []
    queries, positives, junk = [], [], []
    offset, sid = 0, 0
    for ci, f in enumerate(frames_per_clip):
        t = len(f)
        sc = np.full(t, -1)
        for a, b in cut_scenes(f, threshold, min_len, max_len):
            sc[a:b] = sid
            q = (a + b - 1) // 2
            pos = [offset + i for i in range(a, b) if abs(i - q) > gap]
            if pos:
                queries.append(offset + q)
                positives.append(pos)
                junk.append([offset + i for i in range(max(0, q - gap), min(t, q + gap + 1))])
            sid += 1
        frames.append(f)
        clip.append(np.full(t, ci))
        fno.append(np.arange(t) * step)
        scene.append(sc)
        offset += t
    if not queries:
        raise ValueError("no scene has a relevant frame beyond the gap: lower gap/min_len or raise max_len")
    return SceneSet(np.concatenate(frames), np.concatenate(clip), np.concatenate(fno), np.concatenate(scene),
                    queries, positives, junk, list(clip_names), source)


def video_scene_set(paths: Sequence[str | Path], size: tuple[int, int], step: int, threshold: float, min_len: int,
                    max_len: int, gap: int, max_frames: int | None = None) -> SceneSet:
    """Decode ``paths`` and build the set (see the module docstring). ``size`` = (width, height)."""
    per_clip = [read_frames(p, size=tuple(size), step=step, max_frames=max_frames) for p in paths]
    names = [Path(p).name for p in paths]
    return build_scene_set(per_clip, names, step, threshold, min_len, max_len, gap,
                           source=f"mirror videos/ ({', '.join(names)}), every {step}th frame")
