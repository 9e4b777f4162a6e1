"""The zoo's adapters and evaluation helpers (the operators themselves are tested in their papers' files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poolrep.papers import zoo
from poolrep.pooling.crosslayer import CrossLayerPool
from poolrep.pooling.global_pool import GlobalAvgPool


def test_shared_autopool_equals_a_loop_over_channels():
    g = torch.Generator().manual_seed(0)
    P = torch.rand(3, 16, generator=g)
    x = torch.rand(2, 5, 4, 4, generator=g)
    got = zoo.SharedAutoPool(P)(x)
    ref = torch.stack([torch.cat([P @ x[n, c].reshape(-1) for c in range(5)]) for n in range(2)])
    assert got.shape == (2, 15)
    torch.testing.assert_close(got, ref)
    # a 0/1 P of the 2x2 quadrants is spatial sum pooling over a 2x2 grid
    q = torch.zeros(4, 4, 4)
    q[0, :2, :2] = q[1, :2, 2:] = q[2, 2:, :2] = q[3, 2:, 2:] = 1
    quad = zoo.SharedAutoPool(q.reshape(4, 16))(x).reshape(2, 5, 4)
    torch.testing.assert_close(quad[:, :, 1], x[:, :, :2, 2:].sum(dim=(2, 3)))


def test_shared_autopool_rejects_bad_input():
    with pytest.raises(ValueError, match="non-negative"):
        zoo.SharedAutoPool(-torch.ones(2, 4))
    with pytest.raises(ValueError, match="H\\*W = 4"):
        zoo.SharedAutoPool(torch.ones(2, 4))(torch.ones(1, 3, 3, 3))


def test_crosslayer_adapter_passes_prev_as_layer_t():
    last, prev = torch.rand(2, 6, 5, 5), torch.rand(2, 3, 5, 5)
    cross = CrossLayerPool()
    torch.testing.assert_close(zoo.CrossLayerOnBoth(cross)(last, prev), cross(prev, last))


def test_apply_and_probe():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), 40)
    maps = rng.normal(size=(80, 4, 3, 3)).astype(np.float32)
    maps[:, 0] += 3 * y[:, None, None]  # channel 0 carries the class
    op = zoo.Op("gap", "reference", "pooling.global_pool", GlobalAvgPool())
    desc, ms = zoo.apply(op, maps, None, batch=32)
    assert desc.shape == (80, 4) and ms > 0
    np.testing.assert_allclose(desc, maps.mean(axis=(2, 3)), rtol=1e-5, atol=1e-7)
    hits, alpha = zoo.linear_probe(desc[::2], y[::2], desc[1::2], y[1::2])
    assert hits.dtype == bool and hits.shape == (40,) and hits.all() and alpha in (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
    shuffled = rng.permutation(y)
    assert zoo.linear_probe(desc[::2], shuffled[::2], desc[1::2], shuffled[1::2])[0].mean() < 0.8


def test_autopool_pairs_come_from_frames_in_no_scene():
    from poolrep.data.scenes import outside_scenes

    t = outside_scenes([(0, 10), (14, 20)], 25)
    # frames 10-13 and 20-24 are free; a pair (t, t+1) needs both: t in 10..12 and 20..23
    assert t.tolist() == [10, 11, 12, 20, 21, 22, 23]
    assert outside_scenes([(0, 25)], 25).tolist() == []
