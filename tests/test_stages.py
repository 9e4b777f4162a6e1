"""Shared stages: the backbone cache is read when present and built on demand when missing (fresh checkouts)."""

import numpy as np

from poolrep import paths, stages


def test_backbone_features_built_on_demand(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path)
    calls = []

    def fake_backbone(profile=None):
        calls.append(profile)
        np.savez(tmp_path / stages.BACKBONE_FILE, train_maps=np.ones((2, 3, 1, 1), np.float16),
                 train_labels=np.array([0, 1]))

    monkeypatch.setattr(stages, "backbone", fake_backbone)
    f = stages.load_backbone_features()
    assert calls == [None] and f["train_maps"].shape == (2, 3, 1, 1)
    assert stages.load_backbone_features()["train_labels"].tolist() == [0, 1]
    assert calls == [None]  # second call reads the cache


def test_backbone_rows_balanced_and_bounded():
    labels = np.repeat(np.arange(3), 5)
    rows = stages.backbone_rows(labels, 2, seed=0)
    assert np.bincount(labels[rows]).tolist() == [2, 2, 2]
    assert np.array_equal(rows, stages.backbone_rows(labels, 2, seed=0))
    import pytest

    with pytest.raises(ValueError, match="holds 5 images per class, 6 asked for"):
        stages.backbone_rows(labels, 6, seed=0)
