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
    PStep,
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
    assert flops_per_batch(2, 3, 5) == 20 * 2 * 3 * 5


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
    out, work = torch.full_like(P, 7.0), torch.full((12, 9), -3.0, dtype=P.dtype)
    c2, g2, parts2 = cost_and_grad(P, xa, xb, 0.7, out=out, work=work)
    assert g2.data_ptr() == out.data_ptr()
    assert c2 == pytest.approx(c, rel=1e-12) and parts2 == pytest.approx(parts, rel=1e-12)
    assert torch.allclose(out, g, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="out must have P's shape"):
        cost_and_grad(P, xa, xb, 0.7, out=torch.zeros(4, 8, dtype=P.dtype))
    with pytest.raises(ValueError, match="contiguous 12 x 9"):
        cost_and_grad(P, xa, xb, 0.7, work=torch.zeros(15, 9, dtype=P.dtype))


@pytest.mark.parametrize("block_columns", [None, 5])
def test_adam_training_matches_a_hand_written_projected_adam(block_columns):
    # slow reference: Adam (Kingma & Ba, torch's eps placement) on the analytic gradient, lr relative to mean(P0),
    # then P <- max(P, 0); three uneven batches so the short last batch is covered too
    x = _rand(40, 12, seed=12).float()
    xb = (x + 0.1 * _rand(40, 12, seed=13).float()).clamp(min=0)
    P0 = init_P(5, 12, torch.cat([x, xb]), seed=0)
    lr, lam = 0.1, 0.5
    m, _ = train_autopool(
        _batches(x, xb, 16), 5, 12, lam, epochs=2, lr=lr, optimizer="adam", P0=P0, progress=False,
        block_columns=block_columns,
    )  # fmt: skip
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


@pytest.mark.parametrize("opt", ["adam", "momentum", "sgd"])
def test_pstep_in_column_blocks_equals_torch_adam_on_the_whole_gradient(opt):
    """PStep's block-by-block update (uneven blocks of 4 over D = 11) against the whole gradient of cost_and_grad
    and torch.optim (Adam fused, or the update by hand), then the projection: float64, four steps."""
    g = torch.Generator().manual_seed(5)
    P0 = torch.rand(6, 11, generator=g, dtype=torch.float64) * 0.3
    xs = [(torch.rand(8, 11, generator=g, dtype=torch.float64), torch.rand(8, 11, generator=g, dtype=torch.float64))]
    xs = xs * 2 + [(x[:5], y[:5]) for x, y in xs]  # a short batch too
    step = PStep(P0, 0.7, opt, lr=0.05, momentum_after=1, block_columns=4)
    assert [c.stop - c.start for c in step.cols] == [4, 4, 3]
    P = P0.clone()
    if opt == "adam":
        P.grad = torch.zeros_like(P)
        ref = torch.optim.Adam([P], lr=0.05 * float(P0.mean()), fused=True)
    v = torch.zeros_like(P)
    for ep, (xa, xb) in enumerate(xs):
        c, parts = step(xa, xb, ep)
        c_ref, grad, parts_ref = cost_and_grad(P, xa, xb, 0.7)
        assert c == pytest.approx(c_ref, rel=1e-12) and parts == pytest.approx(parts_ref, rel=1e-12)
        with torch.no_grad():
            if opt == "adam":
                P.grad.copy_(grad)
                ref.step()
            elif opt == "momentum":
                v = v * (0.0 if ep < 1 else 0.9) + grad
                P -= 0.05 * v
            else:
                P -= 0.05 * grad
            P.clamp_(min=0)
    assert torch.allclose(step.P, P, rtol=1e-12, atol=1e-15)
    assert not torch.allclose(P, P0) and (P == 0).any()  # it moved, and the projection acted
    with pytest.raises(ValueError, match="block_columns"):
        PStep(P0, 0.7, block_columns=0)
    with pytest.raises(ValueError, match="optimizer"):
        PStep(P0, 0.7, "lbfgs")


@pytest.mark.parametrize("block_columns", [None, 5])
def test_onehot_start_and_momentum_match_a_slow_reference(block_columns):
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
        block_columns=block_columns,
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


def test_conv_features_equal_the_encoder_at_every_location():
    """The folded convolution against the encoder applied to every unfolded patch (the definition)."""
    import torch.nn.functional as F

    rng = np.random.default_rng(4)
    imgs = rng.integers(0, 256, (30, 16, 16, 3), dtype=np.uint8)
    imgs[0] = 77  # a flat image: every patch has zero variance (only eps_cn keeps it finite)
    pt = saelib.sample_patches(imgs, 2000, 6, 0)
    model, _ = saelib.train_patch_model(pt, 6, 3, 12, 0.035, 5.0, 0.003, iters=15)
    got = saelib.conv_features(imgs, model)
    x = torch.as_tensor(imgs).float().permute(0, 3, 1, 2)
    cols = F.unfold(x, 6).view(30, 3, 36, -1).permute(0, 3, 2, 1).reshape(-1, 108)  # (y, x, c) per patch
    with torch.no_grad():
        ref = model.encode_patches(cols).view(30, 11, 11, 12).permute(0, 3, 1, 2)
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-4)


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
    same = torch.ones(3, 4)  # 2 channels x 2 positions, every row spread evenly over both maps
    assert saelib.row_stats(same, 0.5, channels=2) == {
        "row_cosine": pytest.approx(1.0),
        "members_mean": 4.0,
        "members_median": 4.0,
        "zero_rows": 0.0,
        "purity_mean": pytest.approx(0.5),
        "purity_median": pytest.approx(0.5),
    }
    eye = torch.cat([torch.eye(4), torch.zeros(1, 4)])
    st = saelib.row_stats(eye, 0.5, channels=2)
    assert (
        st["row_cosine"] == pytest.approx(0.0) and st["members_mean"] == 1.0 and st["zero_rows"] == pytest.approx(0.2)
    )
    assert st["purity_mean"] == pytest.approx(0.8)  # four pure rows, one zero row (purity 0)
    assert st["purity_median"] == pytest.approx(1.0)


