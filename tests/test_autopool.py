"""Auto-pooling stage: the cost and its gradient, projection, spatial pooling as a 0/1 P, the invariance score,
the SAE and whitening, conv features against a loop, frame pairs, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poolrep.data.framepairs import sample_pairs
from poolrep.metrics.invariance import derangement, invariance_score, score_of
from poolrep.normalize import ZCA
from poolrep.papers import autopool as saelib
from poolrep.pooling.autopool import (
    AutoPool,
    cost,
    cost_and_grad,
    flops_per_batch,
    heldout_cost,
    init_P,
    onehot_P,
    train_autopool,
)
from poolrep.pooling.spatial import MultiGridPool, SpatialPool, grid_edges, grid_matrix, grid_name, n_features


def _rand(*s, seed=0):
    return torch.rand(*s, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ------------------------------------------------------------------------------------------ auto-pooling cost


def test_cost_matches_loop_reference():
    P, xa, xb, lam = _rand(4, 9), _rand(3, 9, seed=1), _rand(3, 9, seed=2), 0.7
    ref = 0.0
    for a, b in zip(xa, xb):
        ref += 0.5 * float(((a - P.T @ (P @ a)) ** 2).sum()) + 0.5 * float(((b - P.T @ (P @ b)) ** 2).sum())
        ref += lam * 0.5 * float(((P @ a - P @ b) ** 2).sum())
    ref /= 3
    assert float(cost(P, xa, xb, lam)) == pytest.approx(ref, rel=1e-12)
    c, _, parts = cost_and_grad(P, xa, xb, lam)
    assert c == pytest.approx(ref, rel=1e-12)
    assert parts["reconstruction"] + lam * parts["invariance"] == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("lam", [0.0, 1.0, 5.0])
def test_gradient_matches_autograd(lam):
    P = _rand(5, 12).requires_grad_(True)
    xa, xb = _rand(7, 12, seed=3), _rand(7, 12, seed=4)
    cost(P, xa, xb, lam).backward()
    _, g, _ = cost_and_grad(P.detach(), xa, xb, lam)
    assert torch.allclose(g, P.grad, atol=1e-10, rtol=1e-9)


def test_gradient_finite_difference():
    P, xa, xb = _rand(3, 6), _rand(4, 6, seed=5), _rand(4, 6, seed=6)
    _, g, _ = cost_and_grad(P, xa, xb, 2.0)
    E = torch.zeros_like(P)
    E[1, 4] = 1e-6
    fd = (float(cost(P + E, xa, xb, 2.0)) - float(cost(P - E, xa, xb, 2.0))) / 2e-6
    assert fd == pytest.approx(float(g[1, 4]), rel=1e-5)


def test_flop_count():
    assert flops_per_batch(2, 3, 5) == 22 * 2 * 3 * 5


def _batches(xa, xb, bs):
    def f(epoch):
        for s in range(0, len(xa), bs):
            yield xa[s : s + bs], xb[s : s + bs]

    return f


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_training_keeps_P_nonnegative_and_lowers_cost(opt):
    x = _rand(64, 20, seed=7).float()
    xb = (x + 0.05 * _rand(64, 20, seed=8).float()).clamp(min=0)
    P0 = init_P(6, 20, torch.cat([x, xb]), seed=0)
    c0 = float(cost(P0, x, xb, 1.0))
    lr = 0.005 if opt == "sgd" else 0.2
    m, log = train_autopool(_batches(x, xb, 16), 6, 20, 1.0, epochs=15, lr=lr, optimizer=opt, P0=P0, progress=False)
    assert float(m.P.min()) >= 0
    assert float(cost(m.P, x, xb, 1.0)) < c0
    assert log.steps == 15 * 4 and log.gflop > 0


def test_gradient_buffers_give_the_same_result():
    P, xa, xb = _rand(4, 9), _rand(3, 9, seed=1), _rand(3, 9, seed=2)
    c, g, parts = cost_and_grad(P, xa, xb, 0.7)
    out, work = torch.full_like(P, 7.0), torch.full((15, 9), -3.0, dtype=P.dtype)
    c2, g2, parts2 = cost_and_grad(P, xa, xb, 0.7, out=out, work=work)
    assert g2.data_ptr() == out.data_ptr()
    assert c2 == pytest.approx(c, rel=1e-12) and parts2 == pytest.approx(parts, rel=1e-12)
    assert torch.allclose(out, g, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="out must have P's shape"):
        cost_and_grad(P, xa, xb, 0.7, out=torch.zeros(4, 8, dtype=P.dtype))
    with pytest.raises(ValueError, match="contiguous 15 x 9"):
        cost_and_grad(P, xa, xb, 0.7, work=torch.zeros(12, 9, dtype=P.dtype))


def test_adam_training_matches_a_hand_written_projected_adam():
    # slow reference: Adam (Kingma & Ba, torch's eps placement) on the analytic gradient, lr relative to mean(P0),
    # then P <- max(P, 0); three uneven batches so the short last batch is covered too
    x = _rand(40, 12, seed=12).float()
    xb = (x + 0.1 * _rand(40, 12, seed=13).float()).clamp(min=0)
    P0 = init_P(5, 12, torch.cat([x, xb]), seed=0)
    lr, lam = 0.1, 0.5
    m, _ = train_autopool(_batches(x, xb, 16), 5, 12, lam, epochs=2, lr=lr, optimizer="adam", P0=P0, progress=False)
    P, mo, v, t = P0.clone(), torch.zeros_like(P0), torch.zeros_like(P0), 0
    step_lr = lr * float(P0.mean())
    for _ in range(2):
        for s in range(0, 40, 16):
            _, g, _ = cost_and_grad(P, x[s : s + 16], xb[s : s + 16], lam)
            t += 1
            mo = 0.9 * mo + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            mhat, vhat = mo / (1 - 0.9**t), v / (1 - 0.999**t)
            P = (P - step_lr * mhat / (vhat.sqrt() + 1e-8)).clamp(min=0)
    assert t == 6
    assert torch.allclose(m.P, P, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(m.P, P0, atol=1e-4)  # it did move


def test_onehot_start_and_momentum_match_a_slow_reference():
    """The authors' optimisation: each row starts as one random feature, SGD with momentum 0 for the first epochs
    then 0.9, P clipped at 0 after every step; checked step by step against plain loops (uneven batches)."""
    x = _rand(40, 12, seed=14).float()
    xb = (x + 0.1 * _rand(40, 12, seed=15).float()).clamp(min=0)
    P0 = onehot_P(5, 12, seed=3)
    assert (P0.sum(1) == 1).all() and (P0.max(1).values == 1).all() and len(set(P0.argmax(1).tolist())) == 5
    lr, lam = 0.05, 2.0
    m, log = train_autopool(
        _batches(x, xb, 16),
        5,
        12,
        lam,
        epochs=3,
        lr=lr,
        optimizer="momentum",
        init="onehot",
        seed=3,
        momentum_after=1,
        progress=False,
    )
    P, v = P0.clone(), None
    for ep in range(3):
        mu = 0.0 if ep < 1 else 0.9
        for s in range(0, 40, 16):
            g = torch.zeros_like(P)
            for i in range(s, min(s + 16, 40)):  # the gradient as a sum over pairs, by hand
                for xx in (x[i], xb[i]):
                    z = P @ xx
                    e = P.T @ z - xx
                    g += torch.outer(z, e) + torch.outer(P @ e, xx)
                g += lam * torch.outer(P @ (x[i] - xb[i]), x[i] - xb[i])
            g /= min(s + 16, 40) - s
            v = g.clone() if (v is None or mu == 0) else mu * v + g
            P = (P - lr * v).clamp(min=0)
    assert torch.allclose(m.P, P, rtol=1e-4, atol=1e-6)
    assert log.steps == 9 and (m.P > 0).sum() > 5  # rows grew beyond their single feature
    with pytest.raises(ValueError, match="init"):
        train_autopool(_batches(x, xb, 16), 5, 12, lam, init="grid", progress=False)


def test_heldout_cost_is_the_cost_at_the_best_scale():
    x = _rand(30, 10, seed=21).float()
    xb = (x + 0.2 * _rand(30, 10, seed=22).float()).clamp(min=0)
    P = torch.rand(4, 10, generator=torch.Generator().manual_seed(0))
    lam = 1.5
    h = heldout_cost(P, [(x[:17], xb[:17]), (x[17:], xb[17:])], lam)
    assert h["cost"] == pytest.approx(float(cost(P, x, xb, lam)), rel=1e-5)
    scales = torch.linspace(0.01, 2.0, 2000)
    brute = min(float(cost(s * P, x, xb, lam)) for s in scales)
    assert h["scaled"] == pytest.approx(brute, rel=1e-4) and h["scaled"] <= h["cost"] + 1e-9
    assert h["scaled"] == pytest.approx(h["reconstruction"] + lam * h["invariance"], rel=1e-6)
    assert heldout_cost(torch.zeros(4, 10), [(x, xb)], lam)["scaled"] == pytest.approx(
        0.5 * float((x**2).sum() + (xb**2).sum()) / 30, rel=1e-5
    )  # P = 0 keeps nothing


def test_grid_of_any_multiple_of_the_channels():
    from poolrep.pooling.spatial import grid_for

    assert [grid_for(k, 100) for k in (400, 800, 1300, 2500)] == [(2, 2), (2, 4), (1, 13), (5, 5)]
    G = grid_matrix((2, 4), 3, 5, 8)
    assert G.shape == (3 * 8, 3 * 5 * 8) and (G.sum(0) == 1).all()  # every input in exactly one pool
    # round(linspace(0, 5, 3)) = [0, 2, 5] (2.5 rounds to even) and round(linspace(0, 8, 5)) = [0, 2, 4, 6, 8]
    assert grid_edges(5, 2).tolist() == [0, 2, 5] and grid_edges(8, 4).tolist() == [0, 2, 4, 6, 8]
    x = torch.rand(2, 3, 5, 8, generator=torch.Generator().manual_seed(4))
    rows = (x.reshape(2, -1) @ G.T).reshape(2, 3, 2, 4)
    ey, ex = [0, 2, 5], [0, 2, 4, 6, 8]
    for n in range(2):
        for c in range(3):
            for i in range(2):
                for j in range(4):
                    cell = sum(
                        float(x[n, c, yy, xx]) for yy in range(ey[i], ey[i + 1]) for xx in range(ex[j], ex[j + 1])
                    )
                    assert float(rows[n, c, i, j]) == pytest.approx(cell, rel=1e-5)
    with pytest.raises(ValueError, match="multiple"):
        grid_for(450, 100)


def test_init_P_scale_and_sparse_start():
    x = _rand(10, 30, seed=11).float()
    P = init_P(5, 30, x, seed=0)
    assert float(P.min()) >= 0 and (P > 0).all()
    ax = (x @ P.T) @ P
    # least-squares scale: <x, P^T P x> = ||P^T P x||^2
    assert float((x * ax).sum()) == pytest.approx(float((ax * ax).sum()), rel=1e-4)
    Ps = init_P(50, 2000, None, seed=0, members=2)
    assert float((Ps > 0).float().mean()) == pytest.approx(2 / 50, abs=0.005)
    with pytest.raises(ValueError, match="members"):
        init_P(5, 30, members=0)


def test_projection_clips_at_zero():
    # a huge step drives entries negative before projection; they must end at exactly 0
    x = _rand(8, 10, seed=9).float()
    m, _ = train_autopool(
        _batches(x, x, 8), 3, 10, 0.0, epochs=1, lr=1e6, optimizer="sgd", P0=torch.full((3, 10), 0.5), progress=False
    )
    assert float(m.P.min()) == 0.0


def test_autopool_of_grid_matrix_equals_sum_pooling():
    x = _rand(2, 3, 7, 7, seed=10).float()
    for g in (1, 2, 3):
        P = grid_matrix(g, 3, 7, 7)
        assert torch.allclose(AutoPool(P)(x), SpatialPool(g, "sum")(x), atol=1e-5)


def test_autopool_reconstruct_is_PtP_x():
    rng = np.random.default_rng(8)
    P = rng.random((3, 12))
    x = rng.normal(size=(4, 12))
    ref = np.stack([P.T @ (P @ xi) for xi in x])  # P^T P x, one item at a time
    m = AutoPool(torch.as_tensor(P))
    np.testing.assert_allclose(m.reconstruct(torch.as_tensor(x)).numpy(), ref, rtol=1e-12)
    # maps N x C x H x W are flattened in C, H, W order (C * H * W = 12)
    np.testing.assert_allclose(m.reconstruct(torch.as_tensor(x.reshape(4, 3, 2, 2))).numpy(), ref, rtol=1e-12)
    # a 0/1 P with one input per row keeps those inputs and zeroes the rest
    keep = AutoPool(torch.eye(12, dtype=torch.float64)[[1, 5]])
    want = np.zeros_like(x)
    want[:, [1, 5]] = x[:, [1, 5]]
    np.testing.assert_array_equal(keep.reconstruct(torch.as_tensor(x)).numpy(), want)


def test_autopool_errors():
    with pytest.raises(ValueError, match="non-negative"):
        AutoPool(-torch.ones(2, 3))
    with pytest.raises(ValueError, match="K x D"):
        AutoPool(torch.ones(3))
    with pytest.raises(ValueError, match="floating"):
        AutoPool(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="N x 6"):
        AutoPool(torch.ones(2, 6))(torch.ones(4, 5))
    with pytest.raises(ValueError, match="same shape"):
        cost_and_grad(torch.ones(2, 6), torch.ones(4, 6), torch.ones(3, 6), 1.0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        train_autopool(_batches(torch.ones(2, 3), torch.ones(2, 3), 2), 2, 3, 1.0, optimizer="lbfgs")


# ------------------------------------------------------------------------------------------ spatial pooling


def _loop_pool(x, g, op):
    N, C, H, W = x.shape
    ey, ex = grid_edges(H, g), grid_edges(W, g)
    out = torch.zeros(N, C, g, g)
    for n in range(N):
        for c in range(C):
            for i in range(g):
                for j in range(g):
                    blk = x[n, c, ey[i] : ey[i + 1], ex[j] : ex[j + 1]]
                    out[n, c, i, j] = blk.sum() if op == "sum" else blk.max()
    return out.reshape(N, -1)


@pytest.mark.parametrize("op", ["sum", "max"])
@pytest.mark.parametrize("g", [1, 2, 3, 4])
def test_spatial_pool_matches_loop(op, g):
    x = _rand(2, 3, 27, 27, seed=g).float()
    assert torch.allclose(SpatialPool(g, op)(x), _loop_pool(x, g, op), atol=1e-4)


def test_grid_edges_coates_quadrants_and_multigrid():
    assert grid_edges(27, 2).tolist() == [0, 14, 27]
    x = _rand(2, 5, 27, 27).float()
    y = MultiGridPool([1, 2, 3])(x)
    assert y.shape == (2, n_features([1, 2, 3], 5)) == (2, 70)
    assert torch.allclose(y[:, :5], x.sum(dim=(2, 3)), atol=1e-4)


def test_grid_name():
    assert grid_name((1, 2, 3)) == "1x1+2x2+3x3"
    assert grid_name([4]) == "4x4"
    assert grid_name((2, 1)) == "2x2+1x1"  # in the given order


def test_spatial_errors():
    with pytest.raises(ValueError, match="unknown op"):
        SpatialPool(2, "mean")
    with pytest.raises(ValueError, match="N x C x H x W"):
        SpatialPool(2)(torch.ones(3, 4, 5))
    with pytest.raises(ValueError, match="between 1"):
        SpatialPool(9)(torch.ones(1, 1, 4, 4))


# ------------------------------------------------------------------------------------------ invariance score


def test_invariance_score_hand_case():
    a = np.array([[0.0, 0.0], [4.0, 0.0]])
    b = np.array([[1.0, 0.0], [4.0, 1.0]])  # neighbour distances 1 and 1
    # random pairs (0 -> 1, 1 -> 0): distances 4 and 4 -> score 4
    assert invariance_score(a, b, random_pairs=np.array([1, 0])) == pytest.approx(4.0)
    # scale invariant
    assert invariance_score(3 * a, 3 * b, random_pairs=np.array([1, 0])) == pytest.approx(4.0)
    assert invariance_score(a, a) == float("inf")


def test_score_of_hand_case_and_vectorised():
    # mean(far) / mean(near): (4 + 6 + 8) / 3 = 6 over (1 + 2 + 3) / 3 = 2 -> 3
    assert score_of(np.array([1.0, 2.0, 3.0]), np.array([4.0, 6.0, 8.0])) == pytest.approx(3.0)
    # along the last axis, one score per row (bootstrap resamples): [6 / 2, 2 / 2]
    near = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0]])
    far = np.array([[4.0, 6.0, 8.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(score_of(near, far), [3.0, 1.0])
    np.testing.assert_allclose(score_of(near.T, far.T, axis=0), [3.0, 1.0])
    # the same number invariance_score gives from codes: near distances 1, 1; far distances 4, 4 (see the hand case)
    a, b = np.array([[0.0, 0.0], [4.0, 0.0]]), np.array([[1.0, 0.0], [4.0, 1.0]])
    assert score_of(np.array([1.0, 1.0]), np.array([4.0, 4.0])) == invariance_score(a, b, random_pairs=np.array([1, 0]))


def test_derangement_has_no_fixed_point():
    for n in (2, 3, 10, 101):
        d = derangement(n, seed=n)
        assert sorted(d.tolist()) == list(range(n)) and (d != np.arange(n)).all()
    with pytest.raises(ValueError, match="need at least 2 items for random pairs"):
        derangement(1)


def test_invariance_errors():
    with pytest.raises(ValueError, match="same shape"):
        invariance_score(np.ones((3, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="N x D"):
        invariance_score(np.ones(3), np.ones(3))


# ------------------------------------------------------------------------------------------ SAE and features


def test_contrast_normalize():
    p = np.random.default_rng(0).uniform(0, 255, (500, 12)).astype(np.float32)
    n = saelib.contrast_normalize(p, 10.0)
    assert torch.allclose(n.mean(1), torch.zeros(500), atol=1e-4)
    ref = (p[0] - p[0].mean()) / np.sqrt(p[0].var(ddof=1) + 10)
    assert np.allclose(n[0].numpy(), ref, atol=1e-4)


def test_sae_cost_decreases_on_tiny_batch():
    x = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    sae = saelib.SparseAutoencoder(16, 8, seed=0)
    hist = sae.fit(x, iters=30, progress=False)
    assert hist[-1] < 0.5 * hist[0]
    h = sae.encode(x)
    assert h.shape == (200, 8) and float(h.min()) >= 0 and float(h.max()) <= 1
    with pytest.raises(ValueError, match="N x 16"):
        sae.encode(torch.ones(3, 15))
    with pytest.raises(ValueError, match="rho"):
        saelib.SparseAutoencoder(4, 2, rho=0)


def _tiny_model(size=3, channels=3, hidden=4):
    pt = saelib.sample_patches(
        np.random.default_rng(0).integers(0, 256, (20, 10, 10, channels), dtype=np.uint8), 300, size, 0
    )
    zca = ZCA(0.1).fit(saelib.contrast_normalize(pt))
    return saelib.PatchModel(size, channels, zca, saelib.SparseAutoencoder(size * size * channels, hidden, seed=1))


def test_conv_features_match_patch_loop():
    model = _tiny_model()
    imgs = np.random.default_rng(1).integers(0, 256, (2, 8, 7, 3), dtype=np.uint8)
    f = saelib.conv_features(imgs, model)
    assert f.shape == (2, 4, 6, 5)
    for n, y, x in [(0, 0, 0), (1, 5, 4), (0, 2, 3)]:
        p = imgs[n, y : y + 3, x : x + 3].reshape(1, -1).astype(np.float32)
        with torch.no_grad():
            ref = model.encode_patches(torch.from_numpy(p))[0]
        assert torch.allclose(f[n, :, y, x], ref, atol=1e-5)
    with pytest.raises(ValueError, match="N x H x W x 3"):
        saelib.conv_features(imgs[..., :1], model)
    assert model.filters().shape == (4, 3, 3, 3)


def test_sample_patches_shapes_and_errors():
    imgs = np.arange(2 * 5 * 5, dtype=np.uint8).reshape(2, 5, 5)
    p = saelib.sample_patches(imgs, 7, 3, 0)
    assert p.shape == (7, 9) and p.dtype == np.float32
    with pytest.raises(ValueError, match="larger"):
        saelib.sample_patches(imgs, 1, 6)


# ------------------------------------------------------------------------------------------ frame pairs


def test_sample_pairs_same_location_and_no_cut():
    rng = np.random.default_rng(0)
    # clip: frame t is a constant image of value t (tiny motion), except a cut between frames 3 and 4
    vals = [0, 1, 2, 3, 200, 201, 202]
    clip = np.stack([np.full((12, 12), v, np.uint8) for v in vals])
    clip[:, 5, 5] = rng.integers(0, 255, len(vals))
    pr = sample_pairs([clip], 200, 4, seed=0, cut_threshold=20.0)
    assert pr.a.shape == (200, 4, 4) and pr.b.shape == (200, 4, 4)
    d = pr.b.astype(int) - pr.a.astype(int)
    # apart from the noise pixel, the second frame is the first + 1: consecutive frames, never across the cut
    assert (np.median(d.reshape(200, -1), axis=1) == 1).all()
    assert set(pr.clip.tolist()) == {0}
    with pytest.raises(ValueError, match="smaller than the patch"):
        sample_pairs([clip], 3, 20)


# ---------- issue 18: filters in pixel space, orientation, pool diagnostics, parameters ----------


def test_filters_are_the_encoder_in_pixel_space():
    model = _tiny_model()
    x = saelib.contrast_normalize(np.random.default_rng(2).integers(0, 256, (5, 27)).astype(np.float32))
    f = torch.from_numpy(model.filters().reshape(4, -1))
    with torch.no_grad():
        pre = model.zca(x) @ model.sae.W1.T  # what the encoder sees
    assert torch.allclose((x - model.zca.mean) @ f.T, pre, atol=1e-4)
    assert 0 < model.mean_activation(np.random.default_rng(3).integers(0, 256, (50, 27))) < 1


def _edge(theta_grad: float, n: int = 9) -> np.ndarray:
    """A smooth edge (as SAE filters are) whose intensity changes along the direction theta_grad (radians)."""
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    return np.tanh(np.cos(theta_grad) * xx + np.sin(theta_grad) * yy)


def test_orientation_of_edges_and_noise():
    f = np.stack([_edge(0.0), _edge(np.pi / 2), _edge(np.pi / 4), np.random.default_rng(0).normal(size=(9, 9))])
    theta, coh = saelib.orientation(f)
    assert abs(theta[0]) < 1e-6 or abs(theta[0] - np.pi) < 1e-6
    assert abs(theta[1] - np.pi / 2) < 1e-6 and abs(theta[2] - np.pi / 4) < 1e-3
    assert coh[0] > 0.99 and coh[1] > 0.99 and coh[3] < 0.5
    # colour filters: summed over the channels; pixel-grid error under 0.03 rad at any angle
    got = saelib.orientation(np.stack([_edge(t) for t in (0.3, 1.2, 2.5)])[..., None].repeat(3, -1))[0]
    assert got == pytest.approx([0.3, 1.2, 2.5], abs=0.03)
    with pytest.raises(ValueError, match="n x h x w"):
        saelib.orientation(np.zeros((3, 4)))


def test_orientation_spread_and_cluster_excess():
    assert saelib.orientation_spread([0.2, 0.2, 0.2]) == pytest.approx(0.0)
    assert saelib.orientation_spread([0.0, np.pi / 2]) == pytest.approx(1.0)
    assert saelib.orientation_spread([0.01, np.pi - 0.01]) < 0.01  # orientation has period pi
    theta = np.repeat(np.linspace(0, np.pi, 8, endpoint=False), 4)  # 8 orientations x 4 features
    alike = np.zeros((8, 32))
    for k in range(8):
        alike[k, 4 * k : 4 * k + 4] = 1.0  # each pool: the 4 features of one orientation
    ex = saelib.cluster_orientation_excess(alike, theta, 0.5, seed=0)
    assert len(ex) == 8 and np.all(ex < -0.5)
    mixed = np.zeros((4, 32))
    for k in range(4):
        mixed[k, k::4][:8] = 1.0  # each pool: one feature of every orientation
    assert np.all(np.abs(saelib.cluster_orientation_excess(mixed, theta, 0.5, seed=0)) < 0.3)


def test_row_stats():
    same = torch.ones(3, 5)
    assert saelib.row_stats(same, 0.5) == {
        "row_cosine": pytest.approx(1.0),
        "members_mean": 5.0,
        "members_median": 5.0,
        "zero_rows": 0.0,
    }
    eye = torch.cat([torch.eye(4), torch.zeros(1, 4)])
    st = saelib.row_stats(eye, 0.5)
    assert (
        st["row_cosine"] == pytest.approx(0.0) and st["members_mean"] == 1.0 and st["zero_rows"] == pytest.approx(0.2)
    )


def test_sp_features_concatenate_the_grids_as_multigrid_pooling():
    maps = torch.rand(3, 4, 6, 6)
    per = {f"SP {g}x{g}": MultiGridPool([g], "sum")(maps).numpy() for g in (1, 2)}
    np.testing.assert_allclose(saelib.sp_features(per, [1, 2]), MultiGridPool([1, 2], "sum")(maps).numpy(), rtol=1e-6)


def test_check_params():
    from poolrep.config import ParamsError

    ok = {"ks": [400, 800], "hidden": 100, "curve_epochs": [1, 2], "epochs": 2, "heldout_from": 0.8}
    saelib.check_params(ok)
    with pytest.raises(ParamsError, match="not a multiple of hidden=100"):
        saelib.check_params({**ok, "ks": [400, 450]})
    with pytest.raises(ParamsError, match="2x4 grid"):
        saelib.check_params({**ok, "ks": [800]})
    with pytest.raises(ParamsError, match=r"\[3\] outside 1..epochs=2"):
        saelib.check_params({**ok, "curve_epochs": [1, 3]})
    with pytest.raises(ParamsError, match="heldout_from"):
        saelib.check_params({**ok, "heldout_from": 1.0})


def test_video_pairs_hold_out_the_end_of_each_clip():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 30, (40, 34, 34, 3), dtype=np.uint8) for _ in range(2)]
    p = {"heldout_from": 0.75, "cut_threshold": 1000.0}
    tr, he = saelib.video_pairs(frames, ["a", "b"], 60, 20, 32, p, seed=0)

    def times(pairs):  # which frame each pair's first patch came from (patches are unique with these random frames)
        out = []
        for a, k in zip(pairs.a, pairs.clip):
            f = frames[k]
            t = next(
                t
                for t in range(len(f))
                for y in range(3)
                for x in range(3)
                if np.array_equal(f[t, y : y + 32, x : x + 32], a)
            )
            out.append(t)
        return np.array(out)

    assert times(tr).max() + 1 < 30 and times(he).min() >= 30
