"""Patch pairs from consecutive video frames (auto-pooling's training data): a patch at a random location of
frame t and the patch at the same location of frame t+1.

Pairs that straddle a scene cut (mean absolute frame difference above ``cut_threshold``) are never drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .video import frame_differences, read_frames


@dataclass
class Pairs:
    a: np.ndarray  # uint8 N x p x p [x 3]: patch in frame t
    b: np.ndarray  # same location in frame t+1
    clip: np.ndarray  # clip index per pair
    names: list[str]

    def __len__(self) -> int:
        return len(self.a)

    def split(self, n_first: int) -> tuple[Pairs, Pairs]:
        return (
            Pairs(self.a[:n_first], self.b[:n_first], self.clip[:n_first], self.names),
            Pairs(self.a[n_first:], self.b[n_first:], self.clip[n_first:], self.names),
        )


def load_clips(
    clips: list[Path], scale: float = 1.0, gray: bool = False, max_frames: int | None = None, step: int = 1
) -> list[np.ndarray]:
    """Decode each clip (resized by ``scale``) into a uint8 frame array."""
    import cv2

    if scale <= 0:
        raise ValueError("scale must be > 0")
    out = []
    for p in clips:
        cap = cv2.VideoCapture(str(p))
        w, h = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
        cap.release()
        size = None if scale == 1.0 or w == 0 else (max(1, round(w * scale)), max(1, round(h * scale)))
        out.append(read_frames(p, size=size, gray=gray, max_frames=max_frames, step=step))
    return out


def sample_pairs(
    frames: list[np.ndarray],
    n: int,
    patch: int,
    seed: int = 0,
    cut_threshold: float = 40.0,
    names: list[str] | None = None,
    span: tuple[float, float] = (0.0, 1.0),
) -> Pairs:
    """``n`` pairs of ``patch x patch`` patches, drawn evenly over clips (each clip a ``T x H x W [x 3]`` array),
    at uniformly random frame t (t, t+1 not across a cut, both inside the clip's time ``span``, as fractions of
    its length: e.g. training pairs from (0, 0.75) and held-out pairs from (0.8, 1)) and location."""
    if n < 1:
        raise ValueError("n must be >= 1")
    if not 0 <= span[0] < span[1] <= 1:
        raise ValueError(f"span must be 0 <= start < end <= 1, got {span}")
    rng = np.random.default_rng(seed)
    valid = usable_frames(frames, patch, cut_threshold, span)
    usable = [k for k, v in enumerate(valid) if len(v)]
    if not usable:
        raise ValueError("no pair of consecutive frames without a cut in any clip")
    clip = np.array([usable[i % len(usable)] for i in range(n)])
    rng.shuffle(clip)
    a, b = [], []
    for k in clip:
        f = frames[k]
        t = rng.choice(valid[k])
        y = rng.integers(0, f.shape[1] - patch + 1)
        x = rng.integers(0, f.shape[2] - patch + 1)
        a.append(f[t, y : y + patch, x : x + patch])
        b.append(f[t + 1, y : y + patch, x : x + patch])
    return Pairs(np.stack(a), np.stack(b), clip, names or [f"clip{k}" for k in range(len(frames))])


def cut_free(frames: list[np.ndarray], patch: int, cut_threshold: float) -> list[np.ndarray]:
    """Per clip, the frames ``t`` whose pair ``(t, t+1)`` does not straddle a cut (mean absolute difference at most
    ``cut_threshold``), after checking each clip's shape against the patch. The pass over every frame is the costly
    part: :meth:`PairStream.respan` reuses it for another time span."""
    out = []
    for k, f in enumerate(frames):
        if f.ndim not in (3, 4):
            raise ValueError(f"clip {k}: expected T x H x W [x 3] frames, got shape {f.shape}")
        if f.shape[1] < patch or f.shape[2] < patch:
            raise ValueError(f"clip {k}: frames {f.shape[1]}x{f.shape[2]} smaller than the patch {patch}")
        out.append(np.flatnonzero(frame_differences(f) <= cut_threshold) if len(f) > 1 else np.array([], int))
    return out


def in_span(ok: list[np.ndarray], lengths: list[int], span: tuple[float, float]) -> list[np.ndarray]:
    """Per clip, the cut-free ``t`` (``ok``) whose pair ``(t, t+1)`` lies inside the clip's time ``span`` (fractions
    of its length ``lengths``)."""
    if not 0 <= span[0] < span[1] <= 1:
        raise ValueError(f"span must be 0 <= start < end <= 1, got {span}")
    out = []
    for o, n in zip(ok, lengths):
        lo, hi = int(np.floor(span[0] * n)), int(np.floor(span[1] * n))
        out.append(o[(o >= lo) & (o + 1 < hi)])
    return out


def usable_frames(
    frames: list[np.ndarray], patch: int, cut_threshold: float, span: tuple[float, float] = (0.0, 1.0)
) -> list[np.ndarray]:
    """Per clip, the frames ``t`` whose pair ``(t, t+1)`` lies inside the clip's time ``span`` (fractions of its
    length) and does not straddle a cut (mean absolute difference above ``cut_threshold``)."""
    if not 0 <= span[0] < span[1] <= 1:
        raise ValueError(f"span must be 0 <= start < end <= 1, got {span}")
    return in_span(cut_free(frames, patch, cut_threshold), [len(f) for f in frames], span)


class PairStream:
    """Fresh pairs for every batch, never stored: each epoch draws ``n_pairs`` distinct (clip, t, y, x) without
    replacement, evenly over the clips, from every usable frame of each clip's time ``span`` (all of them, not a
    fixed sample), and yields them ``batch`` at a time. No pair repeats within an epoch; another epoch draws anew
    (auto-pooling's issue 31: P trained on 1,500 stored pairs memorised them).

    ``frames``: per clip a ``T x H x W [x 3]`` uint8 array; ``span``: e.g. ``(0, 0.8)`` for training, so that no
    frame of a held-out span ``(0.8, 1)`` is ever drawn."""

    def __init__(
        self,
        frames: list[np.ndarray],
        patch: int,
        cut_threshold: float = 40.0,
        span: tuple[float, float] = (0.0, 1.0),
        names: list[str] | None = None,
        seed: int = 0,
    ):
        if not 0 <= span[0] < span[1] <= 1:
            raise ValueError(f"span must be 0 <= start < end <= 1, got {span}")
        self.frames, self.patch, self.seed = frames, patch, seed
        self.names = names or [f"clip{k}" for k in range(len(frames))]
        self._ok = cut_free(frames, patch, cut_threshold)
        self._set_span(span)

    def _set_span(self, span: tuple[float, float]) -> None:
        self.span = span
        self.valid = in_span(self._ok, [len(f) for f in self.frames], span)
        self.clips = [k for k, v in enumerate(self.valid) if len(v)]
        if not self.clips:
            raise ValueError("no pair of consecutive frames without a cut in any clip's span")
        # per clip: the number of (t, y, x) to draw from
        self.places = {
            k: (len(self.valid[k]), self.frames[k].shape[1] - self.patch + 1, self.frames[k].shape[2] - self.patch + 1)
            for k in self.clips
        }

    def reseed(self, seed: int) -> PairStream:
        """The same frames and usable places, another seed (no second pass over the frames to find the cuts)."""
        return self.respan(self.span, seed)

    def respan(self, span: tuple[float, float], seed: int) -> PairStream:
        """The same frames and cuts, another time ``span`` and seed (e.g. the held-out span beside the training
        one), without a second pass over the frames."""
        import copy

        out = copy.copy(self)
        out.seed = seed
        out._set_span(span)
        return out

    def capacity(self) -> int:
        """How many distinct pairs the span holds (an epoch can draw at most this many)."""
        return int(sum(np.prod(v) for v in self.places.values()))

    def draw(self, n_pairs: int, epoch: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The epoch's ``(clip, t, y, x)``, in the order they are served: distinct, evenly over the clips."""
        if n_pairs < 1:
            raise ValueError("n_pairs must be >= 1")
        rng = np.random.default_rng([self.seed, epoch])
        per = np.bincount(rng.permutation(n_pairs) % len(self.clips), minlength=len(self.clips))
        parts = []
        for k, m in zip(self.clips, per):
            nt, ny, nx = self.places[k]
            if m > nt * ny * nx:
                raise ValueError(f"clip {self.names[k]}: {m} pairs asked, its span holds only {nt * ny * nx}")
            flat = rng.choice(nt * ny * nx, m, replace=False)
            it, iy, ix = np.unravel_index(flat, (nt, ny, nx))
            parts.append(np.stack([np.full(m, k), self.valid[k][it], iy, ix], 1))
        idx = np.concatenate(parts)[rng.permutation(n_pairs)]
        return idx[:, 0], idx[:, 1], idx[:, 2], idx[:, 3]

    def pairs(self, clip: np.ndarray, t: np.ndarray, y: np.ndarray, x: np.ndarray) -> Pairs:
        s = self.patch
        a = np.stack([self.frames[k][i, r : r + s, c : c + s] for k, i, r, c in zip(clip, t, y, x)])
        b = np.stack([self.frames[k][i + 1, r : r + s, c : c + s] for k, i, r, c in zip(clip, t, y, x)])
        return Pairs(a, b, np.asarray(clip), self.names)

    def batches(self, n_pairs: int, batch: int, epoch: int = 0):
        """The epoch's pairs, ``batch`` at a time (the last batch may be short)."""
        clip, t, y, x = self.draw(n_pairs, epoch)
        for s in range(0, n_pairs, batch):
            yield self.pairs(clip[s : s + batch], t[s : s + batch], y[s : s + batch], x[s : s + batch])