def test_sp_features_concatenate_the_grids_as_multigrid_pooling():
    maps = torch.rand(3, 4, 6, 6)
    per = {f"SP {g}x{g}": MultiGridPool([g], "sum")(maps).numpy() for g in (1, 2)}
    np.testing.assert_allclose(saelib.sp_features(per, [1, 2]), MultiGridPool([1, 2], "sum")(maps).numpy(), rtol=1e-6)


def _params(**kw):
    p = {
        "ks": [400],
        "rep_ks": [400],
        "rep_side": 16,
        "hidden": 100,
        "n_pairs": 100,
        "rep_pairs": 60,
        "grid_start_pairs": 20,
        "curve_every": 20,
        "curve_pairs": [20, 40],
        "heldout_from": 0.8,
        "lambdas": [0.0, 1.0, 10.0, 100.0],
        "inv_lambdas": [0.0, 10.0, 100.0],
        "train_sets": ["small"],
        "sp_grids": [[1], [2], [3], [4], [1, 2]],
    }
    return {**p, **kw}


def test_check_params():
    from poolrep.config import ParamsError

    saelib.check_params(_params())
    with pytest.raises(ParamsError, match="not a multiple of hidden=100"):
        saelib.check_params(_params(ks=[400, 450]))
    with pytest.raises(ParamsError, match="rep_ks: K=450"):
        saelib.check_params(_params(rep_ks=[450]))
    saelib.check_params(_params(rep_side=None, rep_ks=[450]))  # no replicate: its K are not used
    saelib.check_params(_params(rep_ks=[400, 900, 1600]))  # Fig. 10 over K: each with its exact grid
    with pytest.raises(ParamsError, match="K=2500 has no single grid"):  # 5x5 is not among the single grids
        saelib.check_params(_params(rep_ks=[400, 2500]))
    with pytest.raises(ParamsError, match="K=900 has no single grid"):  # 1x1 + 2x2 is no 3x3
        saelib.check_params(_params(rep_ks=[400, 900], sp_grids=[[1], [2], [1, 2]]))
    with pytest.raises(ParamsError, match="2x4 grid"):
        saelib.check_params(_params(ks=[800]))
    with pytest.raises(ParamsError, match="rep_pairs = 50: must be a multiple of curve_every = 20"):
        saelib.check_params(_params(rep_pairs=50))
    with pytest.raises(ParamsError, match="curve_pairs"):
        saelib.check_params(_params(curve_pairs=[60]))  # not below the replicate's 60 pairs
    with pytest.raises(ParamsError, match="heldout_from"):
        saelib.check_params(_params(heldout_from=1.0))
    with pytest.raises(ParamsError, match="inv_lambdas"):
        saelib.check_params(_params(inv_lambdas=[0.0, 3.0, 100.0]))  # 3 is not in the lambda grid
    with pytest.raises(ParamsError, match="rep_side"):
        saelib.check_params(_params(rep_side=40))
    saelib.check_params(_params(train_sets=["full", "small"]))
    for bad in (["full"], ["small", "tiny"]):
        with pytest.raises(ParamsError, match="train_sets"):
            saelib.check_params(_params(train_sets=bad))


# ---------------------------------------------------------------- issue 31: fresh streamed pairs


def _coded_frames(T=40, side=34, clips=2):
    """Random grey frames: every 32x32 patch is unique, so a patch tells where it was cut (:func:`_where`)."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 30, (T, side, side), dtype=np.uint8) for _ in range(clips)]


def _where(stream, pairs):
    """(clip, t, y, x) of each pair's first patch, found by search (the frames are random, so patches are unique)."""
    out = []
    for a, k in zip(pairs.a, pairs.clip):
        f = stream.frames[k]
        hit = [
            (int(k), t, y, x)
            for t in range(len(f))
            for y in range(f.shape[1] - 31)
            for x in range(f.shape[2] - 31)
            if np.array_equal(f[t, y : y + 32, x : x + 32], a)
        ]
        assert len(hit) == 1
        out.append(hit[0])
    return out


def test_stream_draws_distinct_pairs_from_the_training_span_only():
    from poolrep.data.framepairs import PairStream

    frames = _coded_frames()
    s = PairStream(frames, 32, cut_threshold=1000.0, span=(0.0, 0.75), seed=3)
    # frames 0..29 are the span, t + 1 <= 29: t in 0..28, 3 x 3 places: 29 * 9 = 261 per clip
    assert s.capacity() == 2 * 29 * 9
    clip, t, y, x = s.draw(400)
    keys = set(zip(clip.tolist(), t.tolist(), y.tolist(), x.tolist()))
    assert len(keys) == 400  # no pair used twice
    assert t.max() + 1 <= 29 and t.min() >= 0  # neither frame of a pair in the held-out span (30..39)
    assert abs(int((clip == 0).sum()) - 200) <= 1  # evenly over the clips
    pairs = list(s.batches(12, 5))
    assert [len(b) for b in pairs] == [5, 5, 2]
    got = _where(s, pairs[0])
    c, tt, yy, xx = s.draw(12)
    assert got == list(zip(c[:5].tolist(), tt[:5].tolist(), yy[:5].tolist(), xx[:5].tolist()))
    for b in pairs:  # the second patch is the same place one frame later
        for (k, t0, y0, x0), bb in zip(_where(s, b), b.b):
            np.testing.assert_array_equal(bb, frames[k][t0 + 1, y0 : y0 + 32, x0 : x0 + 32])
    with pytest.raises(ValueError, match="span holds only"):
        s.draw(600)


