"""Tests of the slowfeat stage: L2 group pooling, Eq. 2 and Eq. 1 losses, scene cutting, PR/AUC, toy renderer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from poolrep.data.video import cut_scenes, decorrelation_lag, frame_differences
from poolrep.metrics import pr
from poolrep.papers import slowfeat as sf
from poolrep.papers import slowfeat as toy
from poolrep.pooling.group_l2 import GroupL2Pool

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------------- L2 group pooling


def _loop_group_l2(x, group, kernel, eps):
    n, c, h, w = x.shape
    out = torch.zeros(n, c // group, h // kernel, w // kernel, dtype=torch.float64)
    for a in range(n):
        for g in range(c // group):
            for i in range(h // kernel):
                for j in range(w // kernel):
                    s = 0.0
                    for ch in range(g * group, (g + 1) * group):
                        for u in range(i * kernel, (i + 1) * kernel):
                            for v in range(j * kernel, (j + 1) * kernel):
                                s += float(x[a, ch, u, v]) ** 2
                    out[a, g, i, j] = math.sqrt(s + eps)
    return out


@pytest.mark.parametrize("group,kernel,shape", [(4, 2, (2, 8, 6, 4)), (1, 4, (1, 3, 8, 8)), (2, 1, (3, 4, 3, 5))])
def test_group_l2_matches_loops(group, kernel, shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    pool = GroupL2Pool(group, kernel, eps=1e-8)
    got = pool.pool_map(x)
    ref = _loop_group_l2(x, group, kernel, 1e-8)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)
    assert pool(x).shape == (shape[0], ref[0].numel())
    torch.testing.assert_close(pool(x), ref.flatten(1), rtol=1e-10, atol=1e-10)


def test_group_l2_vector_and_errors():
    h = torch.tensor([[3.0, 4.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]])
    got = GroupL2Pool(4, eps=0.0).pool_vector(h)
    torch.testing.assert_close(got, torch.tensor([[5.0, 1.0]]))
    with pytest.raises(ValueError, match="groups of 4"):
        GroupL2Pool(4).pool_map(torch.zeros(1, 6, 4, 4))
    with pytest.raises(ValueError, match="not divisible"):
        GroupL2Pool(2, 3).pool_map(torch.zeros(1, 4, 4, 4))
    with pytest.raises(ValueError, match="N x C x H x W"):
        GroupL2Pool(2)(torch.zeros(4, 4))
    with pytest.raises(ValueError, match=">= 1"):
        GroupL2Pool(0)
    # gradient at 0 is finite thanks to eps
    x = torch.zeros(1, 4, 2, 2, requires_grad=True)
    GroupL2Pool(4, 2).pool_map(x).sum().backward()
    assert torch.isfinite(x.grad).all()


# ----------------------------------------------------------------------------------- Eq. 2


def _identity_fc(dim=4, group=2):
    m = sf.FCAutoEncoder(dim, dim, group)
    with torch.no_grad():
        m.enc.weight.copy_(torch.eye(dim))
        m.enc.bias.zero_()
        m.dec.weight.copy_(torch.eye(dim))
    m.pool.eps = 0.0
    return m


def test_slow_loss_hand_case():
    m = _identity_fc()
    x1 = torch.tensor([[3.0, 4.0, 0.0, -1.0]])  # h1 = [3, 4, 0, 0]; pooled [5, 0]
    x2 = torch.tensor([[0.0, 1.0, 2.0, 0.0]])  # h2 = [0, 1, 2, 0]; pooled [1, 2]
    loss, parts = sf.slow_loss(m, x1, x2, alpha=0.5, beta=2.0)
    # reconstruction: x1 - h1 = [0,0,0,-1] -> 1; x2 is reproduced -> 0
    assert parts["rec"] == pytest.approx(1.0)
    assert parts["sparsity"] == pytest.approx(7.0 + 3.0)  # |h1|_1 + |h2|_1
    assert parts["slow"] == pytest.approx(abs(5 - 1) + abs(0 - 2))
    assert loss.item() == pytest.approx(1.0 + 0.5 * 10.0 + 2.0 * 6.0)
    # group sparsity replaces |h|_1 by the pooled norms: (5 + 0) + (1 + 2)
    _, parts_g = sf.slow_loss(m, x1, x2, alpha=1.0, beta=0.0, sparsity="group")
    assert parts_g["sparsity"] == pytest.approx(8.0)
    with pytest.raises(ValueError, match="sparsity"):
        sf.slow_loss(m, x1, x2, 1.0, 1.0, sparsity="l0")
    with pytest.raises(ValueError, match="differ in shape"):
        sf.slow_loss(m, x1, x2[:, :3], 1.0, 1.0)


def test_slow_loss_is_batch_mean_and_conv_shapes():
    torch.manual_seed(0)
    m = sf.ConvAutoEncoder(3, 8, 5, 4, 2)
    x1, x2 = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    full, _ = sf.slow_loss(m, x1, x2, 0.1, 2.0)
    each = [sf.slow_loss(m, x1[i : i + 1], x2[i : i + 1], 0.1, 2.0)[0].item() for i in range(4)]
    assert full.item() == pytest.approx(np.mean(each), rel=1e-5)
    assert m.features(x1).shape == (4, 2, 4, 4)
    norms = m.atoms().flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(8))
    with pytest.raises(ValueError, match="odd kernel"):
        sf.ConvAutoEncoder(3, 8, 4, 4, 2)


def test_training_reduces_loss():
    rng = np.random.default_rng(0)
    data = torch.from_numpy(rng.normal(size=(64, 2, 16)).astype(np.float32))
    torch.manual_seed(0)
    m = sf.FCAutoEncoder(16, 16, 4)
    hist = sf.train_autoencoder(m, data, None, sf.TrainCfg(steps=40, batch=32, lr=1e-2, alpha=0.01, beta=0.1))
    assert np.mean([h["loss"] for h in hist[-5:]]) < np.mean([h["loss"] for h in hist[:5]])


# ----------------------------------------------------------------------------------- Eq. 1 (DrLIM)


def test_drlim_hand_pairs():
    za = torch.tensor([[0.0, 0.0]])
    zp = torch.tensor([[1.0, 1.0]])  # ||.||^2 = 2
    zn = torch.tensor([[[0.5, 0.0], [3.0, 4.0], [0.0, 0.0], [0.0, 2.0], [1.0, 0.0]]])  # distances .5, 5, 0, 2, 1
    loss, parts = sf.drlim_loss(za, zp, zn, margin=2.0)
    neg = 1.5**2 + 0 + 2.0**2 + 0 + 1.0**2
    assert parts["pos"] == pytest.approx(2.0)
    assert parts["neg"] == pytest.approx(neg)
    assert loss.item() == pytest.approx(2.0 + neg)
    with pytest.raises(ValueError, match="B x M"):
        sf.drlim_loss(za, zp, torch.zeros(1, 2), 1.0)


def test_negatives_come_from_other_scenes():
    scene = np.repeat(np.arange(5), 4)
    rng = np.random.default_rng(0)
    anchors = np.arange(20)
    neg = sf.random_negatives(scene, anchors, 6, rng)
    assert neg.shape == (20, 6)
    assert not (scene[neg] == scene[anchors][:, None]).any()
    with pytest.raises(ValueError, match="two scenes"):
        sf.random_negatives(np.zeros(5, int), np.arange(5), 5, rng)
    pairs = sf.temporal_pairs(np.array([0, 0, 0, 1, 1, 2]))
    np.testing.assert_array_equal(pairs, [[0, 1], [1, 2], [3, 4]])


def test_greedy_stack_and_supervised_shapes():
    torch.manual_seed(0)
    x = torch.randn(12, 3, 16, 16)
    scene = np.repeat(np.arange(4), 3)
    specs = sf.layer_specs(8, 5, 4, 2, 8, 3, 1, 4)
    for method in ("slow", "drlim"):
        cfgs = [sf.TrainCfg(steps=2, batch=4, alpha=0.1, beta=1.0, negatives=5)] * 2
        layers, hists = sf.train_greedy(x, scene, specs, cfgs, method)
        f1, f2 = sf.stack_features(layers, x)
        assert f1.shape == (12, 2 * 8 * 8) and f2.shape == (12, 8 * 2 * 2)
        assert len(hists[0]) == 2
    with pytest.raises(ValueError, match="method"):
        sf.train_greedy(x, scene, specs, cfgs, "pca")
    net = sf.SupervisedNet(specs, n_classes=3, size=16)
    assert net(x).shape == (12, 3)
    assert [f.shape[1:] for f in net.stage_features(x)] == [(2, 8, 8), (8, 2, 2)]
    # the paper's default shapes: 4,096-d and 1,024-d pooled outputs at 32x32
    d = sf.SupervisedNet()
    f = d.stage_features(torch.zeros(1, 3, 32, 32))
    assert f[0][0].numel() == 4096 and f[1][0].numel() == 1024


def test_patch_pairs_same_location():
    frames = np.zeros((4, 30, 40), np.uint8)
    frames[:, 10:15, 10:15] = 200  # a static square: both patches of a pair are equal
    p = sf.patch_pairs(frames, np.array([0, 0, 1, 1]), 50, 20, np.random.default_rng(0))
    assert p.shape == (50, 2, 400)
    np.testing.assert_allclose(p[:, 0], p[:, 1], atol=1e-6)
    np.testing.assert_allclose(p.mean(axis=2), 0, atol=1e-5)
    with pytest.raises(ValueError, match="larger"):
        sf.patch_pairs(frames, np.array([0, 0, 1, 1]), 5, 31, np.random.default_rng(0))


# ----------------------------------------------------------------------------------- scene cutting


def _synthetic_video(lengths, seed=0):
    """Scenes of constant random colour plus small noise; a cut between scenes changes every pixel a lot."""
    rng = np.random.default_rng(seed)
    out = []
    for i, n in enumerate(lengths):
        base = np.full((8, 8, 3), 40 + 170 * (i % 2), np.int16)
        out.append(np.clip(base + rng.integers(-3, 4, size=(n, 8, 8, 3)), 0, 255))
    return np.concatenate(out).astype(np.uint8)


def test_cut_scenes_known_cuts():
    v = _synthetic_video([5, 12, 1, 7])
    d = frame_differences(v)
    assert len(d) == len(v) - 1 and d.max() > 100 and np.sort(d)[-4] < 5
    scenes = cut_scenes(v, threshold=50, min_len=2, max_len=40)
    assert scenes == [(0, 5), (5, 17), (18, 25)]  # the 1-frame scene (17, 18) is dropped
    # long scenes are split into max_len chunks, short remainders dropped
    assert cut_scenes(v, threshold=50, min_len=2, max_len=5) == [
        (0, 5),
        (5, 10),
        (10, 15),
        (15, 17),
        (18, 23),
        (23, 25),
    ]
    assert cut_scenes(v, threshold=50, min_len=3, max_len=5) == [(0, 5), (5, 10), (10, 15), (18, 23)]
    assert cut_scenes(v[:1], threshold=50) == []
    # with a gap, segments of a long shot are separated by frames that belong to no scene
    assert cut_scenes(v, threshold=50, min_len=2, max_len=4, gap=2) == [(0, 4), (5, 9), (11, 15), (18, 22)]
    with pytest.raises(ValueError, match="gap"):
        cut_scenes(v, threshold=50, gap=-1)


def test_decorrelation_lag_is_read_off_the_frames():
    """A slow drift decorrelates later than fast noise; a constant clip never gets there (the cap)."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (16, 16, 3)).astype(np.float64)
    noise = rng.integers(0, 255, (200, 16, 16, 3)).astype(np.float64)
    w = np.linspace(0, 1, 200)[:, None, None, None]
    drift = ((1 - w) * base + w * noise[-1]).astype(np.uint8)  # moves steadily from one image to another
    fast = noise.astype(np.uint8)  # every frame unrelated to the next
    assert decorrelation_lag(fast, 40) == 1
    lag = decorrelation_lag(drift, 200)
    # random pairs differ on average by a third of the full drift: half of that is reached at about 1/6 of 199
    assert 25 <= lag <= 45
    assert decorrelation_lag(np.repeat(base[None].astype(np.uint8), 50, 0), 20) == 20


