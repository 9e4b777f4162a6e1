"""The one scene cutter (``poolrep.data.scenes.cut_clip``) behind the pyramid's scene set and slow-feature pooling's
frames: scenes, camera shots and segment gaps on a synthetic clip whose cuts and shots are known."""

import numpy as np
import pytest

from poolrep.data.scenes import cut_clip


def _clip():
    rng = np.random.default_rng(3)
    shot = [np.repeat(rng.integers(0, 255, (1, 6, 6, 3), dtype=np.uint8), n, axis=0) for n in (25, 3, 9)]
    return np.concatenate(shot)  # shots: frames [0, 25), [25, 28), [28, 37)


def test_cut_clip_names_each_scene_its_shot_and_leaves_gaps():
    c = cut_clip(_clip(), threshold=50, min_len=2, max_len=10, segment_gap=2)
    assert c.cuts.tolist() == [25, 28] and c.n_shots == 3 and c.gap == 2
    # shot 0 split into segments of 10 every 12 frames: [0, 10), [12, 22), [24, 25) dropped (1 frame < min_len)
    assert c.scenes == [(0, 10, 0), (12, 22, 0), (25, 28, 1), (28, 37, 2)]


def test_cut_clip_auto_gap_and_bad_gap():
    frames = _clip()
    c = cut_clip(frames, threshold=50, min_len=2, max_len=10, segment_gap="auto")
    assert 1 <= c.gap <= 10
    assert all(b - a >= 2 and b - a <= 10 for a, b, _ in c.scenes)
    with pytest.raises(ValueError, match="segment_gap"):
        cut_clip(frames, 50, 2, 10, segment_gap=-1)