def test_stream_skips_cuts_and_a_new_seed_draws_anew():
    from poolrep.data.framepairs import PairStream

    clip = np.stack([np.full((32, 32), v, np.uint8) for v in [0, 1, 2, 3, 200, 201, 202, 203]])
    s = PairStream([clip], 32, cut_threshold=20.0)
    assert s.valid[0].tolist() == [0, 1, 2, 4, 5, 6]  # (3, 4) straddles the cut
    a = PairStream([clip], 32, 20.0, seed=0).draw(6)[1]
    assert sorted(a.tolist()) == [0, 1, 2, 4, 5, 6]  # all six places, once each
    held = PairStream([clip], 32, 20.0, span=(0.5, 1.0))
    assert held.valid[0].tolist() == [4, 5, 6]
    moved = s.respan((0.5, 1.0), seed=0)  # the same cuts, another span: no second pass over the frames
    assert moved.valid[0].tolist() == [4, 5, 6] and s.valid[0].tolist() == [0, 1, 2, 4, 5, 6]
    assert np.array_equal(moved.draw(3)[1], held.draw(3)[1])
    with pytest.raises(ValueError, match="no pair"):
        PairStream([clip[:1]], 32)


def test_stream_batches_serve_one_draw_in_chunks():
    frames = _coded_frames(T=20, side=33, clips=1)
    s = saelib.pair_stream(
        [np.repeat(f[..., None], 3, -1) for f in frames], ["a"], {"cut_threshold": 1e9, "heldout_from": 0.9}, seed=0
    )

    class Ident:  # stands in for the SAE: features = the pixels of the patch's first row
        channels = 3

    import poolrep.papers.autopool.pools as E

    orig = E._feats
    E._feats = lambda x, model, side, device: torch.as_tensor(np.asarray(x)[:, 0, :4, 0], dtype=torch.float32)
    try:
        b = saelib.stream_batches(s, Ident(), 32, 30, 10, 4, "cpu")
        chunks = [torch.cat([a for a, _ in b(i)]) for i in range(3)]
    finally:
        E._feats = orig
    allx = torch.cat(chunks)
    assert allx.shape == (30, 4) and [len(c) for c in chunks] == [10, 10, 10]
    assert len({tuple(r.tolist()) for r in allx}) == 30  # thirty distinct pairs, none served twice


def test_resize_images_is_an_area_average():
    x = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    y = saelib.resize_images(x, 2)
    assert y.shape == (2, 2, 2, 3)
    np.testing.assert_allclose(y[1, 0, 1].numpy(), x[1, :2, 2:].reshape(-1, 3).mean(0))
    assert saelib.resize_images(x, 4) is x
    g = saelib.resize_images(x[..., 0], 2)
    assert g.shape == (2, 2, 2)
    with pytest.raises(ValueError, match="side"):
        saelib.resize_images(x, 5)


# ---------------------------------------------------------------- issue 31: diagnostics


def test_channel_purity_of_grid_dense_and_zero_rows():
    from poolrep.pooling.spatial import grid_matrix

    G = grid_matrix(2, 3, 4, 4)
    assert np.allclose(saelib.channel_purity(G, 3), 1.0)  # a spatial-pooling row lives in one map
    dense = torch.ones(2, 3 * 16)
    assert np.allclose(saelib.channel_purity(dense, 3), 1 / 3)
    P = torch.zeros(2, 3 * 16)
    P[0, :16] = 3.0
    P[0, 16:32] = 1.0
    assert saelib.channel_purity(P, 3).tolist() == pytest.approx([0.75, 0.0])
    with pytest.raises(ValueError, match="C = 5"):
        saelib.channel_purity(P, 5)


def test_shuffled_rows_keep_each_rows_values_and_lose_its_layout():
    from poolrep.pooling.spatial import grid_matrix

    G = grid_matrix(2, 4, 6, 6)
    R = saelib.shuffled_rows(G, seed=0)
    assert torch.equal(R.sort(dim=1).values, G.sort(dim=1).values)  # same values per row: same density and mass
    assert not torch.equal(R, G)
    assert saelib.channel_purity(R, 4).mean() < 0.6  # the grid's rows were pure; shuffled ones spread over maps
    assert torch.equal(saelib.shuffled_rows(G, seed=0), R)


def _runs_for(P_by_seed, shape, ks, seeds, side=16):
    sc = saelib.Scale("16px", side, ks, seeds, 100)
    r = saelib.PoolRuns(sc, shape)
    for (K, s), P in P_by_seed.items():
        r.P[(K, s)] = P
    return r