# ----------------------------------------------------------------------------------- PR / AUC


def test_auc_equals_sklearn_average_precision_on_full_ranking():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    db = rng.normal(size=(60, 8))
    q = rng.normal(size=(5, 8))
    labels = rng.integers(0, 3, 60)
    qlab = rng.integers(0, 3, 5)
    res = pr.class_pr(q, qlab, db, labels, k=60, recall_base="all")
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    dn = db / np.linalg.norm(db, axis=1, keepdims=True)
    ref = [average_precision_score(labels == qlab[i], qn[i] @ dn.T) for i in range(5)]
    np.testing.assert_allclose(res.per_query_auc, ref, rtol=1e-10)
    assert res.auc == pytest.approx(np.mean(ref))
    # top_k base with k = whole database is the same recall (every relevant item can be retrieved)
    assert pr.class_pr(q, qlab, db, labels, k=60, recall_base="top_k").auc == pytest.approx(res.auc)


def test_pr_hand_cases_truncated():
    rel = np.array([[1, 0, 1, 0]])
    # n = 4 relevant in the database, 'all': R = .25, .25, .5, .5; P = 1, .5, 2/3, .5 -> area .25*1 + .25*2/3
    r = pr.pr_from_relevance(rel, [4], "all")
    assert r.auc == pytest.approx(0.25 + 0.25 * 2 / 3)
    np.testing.assert_allclose(r.precision, [1, 0.5, 2 / 3, 0.5])
    np.testing.assert_allclose(r.recall, [0.25, 0.25, 0.5, 0.5])
    # 'top_k': n = min(4, 4) = 4 here too; with k = 2 the base is 2: R = .5, .5 -> area .5
    r2 = pr.pr_from_relevance(rel[:, :2], [4], "top_k")
    assert r2.auc == pytest.approx(0.5)
    # two queries: mean of areas and mean curves
    r3 = pr.pr_from_relevance(np.array([[1, 1], [0, 1]]), [2, 1], "all")
    assert r3.auc == pytest.approx((1.0 + 0.5) / 2)
    np.testing.assert_allclose(r3.recall, [0.25, 1.0])
    # the top-40 protocol: a query whose 5 relevant items are among 40 neighbours reaches recall 1 only with
    # 'all' (base 5) or 'top_k' (base min(5, 40) = 5); with 5,000 relevant, 'all' ends at 40/5,000 at best
    rel40 = np.zeros((1, 40), bool)
    rel40[0, :40] = True
    assert pr.pr_from_relevance(rel40, [5000], "all").recall[-1] == pytest.approx(40 / 5000)
    assert pr.pr_from_relevance(rel40, [5000], "top_k").recall[-1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="recall_base"):
        pr.pr_from_relevance(rel, [4], "retrieved")  # removed: its base depended on the ranking being scored
    with pytest.raises(ValueError, match="at least one relevant"):
        pr.pr_from_relevance(rel, [0], "all")


