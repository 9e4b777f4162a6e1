"""A scene-retrieval set cut from video clips (the offline stand-in for an instance-retrieval benchmark).

Scenes are found on every frame of a clip at 32x32 (``video.CUT_SIZE``) with ``video.cut_scenes``: a cut where the
mean absolute difference of consecutive frames exceeds ``threshold``; shots longer than ``max_len * step`` frames
are split into segments separated by ``segment_gap`` frames that belong to no scene (``"auto"``: the clip's own
``video.decorrelation_lag``), pieces shorter than ``min_len * step`` dropped. Then every ``step``-th frame of a
scene, at the network's input size, is what the set holds:

- query = the middle sampled frame of each scene; database = every sampled frame of every clip (the query included);
- relevant = the sampled frames of the query's scene more than ``gap`` sampled frames away from it;
- junk (ignored when scoring, as Oxford's junk) = the query itself and every sampled frame of its clip within
  ``gap`` of it, whatever their scene, so near-duplicates of the query cannot inflate AP.

Scored with ``poolrep.metrics.retrieval.oxford_ap``. Segments of one long shot are different "scenes" here; the gap
between them keeps their nearest frames apart, but they can still look alike (the set's nature, named where used).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .video import CUT_SIZE, cut_scenes, decorrelation_lag, read_frames


@dataclass
class SceneSet:
    frames: np.ndarray  # T x H x W x 3 uint8 (the sampled frames)
    clip: np.ndarray  # T: clip index
    frame_no: np.ndarray  # T: frame number in its clip (before sampling)
    scene: np.ndarray  # T: global scene id, -1 for frames in no scene
    segment_gaps: list[int]  # per clip: frames (before sampling) between two segments of one shot
    spans: list[list[tuple[int, int]]]  # per clip: each scene's [first, last + 1) frame numbers (before sampling)
    queries: list[int]
    positives: list[list[int]]
    junk: list[list[int]]
    clips: list[str]
    source: str


def build_scene_set(frames_per_clip: Sequence[np.ndarray], clip_names: Sequence[str], step: int, threshold: float,
                    min_len: int, max_len: int, gap: int, source: str = "", segment_gap: int | str = 0,
                    cut_frames: Sequence[np.ndarray] | None = None) -> SceneSet:
    """The retrieval set from decoded frames: ``frames_per_clip`` holds every ``step``-th frame of each clip;
    ``cut_frames`` (default: the sampled frames themselves, with ``step`` 1) every frame, small, to find the cuts
    and gaps on. ``min_len``, ``max_len`` and ``gap`` count sampled frames."""
    if gap < 0 or step < 1:
        raise ValueError("gap must be >= 0 and step >= 1")
    if not (segment_gap == "auto" or (isinstance(segment_gap, int) and segment_gap >= 0)):
        raise ValueError(f"segment_gap must be 'auto' or an int >= 0, got {segment_gap!r}")
    if cut_frames is None:
        cut_frames, step_cut = frames_per_clip, 1
    else:
        step_cut = step
    frames, clip, fno, scene, seg_gaps, spans = [], [], [], [], [], []
    queries, positives, junk = [], [], []
    offset, sid = 0, 0
    for ci, f in enumerate(frames_per_clip):
        t = len(f)
        small = cut_frames[ci]
        if -(-len(small) // step_cut) != t:
            raise ValueError(f"clip {ci}: {len(small)} frames to cut on do not give its {t} sampled frames")
        span = max_len * step_cut
        sg = decorrelation_lag(small, span) if segment_gap == "auto" else segment_gap
        seg_gaps.append(int(sg))
        sc = np.full(t, -1)
        spans.append([])
        for a_raw, b_raw in cut_scenes(small, threshold, min_len * step_cut, span, sg):
            a, b = -(-a_raw // step_cut), -(-b_raw // step_cut)  # the sampled frames inside [a_raw, b_raw)
            if b - a < min_len:
                continue
            unit = step if step_cut == 1 else 1  # frame numbers of the clip before sampling
            spans[-1].append((a_raw * unit, b_raw * unit))
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
                    seg_gaps, spans, queries, positives, junk, list(clip_names), source)


def outside_scenes(spans: list[tuple[int, int]], n_frames: int) -> np.ndarray:
    """Frame numbers t (0..``n_frames``-2) such that neither t nor t+1 lies in any of ``spans``: consecutive
    pairs that share no frame with the scenes (training data for a model the scenes then test)."""
    inside = np.zeros(n_frames, bool)
    for a, b in spans:
        inside[a:b] = True
    return np.flatnonzero(~inside[:-1] & ~inside[1:])


def video_scene_set(paths: Sequence[str | Path], size: tuple[int, int], step: int, threshold: float, min_len: int,
                    max_len: int, gap: int, max_frames: int | None = None, segment_gap: int | str = 0) -> SceneSet:
    """Decode ``paths`` and build the set (see the module docstring). ``size`` = (width, height) of the frames the
    set holds; cuts and gaps are found on every frame at 32x32. ``max_frames``: per clip, after sampling."""
    per_clip = [read_frames(p, size=tuple(size), step=step, max_frames=max_frames) for p in paths]
    small = [read_frames(p, size=CUT_SIZE, max_frames=None if max_frames is None else max_frames * step)
             for p in paths]
    small = [s[: len(f) * step] for s, f in zip(small, per_clip)]
    names = [Path(p).name for p in paths]
    return build_scene_set(per_clip, names, step, threshold, min_len, max_len, gap,
                           source=f"videos/ ({', '.join(names)}), every {step}th frame", segment_gap=segment_gap,
                           cut_frames=small)