def test_grid_cost_table_ranks_the_grid_that_matches_the_data():
    from poolrep.pooling.autopool import heldout_cost
    from poolrep.pooling.spatial import grid_matrix

    C, H, W = 2, 4, 4
    G2 = grid_matrix(2, C, H, W)
    g = torch.Generator().manual_seed(0)
    z = torch.rand(50, 8, generator=g)
    xa = z @ G2  # data made of 2x2 blocks: the 2x2 grid reconstructs it exactly
    xb = xa + 0.01 * torch.rand(50, 32, generator=g)
    held = [(xa, xb)]
    r = _runs_for({(8, 0): G2.clone()}, (C, H, W), [8], [0])
    t = saelib.grid_cost_table(held, r, [0.0, 1.0], [1, 2, 4])
    by = t.set_index("code")
    assert list(by.index) == ["SP 1x1", "SP 2x2", "SP 4x4", "AP K=8", "random P K=8"]
    assert by.loc["SP 2x2", "lambda=0"] == pytest.approx(heldout_cost(G2, held, 0.0)["scaled"])
    assert by.loc["SP 2x2", "lambda=0"] < by.loc["SP 1x1", "lambda=0"]
    assert by.loc["SP 2x2", "lambda=0"] < by.loc["random P K=8", "lambda=0"]  # the control loses the structure
    assert by.loc["SP 4x4", "features"] == 32


def test_same_size_sp_interpolates_in_log_features():
    n = 8
    c1 = np.zeros((n, 1), bool)
    c2 = np.ones((n, 1), bool)
    correct = {("SP 1x1", "full"): c1, ("SP 2x2", "full"): c2}
    feats = {1: 100, 2: 400}
    v, how = saelib.same_size_sp(correct, "full", feats, 400)
    assert how == "SP 2x2" and v.tolist() == [1.0] * n
    v, how = saelib.same_size_sp(correct, "full", feats, 200)  # halfway between 100 and 400 on a log scale
    assert v == pytest.approx(np.full(n, 0.5)) and how == "0.50 SP 1x1 + 0.50 SP 2x2"
    v, how = saelib.same_size_sp(correct, "full", feats, 800)
    assert v.tolist() == [1.0] * n and "nearest" in how


def test_fair_diffs_pair_each_seed_with_the_same_size_grid():
    n = 40
    rng = np.random.default_rng(0)
    sp2 = rng.random(n) < 0.5
    ap = np.stack([sp2 | (rng.random(n) < 0.3) for _ in range(3)], 1)
    correct = {
        ("SP 1x1", "full"): np.zeros((n, 1), bool),
        ("SP 2x2", "full"): sp2[:, None],
        ("SP 1x1+2x2", "full"): np.ones((n, 1), bool),  # multi-grid rows take no part
        ("AP K=400", "full"): ap,
    }
    sc = saelib.Scale("16px", 16, [400], [0, 1, 2], 100)
    d = saelib.fair_diffs(correct, sc, "full", 100)
    diff, how = d[400]
    assert how == "SP 2x2" and diff.shape == (n, 3)
    np.testing.assert_array_equal(diff, ap.astype(float) - sp2[:, None])
    assert (diff >= 0).all()


def test_paper_on_the_same_size_statistic_from_its_numbers():
    s = saelib.paper_on_fair_statistic()
    assert s[0].startswith("full set: AP K=400 64.6 % against SP rows 63.8-68.4 %")
    assert "[-3.8, +0.8]" in s[0] and "K=1300, K=1600, K=2000, K=2500" in s[0]  # 69.0-69.7 above 68.4
    assert "[+0.1, +4.0]" in s[1] and "K=400, K=800, K=1300, K=1600, K=2000, K=2500" in s[1]


def test_cv_accuracy_on_separable_and_on_noise_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 5))
    y = (x[:, 0] > 0).astype(int)
    acc, weights = saelib.cv_accuracy(x, y, [1.0, 0.01], folds=3)
    assert set(acc) == {0.01, 1.0} and min(acc.values()) > 0.85
    assert set(weights) == {0, 1, 2} and weights[0][1.0].shape == (6, 1)  # per fold and C: (features + 1) x 1
    noise, _ = saelib.cv_accuracy(x, rng.integers(0, 2, 90), [1.0], folds=3)
    assert noise[1.0] < 0.75
    with pytest.raises(ValueError, match="at least one C"):
        saelib.cv_accuracy(x, y, [])


def test_p_reaches_grid_precondition_per_K_and_seed():
    r = _runs_for({}, (2, 4, 4), [8], [0, 1])
    r.info[(8, 0)] = {"heldout_cost": 9.0, "grid_cost": 10.0, "grid": "2x2", "pairs": 100}
    r.info[(8, 1)] = {"heldout_cost": 10.5, "grid_cost": 10.0, "grid": "2x2", "pairs": 100}
    pre = saelib.p_reaches_grid(r)
    assert [c["passed"] for c in pre] == [True, False]
    assert pre[1]["value"] == "10.50 vs 10.00 after 100 fresh pairs"


def test_plateau_is_the_last_relative_fall():
    assert saelib.plateau([10.0, 8.0, 7.92]) == pytest.approx(0.01)
    assert np.isnan(saelib.plateau([3.0]))


# ---------------------------------------------------------------- issue 31: invariance over seeds, the claims


def test_score_items_mean_is_the_score_and_their_spread_the_delta_method():
    from poolrep.metrics.invariance import score_items, score_of

    rng = np.random.default_rng(0)
    near, far = rng.gamma(2.0, 1.0, 500), rng.gamma(5.0, 1.0, 500)
    L = score_items(near, far)
    assert L.mean() == pytest.approx(score_of(near, far))
    # the standard error of mean(L) matches the ratio's over bootstrap resamples of the pairs
    idx = rng.integers(0, 500, (4000, 500))
    boot = score_of(near[idx], far[idx], axis=1)
    assert L.std(ddof=1) / np.sqrt(500) == pytest.approx(boot.std(), rel=0.1)
    with pytest.raises(ValueError, match="infinite"):
        score_items(np.zeros(3), np.ones(3))


