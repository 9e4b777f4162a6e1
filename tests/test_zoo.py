"""The zoo's adapters and evaluation helpers (the operators themselves are tested in their papers' files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poolrep.papers import zoo
from poolrep.pooling.crosslayer import CrossLayerPool
from poolrep.pooling.global_pool import GeM, GlobalAvgPool, GlobalMaxPool


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
    desc, _ = zoo.apply(op, maps, None, batch=32)  # (the time per image is a benchmark's business)
    assert desc.shape == (80, 4)
    np.testing.assert_allclose(desc, maps.mean(axis=(2, 3)), rtol=1e-5, atol=1e-7)
    hits, alpha = zoo.linear_probe(desc[::2], y[::2], desc[1::2], y[1::2])
    ref_alpha, ref_pred = _ridge_probe_reference(desc[::2], y[::2], desc[1::2])
    assert alpha == ref_alpha == 0.1  # a clean signal: the least regularisation has the smallest LOO error
    np.testing.assert_array_equal(hits, ref_pred == y[1::2])
    assert hits.dtype == bool and hits.all()  # channel 0 separates the classes by 3 standard deviations
    shuffled = rng.permutation(y)
    assert zoo.linear_probe(desc[::2], shuffled[::2], desc[1::2], shuffled[1::2])[0].mean() < 0.8
    # a weak signal in 30 dimensions from 40 items: the leave-one-out error is smallest inside the grid
    r = np.random.default_rng(5)
    x = r.normal(size=(60, 30))
    yy = (x[:, 0] + 1.5 * r.normal(size=60) > 0).astype(int)
    hits, alpha = zoo.linear_probe(x[:40], yy[:40], x[40:], yy[40:])
    ref_alpha, ref_pred = _ridge_probe_reference(x[:40], yy[:40], x[40:])
    assert alpha == ref_alpha == 100.0  # neither end of the grid
    np.testing.assert_array_equal(hits, ref_pred == yy[40:])


PROBE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0)  # linear_probe's default grid


def _ridge_probe_reference(xtr, ytr, xte, grid=PROBE_ALPHAS):
    """numpy, two classes: standardise with the training mean / std, targets -1/+1, ridge with an unpenalised
    intercept; alpha = the first of the grid with the smallest leave-one-out squared error (each item left out and
    the ridge refitted); returns (alpha, predicted labels of xte)."""
    xtr, xte = np.asarray(xtr, np.float64), np.asarray(xte, np.float64)
    mu, sd = xtr.mean(0), xtr.std(0)
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    t = np.where(np.asarray(ytr) == 1, 1.0, -1.0)

    def ridge(X, tt, a):
        xm, tm = X.mean(0), tt.mean()
        w = np.linalg.solve((X - xm).T @ (X - xm) + a * np.eye(X.shape[1]), (X - xm).T @ (tt - tm))
        return w, tm - xm @ w

    loo = []
    for a in grid:
        err = 0.0
        for i in range(len(t)):
            keep = np.arange(len(t)) != i
            w, b = ridge(xtr[keep], t[keep], a)
            err += (xtr[i] @ w + b - t[i]) ** 2
        loo.append(err / len(t))
    alpha = grid[int(np.argmin(loo))]
    w, b = ridge(xtr, t, alpha)
    return alpha, np.where(xte @ w + b > 0, 1, 0)


def test_autopool_pairs_come_from_frames_in_no_scene():
    from poolrep.data.scenes import outside_scenes

    t = outside_scenes([(0, 10), (14, 20)], 25)
    # frames 10-13 and 20-24 are free; a pair (t, t+1) needs both: t in 10..12 and 20..23
    assert t.tolist() == [10, 11, 12, 20, 21, 22, 23]
    assert outside_scenes([(0, 25)], 25).tolist() == []


# ------------------------------------------------------------------------------------------ global references


def test_global_max_pool_hand_values():
    x = torch.tensor(
        [
            [[[1.0, 5.0], [3.0, -2.0]], [[-4.0, -1.0], [-7.0, -3.0]]],
            [[[0.0, 0.0], [0.0, 0.5]], [[9.0, 8.0], [9.0, 2.0]]],
        ]
    )  # 2 images x 2 channels x 2 x 2
    torch.testing.assert_close(GlobalMaxPool()(x), torch.tensor([[5.0, -1.0], [0.5, 9.0]]))
    with pytest.raises(ValueError, match="N x C x H x W"):
        GlobalMaxPool()(torch.ones(2, 3))


def test_gem_hand_values():
    # one image, 2 channels: [1, 2, 3, 6] and [4, 4, 4, 4]
    x = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]], [[4.0, 4.0], [4.0, 4.0]]]], dtype=torch.float64)
    # p = 1: the mean, (1 + 2 + 3 + 6) / 4 = 3
    torch.testing.assert_close(GeM(p=1.0)(x), torch.tensor([[3.0, 4.0]], dtype=torch.float64))
    # p = 3: ((1 + 8 + 27 + 216) / 4)^(1/3) = 63^(1/3); a constant channel is its value for every p
    torch.testing.assert_close(GeM(p=3.0)(x), torch.tensor([[63.0 ** (1 / 3), 4.0]], dtype=torch.float64))
    # large p approaches the max (6) from below: (6^p (1 + (3/6)^p + (2/6)^p + (1/6)^p) / 4)^(1/p)
    for p, tol in ((20.0, 0.5), (200.0, 0.05)):
        v = float(GeM(p=p)(x)[0, 0])
        ref = 6.0 * ((1 + 0.5**p + (1 / 3) ** p + (1 / 6) ** p) / 4) ** (1 / p)
        assert v == pytest.approx(ref, rel=1e-6) and 6.0 - tol < v < 6.0  # (p is stored in float32)
    # against the formula in numpy on random non-negative maps (float32, p = 3)
    rng = np.random.default_rng(2)
    m = rng.random((3, 4, 5, 6)).astype(np.float32) + 0.01
    ref = np.mean(m.astype(np.float64) ** 3, axis=(2, 3)) ** (1 / 3)
    np.testing.assert_allclose(GeM()(torch.as_tensor(m)).numpy(), ref, rtol=1e-5)
    # inputs below eps count as eps (GeM is defined on non-negative maps)
    neg = torch.full((1, 1, 2, 2), -5.0, dtype=torch.float64)
    assert float(GeM(p=3.0, eps=1e-3)(neg)) == pytest.approx(1e-3, rel=1e-6)
    with pytest.raises(ValueError, match="p > 0"):
        GeM(p=0.0)


def test_gem_large_p_stays_finite_in_float32():
    # 6^50 overflows float32; GeM p=50 of [1, 2, 3, 6] is 6 * ((1 + 2^-50 + 3^-50 + 6^-50) / 4)^(1/50) = 5.8350...
    x = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]]]], dtype=torch.float32)
    assert torch.isinf(x.pow(50.0)).any()  # the naive formula's first step
    got = float(GeM(p=50.0)(x))
    assert got == pytest.approx(6.0 * (1 / 4) ** (1 / 50), rel=1e-5)
    # values of 30 at p = 30 (30^30 > float32 max): a constant channel is its value
    assert float(GeM(p=30.0)(torch.full((1, 1, 3, 3), 30.0))) == pytest.approx(30.0, rel=1e-6)
    # gradients stay finite where the naive formula's would be inf/nan
    xg = x.clone().requires_grad_(True)
    GeM(p=50.0)(xg).sum().backward()
    assert torch.isfinite(xg.grad).all()


def test_tie_marks_every_exact_top_is_best_and_ties_are_paired():
    n = 40
    top = np.ones(n)
    near = np.ones(n)
    near[:2] = 0.0  # 0.95: the paired interval of top - near holds 0 at n = 40
    low = np.zeros(n)  # far below: never tied
    marks = zoo.tie_marks({"a": top, "b": top.copy(), "c": near, "d": low}, scale=1.0, seed=0)
    assert marks == ["best", "best", "tied", ""]
    # one clear best: the others are compared with it alone
    assert zoo.tie_marks({"x": low, "y": top}, scale=100.0) == ["", "best"]


def test_descriptors_post_process_crosslayer_with_training_statistics_only():
    rng = np.random.default_rng(0)

    def maps(n):
        return rng.random((n, 3, 4, 4)).astype(np.float32), rng.random((n, 2, 4, 4)).astype(np.float32)

    tr, te, pr, sc = maps(30), maps(10), maps(6), maps(5)
    bb = {"train_maps": tr[0], "train_prev_maps": tr[1], "test_maps": te[0], "test_prev_maps": te[1]}
    inp = {"pairs_maps": pr, "scene_maps": sc}
    cross = zoo.CrossLayerOnBoth(CrossLayerPool(normalise_sum=True))
    raw = zoo.Op("cross", "cross-layer", "pooling.crosslayer", cross, two_layers=True)
    post = zoo.Op("cross", "cross-layer", "pooling.crosslayer", cross, two_layers=True, post_process=True)
    (r_tr, r_te, r_pr, r_sc), _ = zoo.descriptors(raw, bb, inp, "cpu")
    got, _ = zoo.descriptors(post, bb, inp, "cpu")
    # reference: standardise with the training descriptors' mean / population std, signed sqrt, L2-normalise
    mu, sd = r_tr.astype(np.float64).mean(0), r_tr.astype(np.float64).std(0)
    for raw_x, x in zip((r_tr, r_te, r_pr, r_sc), got):
        z = (raw_x - mu) / (sd + 1e-6)
        z = np.sign(z) * np.sqrt(np.abs(z))
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        np.testing.assert_allclose(x, z, rtol=1e-4, atol=1e-5)
    # the plain operator's descriptors are the pooled maps as they are
    np.testing.assert_allclose(r_te, cross(torch.from_numpy(te[0]), torch.from_numpy(te[1])).numpy(), rtol=1e-5)