def test_chance_level_of_a_random_ranking():
    # every item relevant: any ranking is perfect; half relevant, whole list: the expected AP is about 0.5
    assert pr.chance_auc([9], 9, k=9, recall_base="all") == pytest.approx(1.0)
    assert pr.chance_auc([50], 100, k=100, draws=400) == pytest.approx(0.5, abs=0.03)
    # 4 relevant among 1,000, top 40, recall over all 4: E[AUC] = sum_k dR_k P_k ~ (40/1000) * (4/1000) x ...
    low = pr.chance_auc([4] * 20, 1000, k=40)
    assert 0 <= low < 0.01
    # a real ranking that puts the relevant items first is far above chance
    assert pr.pr_from_relevance(np.array([[1, 1, 1, 1] + [0] * 36]), [4], "all").auc == pytest.approx(1.0)


def test_temporal_protocol_hand_case():
    # scenes 0 (frames 0-2) and 1 (frames 3-4); features on a line so the ranking is known
    f = np.array([[1, 0], [1, 0.1], [1, 0.2], [0, 1], [0.1, 1]], float)
    scene = np.array([0, 0, 0, 1, 1])
    r = pr.temporal_pr(f, scene)
    # queries: middle frames 1 and 4; query 1's neighbours: 0 or 2 first, then the other, then scene 1
    assert set(r.ranks[0][:2]) == {0, 2} and 1 not in r.ranks[0]
    assert r.ranks[1][0] == 3
    assert r.auc == pytest.approx(1.0)
    # a wrong neighbour first halves the first query's precision
    f2 = f.copy()
    f2[3] = [1, 0.1]
    r2 = pr.temporal_pr(f2, scene)
    assert r2.per_query_auc[0] == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    with pytest.raises(ValueError, match="scene ids"):
        pr.temporal_pr(f, scene[:3])