def _grey(scores_by_key, n=60, seeds=(0, 1, 2)):
    """A GreyModel whose codes give chosen invariance scores: near = 1, far = score (per pair, plus noise)."""
    rng = np.random.default_rng(1)
    parts = {}
    for key, sc in scores_by_key.items():
        for s in seeds if key != "raw" else [None]:
            near = np.ones(n) + 0.01 * rng.random(n)
            far = sc * near + 0.05 * rng.normal(size=n)
            parts["raw" if key == "raw" else (s, key)] = (near, far)
    P = {(s, lm): np.eye(4) for s in seeds for lm in scores_by_key if lm not in ("raw", "random")}
    return saelib.GreyModel(None, P, parts, 0.03, {})


def test_invariance_claims_over_seeds_and_the_random_P_control():
    from poolrep.papers.autopool.claims import invariance

    p = {
        "grey_seeds": [0, 1, 2],
        "cluster_lam": 2.0,
        "inv_lambdas": [0.0, 10.0, 100.0],
        "profile": "test",
        "gray_hidden": 4,
        "gray_patch": 8,
        "cluster_k": 4,
        "heldout_from": 0.8,
        "seed": 0,
        "stop_rise_frac": 0.25,
    }
    grey = _grey({"raw": 3.0, 0.0: 3.1, 2.0: 5.0, 10.0: 8.0, 100.0: 7.0, "random": 5.0})
    cl = {c.id: c for c in invariance(grey, p, {"grey_held": 60})}
    assert cl["pooling_raises_invariance"].status == "reproduced"
    assert cl["pooling_raises_invariance"].value == pytest.approx(2.0, abs=0.05)
    assert cl["pooling_raises_invariance"].seeds == 3
    # a P no more invariant than its own rows shuffled: summing alone explains the gain
    assert cl["pooling_beats_random_pools"].status in ("inconclusive", "not reproduced")
    assert abs(cl["pooling_beats_random_pools"].value) < 0.1
    assert cl["invariance_rises_with_lambda"].status == "reproduced"
    # a plateau, not a fall: the further rise (-1) is below a quarter of the rise before it (+4.9), at 90 %
    assert cl["invariance_stops_rising"].status == "reproduced"
    assert cl["invariance_stops_rising"].confidence == 0.90 and cl["invariance_stops_rising"].test == "less"
    assert cl["invariance_stops_rising"].value == pytest.approx(-1.0 - 0.25 * 4.9, abs=0.05)
    assert "inv_lambdas" in cl["invariance_rises_with_lambda"].why


def test_orientation_interval_is_the_shared_nested_interval_over_seeds():
    """The orientation claim's pools are nested in the seeds: stats.nested_interval, a t-interval over the seeds'
    means (one implementation for every nested design)."""
    from scipy.stats import t

    from poolrep.stats import nested_interval

    own = [np.array([-0.1, -0.3]), np.array([-0.2, -0.4]), np.array([-0.25, -0.25])]
    shuffled = [np.array([0.0, 0.0]), np.array([0.0]), np.array([0.0, 0.0, 0.0])]
    e = nested_interval(own, shuffled, what="pools")
    per_seed = np.array([-0.2, -0.3, -0.25])
    half = t.ppf(0.975, 2) * np.std(per_seed, ddof=1) / np.sqrt(3)
    assert e.value == pytest.approx(-0.25) and e.hi == pytest.approx(-0.25 + half) and e.seeds == 3
    assert e.items == 6 + 6  # every pool of every seed, both models
    one = nested_interval([np.array([-0.2, -0.2])], what="pools")
    assert one.seeds == 1 and one.lo == one.hi == pytest.approx(-0.2)


def test_ap_vs_sp_claims_judged_only_where_P_reached_the_grid_and_over_seeds():
    from poolrep.papers.autopool.claims import ap_vs_sp

    n = 400
    rng = np.random.default_rng(0)
    sp = {g: rng.random(n) < a for g, a in ((1, 0.4), (2, 0.5), (3, 0.55))}
    ap = np.stack([sp[2] | (rng.random(n) < 0.25) for _ in range(3)], 1)  # AP about 12 points above SP 2x2
    correct = {}
    for setting in ("full", "small"):
        correct.update({(f"SP {g}x{g}", setting): c[:, None] for g, c in sp.items()})
        correct[("AP K=400", setting)] = ap
    r16 = _runs_for({}, (100, 11, 11), [400], [0, 1, 2])
    r32 = saelib.PoolRuns(saelib.Scale("32px", 32, [400], [0], 100), (100, 27, 27))
    for s in (0, 1, 2):
        r16.info[(400, s)] = {"heldout_cost": 130.0, "grid_cost": 140.0, "grid": "2x2", "pairs": 100}
    r32.info[(400, 0)] = {"heldout_cost": 790.0, "grid_cost": 780.0, "grid": "2x2", "pairs": 100}
    correct32 = {k: (v[:, :1] if k[0].startswith("AP") else v) for k, v in correct.items()}
    p = {"hidden": 100, "seed": 0, "profile": "test", "heldout_from": 0.8, "train_small": 1000, "cv_folds": 3}
    sizes = {"test": n, "clips": 7, "train_full": 50000, "train_small": 10000}
    cl = {c.id: c for c in ap_vs_sp({"32px": r32, "16px": r16}, {"32px": correct32, "16px": correct}, p, sizes)}
    assert cl["ap_beats_sp_small_16px"].status == "reproduced" and cl["ap_beats_sp_small_16px"].seeds == 3
    assert cl["ap_beats_sp_small_16px"].value == pytest.approx(100 * (ap.mean() - sp[2].mean()))
    assert "scaled-down replicate" in cl["ap_beats_sp_small_16px"].setting
    # both cells (K=400 on the full and the small set) lie above 0: "most of the time" needs more than half
    most = cl["ap_beats_sp_most_16px"]
    assert most.status == "reproduced" and most.value == most.lo == 1.0 and most.bound == pytest.approx(0.75)
    # the paper-size P stayed above its grid: not testable, whatever its accuracy
    assert cl["ap_beats_sp_small_32px"].status == "not testable here"
    assert (
        cl["ap_beats_sp_small_32px"].reason == "precondition"
        and "790.00 vs 780.00" in cl["ap_beats_sp_small_32px"].verdict
    )
    assert cl["table1_ap400_full"].status == "not testable here"
    r32.info[(400, 0)]["heldout_cost"] = 770.0  # below the grid now, but one seed: still not judged
    cl = {c.id: c for c in ap_vs_sp({"32px": r32}, {"32px": correct32}, p, sizes)}
    assert cl["ap_beats_sp_small_32px"].status == "not testable here" and cl["ap_beats_sp_small_32px"].reason == "scale"
    # one seed is the profile's design, declared before the run: no design error, and what would decide it
    assert not cl["ap_beats_sp_small_32px"].design_error and "seeds of P" in cl["ap_beats_sp_small_32px"].decide
    assert cl["table1_ap400_full"].reason == "stand-in" and cl["table1_ap400_full"].standins


