"""Shared stages: class-balanced rows of the backbone cache (its on-demand build is tested in test_integrity.py)."""

import numpy as np

from poolrep import stages


def test_backbone_rows_balanced_and_bounded():
    labels = np.repeat(np.arange(3), 5)
    rows = stages.backbone_rows(labels, 2, seed=0)
    assert np.bincount(labels[rows]).tolist() == [2, 2, 2]
    assert np.array_equal(rows, stages.backbone_rows(labels, 2, seed=0))
    import pytest

    with pytest.raises(ValueError, match="holds 5 images per class, 6 asked for"):
        stages.backbone_rows(labels, 6, seed=0)
