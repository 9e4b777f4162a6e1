"""A scene-retrieval set cut from video clips (the offline stand-in for an instance-retrieval benchmark).

Scenes are found on every frame of a clip at 32x32 (``video.CUT_SIZE``) with ``video.cut_scenes``: a cut where the
mean absolute difference of consecutive frames exceeds ``threshold``; shots longer than ``max_len * step`` frames
are split into segments separated by ``segment_gap`` frames that belong to no scene (``"auto"``: the clip's own
``video.decorrelation_lag``), pieces shorter than ``min_len * step`` dropped. Then every ``step``-th frame of a
scene, at the network's input size, is what the set holds:

- queries (``queries``): ``"middle"``, the middle sampled frame of each scene; ``"all"``, every sampled frame of a
  scene that has a relevant frame (below). The database is every sampled frame of every clip (the query included);
- relevant = the sampled frames of the query's scene more than ``gap`` sampled frames away from it;
- junk (ignored when scoring, as Oxford's junk images) = the query itself and every sampled frame of its clip within
  ``gap`` of it, whatever their scene, so near-duplicates of the query cannot decide its AP (``gap="auto"``: each
  clip's decorrelation lag in sampled frames, at least 1); and every other frame of the query's own camera shot
  (between two cuts) that is not relevant: the other segments, the gaps between them and the pieces too short to
  keep (one shot split into segments is one place: finding it is neither right nor wrong).

Scored with ``poolrep.metrics.retrieval.oxford_ap``. The queries of one scene, and the scenes of one shot, are not
independent: ``SceneSet.query_scene`` and ``SceneSet.query_shot`` name each query's scene and shot (global ids), so
intervals can resample shots, the set's independent items.

``load_scenes`` (slow-feature pooling's test and training frames) decodes whole clips cut the same way, every frame
kept with its scene, clip and camera shot (``Frames``), no query structure. Both cut a clip with one function,
:func:`cut_clip` (its cuts, its scenes and each scene's camera shot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .video import CUT_SIZE, cut_scenes, decorrelation_lag, frame_differences, read_frames


@dataclass
class ClipCut:
    """One clip cut into scenes (:func:`cut_clip`): ``scenes`` as ``(first, last + 1, shot)`` frame ranges with the
    camera shot (0-based, within the clip) each lies in, ``cuts`` the frames that start a new shot, ``gap`` the
    frames left out between two segments of a shot."""

    scenes: list[tuple[int, int, int]]
    cuts: np.ndarray
    gap: int

    @property
    def n_shots(self) -> int:
        return len(self.cuts) + 1


def cut_clip(frames: np.ndarray, threshold: float, min_len: int, max_len: int, segment_gap: int | str) -> ClipCut:
    """Cut one clip's (small) frames into scenes with :func:`poolrep.data.video.cut_scenes` and name each scene's
    camera shot (the frames between two cuts). ``segment_gap``: frames of no scene between two segments of a shot
    longer than ``max_len``; ``"auto"``: the clip's :func:`poolrep.data.video.decorrelation_lag` up to ``max_len``.
    The one scene cutter behind :func:`build_scene_set` and :func:`load_scenes`."""
    if not (segment_gap == "auto" or (isinstance(segment_gap, (int, np.integer)) and segment_gap >= 0)):
        raise ValueError(f"segment_gap must be 'auto' or an int >= 0, got {segment_gap!r}")
    g = decorrelation_lag(frames, max_len) if segment_gap == "auto" else int(segment_gap)
    cuts = np.flatnonzero(frame_differences(frames) > threshold) + 1 if len(frames) > 1 else np.zeros(0, int)
    scenes = [
        (a, b, int(np.searchsorted(cuts, a, side="right")))
        for a, b in cut_scenes(frames, threshold, min_len, max_len, g)
    ]
    return ClipCut(scenes, cuts, g)


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
    query_scene: list[int] = field(default_factory=list)  # the scene of each query
    query_shot: list[int] = field(default_factory=list)  # the camera shot (between two cuts) of each query, global
    junk_gaps: list[int] = field(default_factory=list)  # per clip: the junk window, in sampled frames


def build_scene_set(
    frames_per_clip: Sequence[np.ndarray],
    clip_names: Sequence[str],
    step: int,
    threshold: float,
    min_len: int,
    max_len: int,
    gap: int | str,
    source: str = "",
    segment_gap: int | str = 0,
    cut_frames: Sequence[np.ndarray] | None = None,
    queries: str = "middle",
) -> SceneSet:
    """The retrieval set from decoded frames: ``frames_per_clip`` holds every ``step``-th frame of each clip;
    ``cut_frames`` (default: the sampled frames themselves, with ``step`` 1) every frame, small, to find the cuts
    and gaps on. ``min_len``, ``max_len`` and ``gap`` count sampled frames; ``queries``: ``middle`` | ``all``."""
    if not (gap == "auto" or (isinstance(gap, int) and gap >= 0)) or step < 1:
        raise ValueError(f"gap must be 'auto' or an int >= 0 (got {gap!r}) and step >= 1 (got {step})")
    if not (segment_gap == "auto" or (isinstance(segment_gap, int) and segment_gap >= 0)):
        raise ValueError(f"segment_gap must be 'auto' or an int >= 0, got {segment_gap!r}")
    if queries not in ("middle", "all"):
        raise ValueError(f"queries must be 'middle' or 'all', got {queries!r}")
    if cut_frames is None:
        cut_frames, step_cut = frames_per_clip, 1
    else:
        step_cut = step
    frames, clip, fno, scene, seg_gaps, spans, junk_gaps = [], [], [], [], [], [], []
    qs, positives, junk, query_scene, query_shot = [], [], [], [], []
    offset, sid, shots_before = 0, 0, 0
    for ci, f in enumerate(frames_per_clip):
        t = len(f)
        small = cut_frames[ci]
        if -(-len(small) // step_cut) != t:
            raise ValueError(f"clip {ci}: {len(small)} frames to cut on do not give its {t} sampled frames")
        span = max_len * step_cut
        lag = decorrelation_lag(small, span) if "auto" in (segment_gap, gap) else 0
        sg = lag if segment_gap == "auto" else segment_gap
        g = max(1, -(-lag // step_cut)) if gap == "auto" else gap  # the junk window, in sampled frames
        seg_gaps.append(int(sg))
        junk_gaps.append(int(g))
        cut = cut_clip(small, threshold, min_len * step_cut, span, sg)
        sc = np.full(t, -1)
        spans.append([])
        found = []  # (first, last + 1) sampled frames and shot of each scene of this clip
        for a_raw, b_raw, shot in cut.scenes:
            a, b = -(-a_raw // step_cut), -(-b_raw // step_cut)  # the sampled frames inside [a_raw, b_raw)
            if b - a < min_len:
                continue
            unit = step if step_cut == 1 else 1  # frame numbers of the clip before sampling
            spans[-1].append((a_raw * unit, b_raw * unit))
            sc[a:b] = sid
            found.append((a, b, shot, sid))
            sid += 1
        bounds = [0, *cut.cuts.tolist(), len(small)]  # shot k = frames [bounds[k], bounds[k + 1]) before sampling
        for a, b, shot, s_id in found:
            lo, hi = -(-bounds[shot] // step_cut), min(t, -(-bounds[shot + 1] // step_cut))  # its sampled frames
            for q in [(a + b - 1) // 2] if queries == "middle" else range(a, b):
                pos = [i for i in range(a, b) if abs(i - q) > g]
                if pos:
                    qs.append(offset + q)
                    positives.append([offset + i for i in pos])
                    near = range(max(0, q - g), min(t, q + g + 1))
                    junk.append(sorted({offset + i for i in (*near, *range(lo, hi)) if i not in pos}))
                    query_scene.append(s_id)
                    query_shot.append(shots_before + shot)
        shots_before += len(bounds) - 1
        frames.append(f)
        clip.append(np.full(t, ci))
        fno.append(np.arange(t) * step)
        scene.append(sc)
        offset += t
    if not qs:
        raise ValueError("no scene has a relevant frame beyond the gap: lower gap/min_len or raise max_len")
    return SceneSet(
        np.concatenate(frames),
        np.concatenate(clip),
        np.concatenate(fno),
        np.concatenate(scene),
        seg_gaps,
        spans,
        qs,
        positives,
        junk,
        list(clip_names),
        source,
        query_scene=query_scene,
        query_shot=query_shot,
        junk_gaps=junk_gaps,
    )


def outside_scenes(spans: list[tuple[int, int]], n_frames: int) -> np.ndarray:
    """Frame numbers t (0..``n_frames``-2) such that neither t nor t+1 lies in any of ``spans``: consecutive
    pairs that share no frame with the scenes (training data for a model the scenes then test)."""
    inside = np.zeros(n_frames, bool)
    for a, b in spans:
        inside[a:b] = True
    return np.flatnonzero(~inside[:-1] & ~inside[1:])


def video_scene_set(
    paths: Sequence[str | Path],
    size: tuple[int, int],
    step: int,
    threshold: float,
    min_len: int,
    max_len: int,
    gap: int | str,
    max_frames: int | None = None,
    segment_gap: int | str = 0,
    queries: str = "middle",
) -> SceneSet:
    """Decode ``paths`` and build the set (see the module docstring). ``size`` = (width, height) of the frames the
    set holds; cuts and gaps are found on every frame at 32x32. ``max_frames``: per clip, after sampling."""
    per_clip = [read_frames(p, size=tuple(size), step=step, max_frames=max_frames) for p in paths]
    small = [read_frames(p, size=CUT_SIZE, max_frames=None if max_frames is None else max_frames * step) for p in paths]
    small = [s[: len(f) * step] for s, f in zip(small, per_clip)]
    names = [Path(p).name for p in paths]
    return build_scene_set(
        per_clip,
        names,
        step,
        threshold,
        min_len,
        max_len,
        gap,
        source=f"videos/ ({', '.join(names)}), every {step}th frame",
        segment_gap=segment_gap,
        cut_frames=small,
        queries=queries,
    )


@dataclass
class Frames:
    """Frames of several clips cut into scenes: ``images`` uint8 N x H x W x 3 (or N x H x W grey),
    ``scene`` (global scene id per frame), ``video`` (clip index per frame), ``names`` (clip names), ``shot``
    (global camera-shot id per frame: the frames between two cuts; a shot longer than ``scene_max`` holds several
    scenes, whose other frames are junk for a query of that shot, neither right nor wrong)."""

    images: np.ndarray
    scene: np.ndarray
    video: np.ndarray
    names: list[str]
    scenes: list[tuple[int, int]] = field(default_factory=list)  # global [start, end) per scene id
    segment_gaps: list[int] = field(default_factory=list)  # per clip: frames left out between two segments
    cuts: list[int] = field(default_factory=list)  # per clip: cuts found
    shot: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # global shot id per frame


def load_scenes(
    clips: list[Path],
    size: tuple[int, int],
    threshold: float,
    min_len: int = 2,
    max_len: int = 40,
    step: int = 1,
    max_frames: int | None = None,
    gray: bool = False,
    segment_gap: int | str = 0,
) -> Frames:
    """Decode ``clips`` at ``size`` (width, height) and cut each into scenes with
    :func:`poolrep.data.video.cut_scenes`: cuts where consecutive 32x32 frames differ by more than ``threshold``
    (measured at that size whatever ``size``), shots longer than ``max_len`` cut into segments separated by
    ``segment_gap`` frames of no scene (``"auto"``: the clip's :func:`poolrep.data.video.decorrelation_lag`, from
    its own frames). Frames outside every scene (gaps, pieces shorter than ``min_len``) are dropped."""
    imgs, scene, video, spans, gaps, cuts, shot = [], [], [], [], [], [], []
    n = n_shots = 0
    for vi, path in enumerate(clips):
        small = read_frames(path, size=CUT_SIZE, step=step, max_frames=max_frames)
        full = (
            small
            if (tuple(size) == tuple(CUT_SIZE) and not gray)
            else read_frames(path, size=size, gray=gray, step=step, max_frames=max_frames)
        )
        cut = cut_clip(small, threshold, min_len, max_len, segment_gap)
        gaps.append(cut.gap)
        cuts.append(len(cut.cuts))
        for a, b, s in cut.scenes:
            imgs.append(full[a:b])
            scene += [len(spans)] * (b - a)
            video += [vi] * (b - a)
            shot += [n_shots + s] * (b - a)
            spans.append((n, n + b - a))
            n += b - a
        n_shots += cut.n_shots
    if not imgs:
        raise ValueError(f"no scene of >= {min_len} frames in {[p.name for p in clips]}")
    return Frames(
        np.concatenate(imgs),
        np.asarray(scene),
        np.asarray(video),
        [p.name for p in clips],
        spans,
        gaps,
        cuts,
        np.asarray(shot),
    )