def _train_all_setup(train_procs=1):
    from poolrep.data.framepairs import PairStream

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (12, 34, 34, 3), dtype=np.uint8)]
    model = _tiny_model(size=3, channels=3, hidden=4)
    stream = PairStream(frames, 32, cut_threshold=1e9, span=(0.0, 0.8))
    scs = [saelib.Scale("32px", 32, [16], [0], 20), saelib.Scale("16px", 16, [16, 36], [0, 1], 20)]
    heldp = next(PairStream(frames, 32, 1e9, (0.8, 1.0), seed=1).batches(8, 8))
    held = {sc.name: saelib.feature_batches(heldp, model, sc.side, 8) for sc in scs}
    p = {
        "lam": 1.0,
        "grid_start_pairs": 20,
        "curve_every": 10,
        "curve_pairs": [10],
        "batch_pairs": 5,
        "batch_pairs_check": 10,
        "lr": 0.1,
        "optimizer": "adam",
        "init": "dense",
        "init_members": None,
        "momentum_after": 2,
        "cluster_threshold": 0.5,
        "train_procs": train_procs,
    }
    return stream, model, scs, held, p


def test_train_all_trains_every_P_and_starts_the_grid_job_at_the_grids_best_scale():
    from poolrep.pooling.autopool import heldout_cost
    from poolrep.pooling.spatial import grid_matrix

    stream, model, scs, held, p = _train_all_setup()
    jobs = saelib.pool_jobs(scs, {"32px": (4, 30, 30), "16px": (4, 14, 14)}, p)
    # 32px: one (K, seed) + its grid start; 16px: 2 K x 2 seeds + its grid start + the batch check; longest first
    assert len(jobs) == 1 + 1 + 4 + 1 + 1 and jobs[0].scale == "32px" and jobs[0].kind == "ap"
    assert [j.kind for j in jobs].count("batch") == 1 and next(j for j in jobs if j.kind == "batch").scale == "16px"
    runs, from_grid, recipe = saelib.train_all(stream, model, scs, held, p, "cpu")
    assert set(runs["16px"].P) == {(16, 0), (16, 1), (36, 0), (36, 1)} and runs["32px"].P[(16, 0)].shape == (16, 3600)
    assert set(runs["32px"].checkpoints) == {10}  # the first K and seed keeps its curve_pairs checkpoint
    grid = heldout_cost(grid_matrix((2, 2), 4, 30, 30), held["32px"], 1.0)["scaled"]
    d = from_grid["32px"]
    assert d["start"] == pytest.approx(grid, rel=1e-5)  # the grid at its best scale is where it starts
    assert len(d["curve"]) == 3 and d["pairs"] == 20 and d["end"] != d["start"]
    # the recipe check: the same pairs in 2 steps of 10 instead of 4 of 5, its curve beside the method's
    assert recipe["batch"] == 10 and recipe["method_batch"] == 5 and len(recipe["curve"]) == 3
    assert recipe["curve"][0] == pytest.approx(recipe["method_curve"][0])  # the same start
    assert recipe["timings"]["16px K=16 seed 0 batch"]["steps"] == 2
    assert recipe["timings"]["16px K=16 seed 0 ap"]["steps"] == 4
    # seeds differ: their own starts and pairs
    assert not torch.allclose(runs["16px"].P[(16, 0)], runs["16px"].P[(16, 1)])


def test_train_all_in_worker_processes_matches_the_stage_process():
    stream, model, scs, held, p = _train_all_setup(1)
    scs = scs[1:]
    one, _, _ = saelib.train_all(stream, model, scs, {"16px": held["16px"]}, p, "cpu")
    p["train_procs"] = 2
    two, _, _ = saelib.train_all(stream, model, scs, {"16px": held["16px"]}, p, "cpu")
    for key, P in one["16px"].P.items():  # one torch thread there: the same P to float tolerance
        torch.testing.assert_close(two["16px"].P[key], P, rtol=1e-4, atol=1e-6)