def test_cosine_neighbours_errors_and_exclusion():
    d = np.eye(3)
    got = pr.cosine_neighbours(d, d, 2, exclude=np.array([0, 1, 2]))
    assert (got != np.arange(3)[:, None]).all()
    with pytest.raises(ValueError, match="k="):
        pr.cosine_neighbours(d, d, 3, exclude=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="Q x D"):
        pr.cosine_neighbours(d, np.eye(4), 1)


# ----------------------------------------------------------------------------------- toy


def test_toy_render_changes_with_each_angle():
    a = toy.render(0, 0, 32)
    assert a.shape == (32, 32) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1 and a.max() > 0.2
    assert np.abs(toy.render(30, 0, 32) - a).mean() > 0.01
    assert np.abs(toy.render(0, 30, 32) - a).mean() > 0.01
    np.testing.assert_allclose(toy.rotation(20, 35) @ toy.rotation(20, 35).T, np.eye(3), atol=1e-12)
    imgs, ang = toy.render_grid(3, 10.0, 16)
    assert imgs.shape == (9, 16, 16) and tuple(ang[5]) == (10.0, 20.0)
    pairs, ids = sf.grid_pairs_and_ids(3, 3)
    assert len(pairs) == 12 and len(np.unique(ids)) == 9
    with pytest.raises(ValueError, match="size"):
        toy.render(0, 0, 4)