def test_p_table_leaves_the_timings_to_run_json():
    r = _runs_for({}, (2, 4, 4), [8], [0])
    r.info[(8, 0)] = {"K": 8, "heldout_cost": 1.0, "heldout_curve": [2.0, 1.0], "seconds_P": 3.2, "gflops": 90.0}
    t = saelib.p_table(r)
    assert list(t.columns) == ["K", "heldout_cost"]  # a rerun reproduces every number the table keeps
    assert set(saelib.TIMINGS) == {"seconds_P", "seconds_features", "gflops"}


# ---------------------------------------------------------------- issue 43: Fig. 10 over K, C by CV, the diagnosis, speed


def test_most_of_the_time_counts_cells_by_their_intervals():
    from poolrep.papers.autopool.claims import ap_vs_sp, cell_intervals, most_cells

    n = 400
    rng = np.random.default_rng(1)
    sp = {g: rng.random(n) < 0.5 for g in (2, 3)}
    up = np.stack([sp[2] | (rng.random(n) < 0.3) for _ in range(3)], 1)  # AP K=400 well above SP 2x2
    down = np.stack([sp[3] & (rng.random(n) < 0.6) for _ in range(3)], 1)  # AP K=900 well below SP 3x3
    correct = {}
    for setting in ("full", "small"):
        correct.update({(f"SP {g}x{g}", setting): c[:, None] for g, c in sp.items()})
        correct[("AP K=400", setting)], correct[("AP K=900", setting)] = up, down
    r16 = _runs_for({}, (100, 11, 11), [400, 900], [0, 1, 2])
    for K in (400, 900):
        for s in (0, 1, 2):
            r16.info[(K, s)] = {"heldout_cost": 130.0, "grid_cost": 140.0, "grid": "2x2", "pairs": 100}
    fair = {s: saelib.fair_diffs(correct, r16.scale, s, 100) for s in ("full", "small")}
    est, cells = most_cells(cell_intervals(fair, ("full", "small"), [400, 900], 0))
    assert (est.value, est.lo, est.hi) == (0.5, 0.5, 0.5) and len(cells) == 4 and est.seeds == 3
    p = {"hidden": 100, "seed": 0, "profile": "test", "heldout_from": 0.8, "train_small": 1000, "cv_folds": 3}
    sizes = {"test": n, "clips": 7, "train_full": 50000, "train_small": 10000}
    cl = {c.id: c for c in ap_vs_sp({"16px": r16}, {"16px": correct}, p, sizes)}
    most = cl["ap_beats_sp_most_16px"]
    # 2 of 4 cells above 0: at most half, never "most" (more than half: 3 of 4)
    assert most.bound == pytest.approx(2.5 / 4) and most.status == "not reproduced"
    assert "full K=900" in most.why and "at least 3" in most.why


def test_prepare_fits_on_the_training_rows_only():
    rng = np.random.default_rng(0)
    xtr = rng.gamma(2.0, 3.0, (300, 6)).astype(np.float32)
    xte = rng.gamma(2.0, 3.0, (50, 6)).astype(np.float32) + 5
    a, b = saelib.prepare("standardised", xtr, xte)
    assert np.allclose(a.mean(0), 0, atol=1e-5) and np.allclose(a.std(0), 1, atol=1e-3)
    assert b.mean() > 1  # the test rows keep the training rows' mean and scale, not their own
    a, b = saelib.prepare("raw", xtr, xte)
    assert a is xtr and b is xte
    a, b = saelib.prepare("l2", xtr, xte)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5) and np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-5)
    a, _ = saelib.prepare("sqrt_standardised", xtr, xte)
    ref, _ = saelib.prepare("standardised", np.sqrt(xtr), np.sqrt(xte))
    assert np.allclose(a, ref, atol=1e-5)
    a, _ = saelib.prepare("whitened", xtr, xte)
    cov = np.cov(np.asarray(a, dtype=np.float64).T)
    assert np.allclose(cov, np.diag(np.diag(cov)), atol=1e-2) and np.all(np.diag(cov) < 1)  # decorrelated, eps > 0
    with pytest.raises(ValueError, match="unknown preparation"):
        saelib.prepare("minmax", xtr, xte)


def test_choose_C_takes_the_best_cross_validated_C_and_the_smaller_on_a_tie(monkeypatch):
    import poolrep.papers.autopool.experiment as E

    seen = {}
    table = {1e-4: 0.40, 1e-3: 0.52, 1e-2: 0.52, 1e-1: 0.50}

    def fake_cv(x, y, Cs, folds, seed, device, prep, starts=None):
        seen.setdefault("calls", []).append((list(Cs), prep, starts))
        return {c: table(c) if callable(table) else table[c] for c in Cs}, {0: {c: f"W{c:g}" for c in Cs}}

    monkeypatch.setattr(E, "cv_accuracy", fake_cv)
    p = {"svm_C_grid": [1e-4, 1e-3, 1e-2, 1e-1], "cv_folds": 3, "seed": 0}
    best, cv, W0 = E.choose_C(np.zeros((4, 2)), np.zeros(4), p, prep="l2")
    assert best == 1e-3 and cv[1e-2] == 0.52 and W0 == "W0.001" and seen["calls"] == [(p["svm_C_grid"], "l2", None)]
    # a choice on the grid's edge extends the grid a decade at a time, from the edge's weights, up to C_RANGE
    seen.clear()
    table = lambda c: 0.5 + 0.01 * np.log10(c)  # noqa: E731  (accuracy keeps rising with C)
    best, cv, _ = E.choose_C(np.zeros((4, 2)), np.zeros(4), p)
    assert best == pytest.approx(E.C_RANGE[1]) and sorted(cv) == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert seen["calls"][1] == ([pytest.approx(1.0)], "standardised", {0: "W0.1"})
    table = lambda c: 0.5 - 0.01 * np.log10(c)  # noqa: E731  (falling with C: extends down to 1e-6)
    best, cv, _ = E.choose_C(np.zeros((4, 2)), np.zeros(4), p)
    assert best == pytest.approx(1e-6) and len(cv) == 6  # 1e-4 .. 1e-1, then 1e-5 and 1e-6


def test_paired_rate_divides_each_step_by_the_gemm_rate_measured_right_before(monkeypatch):
    from poolrep import bench
    from poolrep.papers.autopool import speed

    gemm = iter([100.0, 200.0, 400.0])
    times = iter([0.5, 0.25, 0.25])
    monkeypatch.setattr(bench, "gemm_gflops", lambda repeats: next(gemm))
    monkeypatch.setattr(bench, "seconds_per_call", lambda step, repeats, warmup: next(times))
    r = speed.paired_rate(lambda: None, gflop=10.0, repeats=3, warmup=0)
    # shares 10/0.5/100 = 0.2, 10/0.25/200 = 0.2, 10/0.25/400 = 0.1
    assert r["of_gemm"] == pytest.approx(0.2) and r["of_gemm_lo"] == pytest.approx(0.1)
    assert r["of_gemm_hi"] == pytest.approx(0.2) and r["ms"] == pytest.approx(250.0)
    assert r["gemm_gflops"] == pytest.approx(200.0) and r["gflops"] == pytest.approx(40.0)
    with pytest.raises(ValueError, match="repeats"):
        speed.paired_rate(lambda: None, 1.0, repeats=0)


def test_speed_table_counts_the_step_and_divides_by_the_measured_gemm_rate():
    sc = saelib.Scale("16px", 16, [8, 16], [0], 20)
    p = {"batch_pairs": 4, "batch_pairs_check": 8, "lam": 1.0, "seed": 0}
    t = saelib.speed_table({"16px": (4, 5, 5)}, [sc], p, repeats=1)
    assert list(zip(t.K, t.batch)) == [(8, 4), (8, 8), (16, 4), (16, 8)]
    assert list(t["method's batch"]) == [True, False, True, False]
    assert np.allclose(t.gflop, 20 * t.batch * t.K * 100 / 1e9)  # the module docstring's 20 B K D
    from poolrep import bench
    from poolrep.papers.autopool import speed

    assert bench.count_flops(speed.p_step(8, 100, 4, 1.0)) == 20 * 4 * 8 * 100  # ... as torch counts the step
    rates = t.attrs["rates"]
    assert rates["threads"] == 1 and (t.of_gemm_lo <= t.of_gemm).all() and (t.of_gemm <= t.of_gemm_hi).all()
    assert np.allclose(t.of_gemm, t.gflops / t.gemm_gflops)  # one repeat: the share of its own GEMM measurement
    shown = saelib.display_speed(t)
    assert shown["of 1-thread GEMM"].str.endswith("%").all() and shown["range"].str.count("%").eq(2).all()
    jobs = saelib.job_table(
        {
            "16px K=8 seed 0 ap": {
                "seconds": 2.0,
                "seconds_P": 1.5,
                "seconds_features": 0.4,
                "gflops": rates["gemm_gflops"] / 2,
                "steps": 10,
            }
        },
        rates,
    )
    assert jobs["of 1-thread GEMM"].tolist() == ["50%"] and jobs.steps.tolist() == [10]


def _diagnosis_inputs(whitened_lo):
    import pandas as pd

    table32 = pd.DataFrame(
        [
            {"method": "AP K=400", "train": "small", "ours": 54.0},
            {"method": "SP 2x2", "train": "small", "ours": 59.0},
        ]
    )
    info = {"K": 400, "grid": "2x2", "heldout_cost": 760.0, "grid_cost": 780.0}
    curve = pd.DataFrame(
        [
            {
                "pairs_seen": n,
                "heldout_cost": c,
                "AP accuracy": a,
                "SP 2x2 accuracy": 59.0,
                "AP - SP": a - 59.0,
                "95% CI": "[x, y]",
            }
            for n, c, a in ((10000, 790.0, 46.0), (100000, 760.0, 54.0))
        ]
    )
    preps = [
        {
            "prep": "standardised",
            "ap_C": 0.01,
            "sp_C": 0.01,
            "ap_accuracy": 54.0,
            "sp_accuracy": 59.0,
            "ap_minus_sp": -5.0,
            "lo": -6.0,
            "hi": -4.0,
        },
        {
            "prep": "whitened",
            "ap_C": 0.01,
            "sp_C": 0.01,
            "ap_accuracy": 57.0,
            "sp_accuracy": 58.0,
            "ap_minus_sp": whitened_lo + 1.0,
            "lo": whitened_lo,
            "hi": whitened_lo + 2.0,
        },
    ]
    return table32, info, curve, preps


def test_diagnosis_names_a_step_only_where_its_interval_clears_ours():
    table, lines = saelib.diagnosis(*_diagnosis_inputs(whitened_lo=-5.5))  # overlaps ours [-6, -4]
    assert len(table) == 2 + 2 + 2 and table["SP (%)"].iloc[0] == 59.0
    assert "inside the paper's SP range" in lines[0] and "below the 2x2 grid" in lines[1]
    assert "still rising" in lines[2] and "no preparation lifts AP - SP" in lines[3]
    assert lines[-1].startswith("Cause: none found")
    _, lines = saelib.diagnosis(*_diagnosis_inputs(whitened_lo=-3.0))  # clears ours
    assert "ZCA-whitened moves AP - SP to -2.0" in lines[3] and lines[-1].startswith("Cause: the preparation")
