"""Entropy pooling (Wan et al. 2019), the attention baseline, the pooling heads and their training loop
(poolrep.heads), and the small CIFAR net's pieces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from poolrep import heads
from poolrep.metrics.classification import accuracy, correct, predict
from poolrep.papers import entropy as cnn
from poolrep.pooling.attention import SpatialAttentionPool
from poolrep.pooling.entropy import EntropyPool, entropy_from_logits, entropy_from_probs, entropy_weights


def _fc(d=4, c=3, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(d, c)


def _loop_reference(x, fc, weighting, temperature=1.0, eps=1e-6):
    """Slow per-image, per-location reference of EntropyPool, in float64."""
    n, d, h, w = x.shape
    W, b = fc.weight.double(), fc.bias.double()
    c = W.shape[0]
    out = torch.zeros(n, d, dtype=torch.float64)
    for k in range(n):
        hs = []
        for i in range(h):
            for j in range(w):
                z = W @ x[k, :, i, j].double() + b
                p = torch.softmax(z, 0)
                hs.append(float(-sum(pc * math.log(pc) for pc in p.tolist() if pc > 0)))
        hs = np.array(hs)
        if weighting == "linear":
            s = np.maximum(math.log(c) - hs, 0) + eps
            wt = s / s.sum()
        elif weighting == "unnormalised":  # 1 - H / log C per location, features averaged
            wt = np.maximum(1 - hs / math.log(c), 0) / (h * w)
        else:  # the temperature is in units of log C (the maximum entropy)
            e = np.exp(-hs / (temperature * math.log(c)))
            wt = e / e.sum()
        feats = x[k].double().reshape(d, h * w)
        out[k] = feats @ torch.from_numpy(wt)
    return out


@pytest.mark.parametrize("weighting,t", [("linear", 1.0), ("softmax", 1.0), ("softmax", 0.3), ("unnormalised", 1.0)])
def test_matches_loop_reference(weighting, t):
    fc = _fc(5, 4, seed=1)
    x = torch.randn(3, 5, 3, 4)
    pool = EntropyPool(fc, weighting=weighting, temperature=t)
    got = pool(x).double()
    ref = _loop_reference(x, fc, weighting, t)
    assert got.shape == (3, 5)
    assert torch.allclose(got, ref, atol=1e-5)


@pytest.mark.parametrize("weighting", ["linear", "softmax"])
def test_uniform_predictions_give_uniform_weights(weighting):
    fc = _fc(4, 3)
    with torch.no_grad():
        fc.weight.zero_()
        fc.bias.zero_()  # every location predicts the uniform distribution
    x = torch.randn(2, 4, 3, 5)
    pool = EntropyPool(fc, weighting=weighting)
    w = pool.weights(x)
    assert torch.allclose(w, torch.full_like(w, 1 / 15), atol=1e-6)
    assert torch.allclose(pool.entropy(x), torch.full((2, 3, 5), math.log(3)), atol=1e-6)
    assert torch.allclose(pool(x), x.mean(dim=(2, 3)), atol=1e-5)  # = global average pooling


@pytest.mark.parametrize("weighting,t", [("linear", 1.0), ("softmax", 0.1)])
def test_one_confident_location_dominates(weighting, t):
    fc = nn.Linear(2, 3)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[50.0, 0.0], [0.0, 0.0], [0.0, 0.0]]))
        fc.bias.zero_()
    x = torch.zeros(1, 2, 4, 4)
    x[0, 0, 2, 1] = 1.0  # only here is class 0 predicted with confidence; elsewhere p is uniform
    x[0, 1] = torch.randn(4, 4)  # channel 1 does not change the prediction
    pool = EntropyPool(fc, weighting=weighting, temperature=t)
    w = pool.weights(x)[0]
    assert w.argmax() == 2 * 4 + 1
    assert w[2, 1] > 0.99
    assert torch.allclose(pool(x)[0], x[0, :, 2, 1], atol=0.02)


def test_weights_fall_as_entropy_rises():
    h = torch.tensor([[0.0, 0.3, 0.9, math.log(4)]])
    for weighting in ("linear", "softmax"):
        w = entropy_weights(h, 4, weighting)[0]
        assert torch.all(w[:-1] >= w[1:])
        assert torch.isclose(w.sum(), torch.tensor(1.0))
    assert entropy_weights(h, 4, "linear")[0, -1] < 1e-5  # a maximally uncertain location gets ~0 weight


@pytest.mark.parametrize("weighting", ["linear", "softmax"])
def test_gradients_flow_to_classifier_weights(weighting):
    fc = _fc(6, 4)
    pool = EntropyPool(fc, weighting=weighting)
    x = torch.randn(2, 6, 3, 3, requires_grad=True)
    # gradient through the weights alone: a loss on the pooled feature that does not use fc downstream
    pool(x).pow(2).sum().backward()
    assert fc.weight.grad is not None and fc.weight.grad.abs().sum() > 0
    assert fc.bias.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0
    fc.zero_grad()
    EntropyPool(fc, weighting=weighting, detach_weights=True)(x).pow(2).sum().backward()
    assert fc.weight.grad is None or fc.weight.grad.abs().sum() == 0


def test_head_shares_classifier_parameters():
    head = heads.PoolHead("entropy_softmax", 8, 5)
    assert head.pool.classifier is head.fc
    assert len(list(head.parameters())) == 2  # weight and bias, counted once
    out = head(torch.randn(3, 8, 4, 4))
    assert out.shape == (3, 5)
    out.sum().backward()
    assert head.fc.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("shape", [(1, 7, 1, 1), (5, 7, 6, 6), (16, 7, 8, 3)])
def test_shapes_on_batches(shape):
    fc = _fc(7, 10)
    x = torch.randn(*shape)
    for weighting in ("linear", "softmax"):
        pool = EntropyPool(fc, weighting=weighting)
        assert pool(x).shape == shape[:2]
        w = pool.weights(x)
        assert w.shape == (shape[0], shape[2], shape[3])
        assert torch.allclose(w.sum(dim=(1, 2)), torch.ones(shape[0]), atol=1e-5)
        assert (w >= 0).all()
    # batch items are pooled independently
    assert torch.allclose(EntropyPool(fc)(x)[:1], EntropyPool(fc)(x[:1]), atol=1e-6)


def test_numerically_safe_at_zero_probability():
    fc = nn.Linear(2, 3)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1e4, 0.0], [-1e4, 0.0], [0.0, 0.0]]))
        fc.bias.zero_()
    x = torch.randn(2, 2, 3, 3) * 10
    x.requires_grad_(True)
    for weighting in ("linear", "softmax"):
        pool = EntropyPool(fc, weighting=weighting)
        z = pool.location_scores(x)
        assert (torch.softmax(z, 1) == 0).any()  # saturated: exact zeros occur
        h = pool.entropy(x)
        assert torch.isfinite(h).all() and (h >= 0).all()
        out = pool(x)
        assert torch.isfinite(out).all()
        fc.zero_grad()
        x.grad = None
        out.sum().backward()
        assert torch.isfinite(fc.weight.grad).all() and torch.isfinite(x.grad).all()
    # the probability form: 0 log 0 = 0, value and gradient
    p = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]], requires_grad=True)
    h = entropy_from_probs(p, dim=1)
    assert torch.allclose(h, torch.tensor([0.0, math.log(2), math.log(3)]), atol=1e-6)
    h.sum().backward()
    assert torch.isfinite(p.grad).all()
    # logits form agrees with the probability form away from zero
    z = torch.randn(4, 6)
    assert torch.allclose(entropy_from_logits(z), entropy_from_probs(torch.softmax(z, 1)), atol=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        entropy_from_probs(torch.tensor([[1.5, -0.5]]))


def test_bad_inputs_raise():
    fc = _fc(4, 3)
    pool = EntropyPool(fc)
    with pytest.raises(ValueError, match="N x C x H x W"):
        pool(torch.randn(2, 4, 9))
    with pytest.raises(ValueError, match="channels"):
        pool(torch.randn(2, 5, 3, 3))
    with pytest.raises(ValueError, match="unknown weighting"):
        EntropyPool(fc, weighting="cubic")
    with pytest.raises(ValueError, match="temperature"):
        EntropyPool(fc, weighting="softmax", temperature=0)
    with pytest.raises(ValueError, match="nn.Linear"):
        EntropyPool(nn.Conv2d(4, 3, 1))
    with pytest.raises(ValueError, match="unknown weighting"):
        entropy_weights(torch.zeros(1, 4), 3, "cubic")
    with pytest.raises(ValueError, match="N x L"):
        entropy_weights(torch.zeros(4), 3)
    with pytest.raises(ValueError, match="unknown pooling"):
        heads.PoolHead("median", 4, 3)
    att = SpatialAttentionPool(4)
    with pytest.raises(ValueError, match="N x C x H x W"):
        att(torch.randn(4, 3))
    with pytest.raises(ValueError, match="channels"):
        att(torch.randn(1, 3, 2, 2))
    with pytest.raises(ValueError, match="images"):
        cnn.SmallResNet()(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="labels"):
        heads.train(
            heads.PoolHead("gap", 4, 3),
            torch.randn(5, 4, 2, 2),
            torch.zeros(4, dtype=torch.long),
            epochs=1,
            batch_size=2,
            lr=0.1,
            images=False,
        )


def test_attention_pool_matches_loop_and_starts_as_gap():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 4, 4)
    att = SpatialAttentionPool(5)
    assert torch.allclose(att(x), x.mean(dim=(2, 3)), atol=1e-6)  # zero init: uniform weights
    with torch.no_grad():
        att.score.weight.normal_()
        att.score.bias.fill_(0.3)
    got = att(x)
    v, c = att.score.weight.detach().view(-1), att.score.bias.item()
    for k in range(3):
        a = torch.tensor([[float(v @ x[k, :, i, j]) + c for j in range(4)] for i in range(4)]).flatten()
        wt = torch.exp(a - a.max()) / torch.exp(a - a.max()).sum()
        ref = (x[k].reshape(5, 16) * wt).sum(1)
        assert torch.allclose(got[k], ref, atol=1e-5)


def test_cam_is_gap_logit_decomposition():
    head = heads.PoolHead("gap", 6, 4)
    maps = torch.randn(3, 6, 5, 5)
    cls = torch.tensor([0, 3, 1])
    cam = head.cam(maps, cls)
    logits = head(maps)
    assert cam.shape == (3, 5, 5)
    assert torch.allclose(cam.mean(dim=(1, 2)) + head.fc.bias[cls], logits[torch.arange(3), cls], atol=1e-5)
    assert head.location_weights(maps) is None


def test_entropy_head_location_weights_are_the_linear_entropy_weights():
    torch.manual_seed(1)
    head = heads.PoolHead("entropy_linear", 6, 4)
    maps = torch.randn(3, 6, 5, 5)
    got = head.location_weights(maps)
    assert got.shape == (3, 5, 5)
    # numpy, float64: scores W f + b at each location, their entropy H, w = (log 4 - H + 1e-6) / sum over the map
    W, b = head.fc.weight.detach().double().numpy(), head.fc.bias.detach().double().numpy()
    z = np.einsum("cd,ndhw->nchw", W, maps.double().numpy()) + b[None, :, None, None]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    H = -(p * np.log(p)).sum(1)
    s = np.maximum(np.log(4) - H, 0) + 1e-6
    ref = s / s.sum(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(got.detach().numpy(), ref, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got.detach().sum(dim=(1, 2)).numpy(), [1.0, 1.0, 1.0], rtol=1e-5)
    # the head pools with exactly these weights
    pooled = (maps * got[:, None]).sum(dim=(2, 3))
    torch.testing.assert_close(head.fc(pooled), head(maps), rtol=1e-5, atol=1e-5)


def test_small_resnet_shapes_and_augment():
    net = cnn.cifar_net("entropy_linear", n_classes=10)
    x = torch.rand(2, 3, 32, 32)
    assert net.body(x).shape == (2, 64, 8, 8)
    assert net(x).shape == (2, 10)
    # the stride-2 stem (cpu profile) halves every later side: 64 px gives 8 x 8 maps, the 128 px canvases 16 x 16
    fast = cnn.cifar_net("gap", n_classes=10, stem_stride=2)
    assert fast.body(x).shape == (2, 64, 4, 4)
    assert fast.body(torch.rand(1, 3, 64, 64)).shape == (1, 64, 8, 8)
    assert fast.body(torch.rand(1, 3, 128, 128)).shape == (1, 64, 16, 16)
    assert fast.body.stem[0].stride == (2, 2) and net.body.stem[0].stride == (1, 1)
    with pytest.raises(ValueError, match="stem_stride"):
        cnn.SmallResNet(stem_stride=3)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = heads.augment(x, g1), heads.augment(x, g2)
    assert a.shape == x.shape and torch.equal(a, b)  # same seed, same crops/flips
    # with zero padding off the crop is the identity or a flip
    g = torch.Generator().manual_seed(0)
    y = heads.augment(x, g, pad=0)
    for k in range(2):
        assert torch.equal(y[k], x[k]) or torch.equal(y[k], x[k].flip(-1))


def test_training_is_deterministic_and_learns():
    torch.manual_seed(0)
    # separable toy maps: class k has a bump in channel k at a random location
    n, c = 60, 3
    y = torch.arange(n) % c
    x = torch.randn(n, 4, 3, 3) * 0.1
    gen = torch.Generator().manual_seed(1)
    pos = torch.randint(0, 9, (n,), generator=gen)
    x.view(n, 4, 9)[torch.arange(n), y, pos] += 3.0
    accs, curves = [], []
    for _ in range(2):
        torch.manual_seed(5)
        head = heads.PoolHead("entropy_softmax", 4, c)
        curves.append(
            heads.train(
                head, x, y, epochs=15, batch_size=16, lr=0.5, seed=7, images=False, evaluate=lambda m: accuracy(m, x, y)
            )
        )
        accs.append(accuracy(head, x, y))
    assert curves[0] == curves[1]  # same seed, same numbers, every epoch
    assert curves[0]["loss"][-1] < curves[0]["loss"][0]
    assert len(curves[0]["eval"]) == 15 and curves[0]["eval"][-1] == accs[0] > 0.9


def test_eval_every_evaluates_every_kth_and_the_last_epoch_without_changing_training():
    x = torch.randn(40, 4, 3, 3)
    y = torch.arange(40) % 2
    calls = []

    def evaluate(m):
        calls.append(1)
        return float(len(calls))  # the k-th evaluation returns k

    def run(**kw):
        torch.manual_seed(5)
        head = heads.PoolHead("gap", 4, 2)
        return heads.train(head, x, y, epochs=7, batch_size=8, lr=0.1, seed=3, images=False, evaluate=evaluate, **kw)

    every = run()
    calls.clear()
    sparse = run(eval_every=3)
    # epochs 3, 6 and the last (7) are evaluated, in that order; the others are NaN
    assert [e if e == e else None for e in sparse["eval"]] == [None, None, 1.0, None, None, 2.0, 3.0]
    assert len(calls) == 3
    # evaluating is read-only: the training losses are the same whether or not an epoch was evaluated
    assert sparse["loss"] == every["loss"]
    with pytest.raises(ValueError, match="eval_every"):
        run(eval_every=0)


def test_upsample_and_weight_stats():
    m = torch.zeros(2, 3, 3)
    m[0, 1, 1] = 1.0
    m[1] = 1.0 / 9
    up = cnn.upsample(m, (12, 12))
    assert up.shape == (2, 12, 12) and up.min() >= 0 and up.max() <= 1
    assert up[0].max() == pytest.approx(1.0)
    s = cnn.weight_stats(m)
    assert s["max_weight"] == pytest.approx((1 + 1 / 9) / 2)
    assert s["rel_entropy"] == pytest.approx(0.5, abs=1e-5)


def test_softmax_temperature_is_scaled_by_log_c():
    """T is in units of the maximum entropy, so the same T weights 10 and 1,000 classes alike: locations whose
    entropies are the same fractions of log C get the same weights."""
    frac = torch.tensor([[0.1, 0.5, 0.9, 0.3]])
    w10 = entropy_weights(frac * math.log(10), 10, "softmax", temperature=0.5)
    w1000 = entropy_weights(frac * math.log(1000), 1000, "softmax", temperature=0.5)
    assert torch.allclose(w10, w1000, atol=1e-6)
    u = entropy_weights(frac * math.log(10), 10, "unnormalised")
    assert torch.allclose(u, 1 - frac) and not torch.allclose(u.sum(1), torch.ones(1))


def test_label_smoothing_reaches_the_loss():
    """The recipe's label smoothing reaches the loss: a head fitted with smoothing 0.2 reports a larger final
    training loss than the same fit without it (its targets are never one-hot), and still separates the toy data."""
    torch.manual_seed(0)
    n, c = 60, 3
    y = torch.arange(n) % c
    x = torch.randn(n, 4, 3, 3) * 0.1
    x[torch.arange(n), y] += 3.0
    out = {}
    for ls in (0.0, 0.2):
        torch.manual_seed(5)
        head = heads.PoolHead("gap", 4, c)
        out[ls] = heads.train(head, x, y, epochs=10, batch_size=16, lr=0.5, seed=7, images=False, label_smoothing=ls)
        assert accuracy(head, x, y) == 1.0
    # with smoothing eps over C classes the loss cannot go below the targets' entropy
    p_true = 1 - 0.2 + 0.2 / c
    floor = -(p_true * math.log(p_true) + (c - 1) * (0.2 / c) * math.log(0.2 / c))
    assert out[0.0]["loss"][-1] < 0.1 < floor - 0.05 < out[0.2]["loss"][-1]


def ctl(standard, longer):
    """A control pooling's hits as train_all returns them: test items x seeds, standard and longer runs."""
    col = lambda a: a if np.ndim(a) == 2 else np.asarray(a)[:, None]
    return {"standard": col(standard), "longer": col(longer)}


def test_convergence_control_is_the_paired_gain_of_the_longer_run():
    rng = np.random.default_rng(0)
    base = (rng.random(400) < 0.5).astype(float)
    # the longer run: the same items right, plus 80 of the wrong ones (a gain of 20 points)
    longer = base.copy()
    longer[np.flatnonzero(base == 0)[:80]] = 1
    conv = cnn.convergence({"hits": {"gap": ctl(base, longer), "entropy_linear": ctl(base, base)}})
    assert list(conv) == ["gap", "entropy_linear"]
    est = conv["gap"]
    assert est.value == pytest.approx(20.0)
    assert 15 < est.lo < 20 < est.hi < 25  # paired: only the 80 changed items vary
    same = conv["entropy_linear"]
    assert same.value == same.lo == same.hi == 0.0
    assert cnn.convergence_phrase(conv, 2) == (
        f"training 2x longer moved GAP by +20.0 [{est.lo:+.1f}, {est.hi:+.1f}] and entropy by +0.0 [+0.0, +0.0] points"
    )


def test_convergence_control_averages_every_seed_and_resamples_them():
    """Three seeds: one seed's longer run gains 30 points, the others none: the control's gain is the mean over
    the seeds (+10), not one seed's +30, and its interval over seeds x items reaches below 0 (3 seeds whose gains are
    30, 0, 0 say little about the next seed), so one lucky (or unlucky) run does not read as "still gaining"."""
    rng = np.random.default_rng(2)
    std = (rng.random((300, 3)) < 0.5).astype(float)
    longer = std.copy()
    longer[np.flatnonzero(std[:, 0] == 0)[:90], 0] = 1  # seed 0 alone: 90 of 300 items more
    est = cnn.convergence({"hits": {"gap": ctl(std, longer)}})["gap"]
    assert est.value == pytest.approx(10.0) and est.lo < 0 < 30 < est.hi
    assert est.how.startswith("t-interval over 3 seeds x 300 test images")


def test_control_difference_pairs_each_training_length_on_its_own():
    n = 200
    gap = ctl(np.r_[np.ones(100), np.zeros(100)], np.r_[np.ones(150), np.zeros(50)])
    ent = ctl(np.r_[np.ones(120), np.zeros(80)], np.r_[np.ones(150), np.zeros(50)])
    d = cnn.control_difference({"hits": {"gap": gap, "entropy_linear": ent}}, "entropy_linear", "gap")
    assert d["standard"].value == pytest.approx(100 * 20 / n)  # 120 vs 100 right after the standard epochs
    assert d["longer"].value == d["longer"].lo == d["longer"].hi == 0.0  # identical after the longer run
    assert d["standard"].lo > 0
    text = cnn.control_phrase(d, "entropy_linear", "gap", 12, 2)
    assert text == (
        f"entropy - GAP after 24 epochs (the control's runs, mean over the seeds): +0.00 [+0.00, +0.00] "
        f"points, against +10.00 [{d['standard'].lo:+.2f}, {d['standard'].hi:+.2f}] after 12"
    )
    assert cnn.control_difference({"hits": {"gap": gap}}, "entropy_linear", "gap") is None


def test_control_poolings_must_be_trained_poolings():
    p = {"control_poolings": ["gap", "gmp"], "cifar_poolings": ["gap", "entropy_linear"]}
    with pytest.raises(ValueError, match="gmp"):
        cnn.train_all(p, {}, "cpu")


def test_resnet_phrase_names_the_stem_cut():
    assert cnn.resnet_phrase([16, 32, 64], 1, 2) == "widths [16, 32, 64] x 1 block(s)/stage, stride-2 stem"
    assert cnn.resnet_phrase((16, 32, 64), 3, 1) == "widths [16, 32, 64] x 3 block(s)/stage"


def claim_setup(n: int) -> tuple[dict, dict]:
    """The parameters and sizes the ResNet-ordering claims read (3 seeds, 12 epochs, control 2x), n test items."""
    p = {
        "seed": 0,
        "seeds": [0, 1, 2],
        "profile": "cpu",
        "widths": [16, 32, 64],
        "blocks": 1,
        "stem_stride": 2,
        "epochs": 12,
        "control_factor": 2,
        "head_epochs": 8,
    }
    return p, {"cifar_train": 5000, "cifar_test": n, "head_train": 2000, "head_test": n}


def test_cifar_orderings_pass_the_stability_gate_on_their_own_difference():
    """Issue 42: the convergence precondition (every control gain below a margin) is gone; each CIFAR ResNet
    ordering goes through the ledger's stability gate on its own difference, after the standard and the control's
    longer training (same seeds and test images). Hand-made control runs: the same hits after the longer training
    (moved 0: judged), the two poolings' hits swapped (the difference changes side: not testable, scale), entropy
    right on no item after the longer training (same side, moved far beyond the half-width: not testable, scale).
    The MobileNetV2 heads are judged either way, and every row keeps our number and names the stand-in."""
    rng = np.random.default_rng(1)
    n = 400
    hits = {}
    for net in cnn.NETWORKS:
        hits[(net, "gap")] = (rng.random((n, 3)) < 0.6).astype(float)
        hits[(net, "entropy_linear")] = (rng.random((n, 3)) < 0.45).astype(float)
    p, sizes = claim_setup(n)
    g, e = hits[(cnn.NETWORKS[0], "gap")], hits[(cnn.NETWORKS[0], "entropy_linear")]
    expected = 100 * (e.mean(1) - g.mean(1)).mean()
    assert expected < -10
    stable = {"hits": {"gap": ctl(g, g), "entropy_linear": ctl(e, e)}}
    swapped = {"hits": {"gap": ctl(g, e), "entropy_linear": ctl(e, g)}}  # longer: entropy - GAP = -expected
    far = {"hits": {"gap": ctl(g, g), "entropy_linear": ctl(e, np.zeros_like(e))}}  # longer: about -60
    for control, judged in ((stable, True), (swapped, False), (far, False)):
        conv = cnn.convergence(control)
        rows = {c.id: c for c in cnn.claims(hits, p, sizes, conv=conv, control=control)}
        r = rows["beats_gap_resnet"]
        assert r.value == pytest.approx(expected) and r.lo < expected < r.hi
        assert r.stability["standard"]["budget"] == "12 epochs" and r.stability["longer"]["budget"] == "24 epochs"
        assert r.stability["standard"]["value"] == pytest.approx(expected)  # the control seeds are every seed here
        assert r.preconditions == []  # no convergence precondition any more
        assert r.standins == ["cifar10_for_imagenet"]
        assert "training 2x longer moved GAP by" in r.setting and "points, mean over 3 seeds)" in r.setting
        if judged:
            assert r.status == "not reproduced" and not r.reason
        else:
            assert (r.status, r.reason) == ("not testable here", "scale")
            assert "not stable under longer training" in r.verdict and "at 24 epochs" in r.verdict
        assert "Not judged" not in r.why  # the author's sentence only; the gate's is in verdict
        assert rows["beats_gap_mobilenet"].status == "not reproduced"
        assert rows["beats_gap_mobilenet"].stability is None
        assert rows["beats_gap_mobilenet"].standins == ["cifar10_for_imagenet"]
        # each setting names its cuts: the head's epochs; no stand-in for GAP, which the abstract names
        assert "a head trained for 8 epochs on 2,000 CIFAR-10 images" in rows["beats_gap_mobilenet"].setting
        assert "the comparator" not in r.setting


def test_resnet_ordering_without_both_control_runs_is_not_testable_scale():
    """An ordering of the CIFAR ResNet whose two poolings are not both in the control cannot pass the stability
    gate: "not testable here (scale)", our number shown, what would decide it named."""
    rng = np.random.default_rng(4)
    n = 400
    hits = {
        (net, q): (rng.random((n, 3)) < 0.5).astype(float) for net in cnn.NETWORKS for q in ("gap", "entropy_linear")
    }
    p, sizes = claim_setup(n)
    g = hits[(cnn.NETWORKS[0], "gap")]
    for control in (None, {"hits": {"gap": ctl(g, g)}}):
        rows = {c.id: c for c in cnn.claims(hits, p, sizes, control=control)}
        r = rows["beats_gap_resnet"]
        assert (r.status, r.reason, r.test) == ("not testable here", "scale", "none")
        assert r.value is not None and r.lo < r.value < r.hi  # ours, shown not judged
        assert r.decide == "the control run for both poolings"
        assert "No control run of both entropy and GAP" in r.why and r.standins == ["cifar10_for_imagenet"]
        assert rows["beats_gap_mobilenet"].test == "greater"  # the heads need no control


def test_localisation_claims_pair_the_entropy_map_with_the_centre_prior():
    """Hand-made localisation scores: the entropy map holds 40 % of its mass in a box that covers 25 % of the canvas
    and always points inside it; the centre prior holds 30 % and points inside on half the canvases. The ledger's
    localisation rows are judged against the centre prior (issue 30/34: +10 and +50 points), name the uniform map's
    +15 beside it, and name the canvases, their background and the seeds."""
    n = 50
    hits = {(net, q): np.ones((n, 3)) for net in cnn.NETWORKS for q in ("gap", "entropy_linear")}
    p = {
        "seed": 0,
        "seeds": [0, 1, 2],
        "profile": "cpu",
        "widths": [16, 32, 64],
        "blocks": 1,
        "stem_stride": 2,
        "epochs": 12,
        "control_factor": 2,
        "head_epochs": 8,
    }
    sizes = {
        "cifar_train": 5000,
        "cifar_test": n,
        "head_train": 2000,
        "head_test": n,
        "loc_items": n,
        "canvas": 64,
        "loc_background": 200,
    }
    loc = {
        "cluttered": {
            cnn.CAM: {"share": np.full((n, 3), 0.35), "hit": np.ones((n, 3))},  # positive control: beats both
            "entropy_linear": {"share": np.full((n, 3), 0.40), "hit": np.ones((n, 3))},
            "uniform": {"share": np.full((n, 1), 0.25), "hit": np.full((n, 1), 0.25)},
            cnn.CENTRE: {"share": np.full((n, 1), 0.30), "hit": np.r_[np.ones(n // 2), np.zeros(n // 2)][:, None]},
        }
    }
    rows = {c.id: c for c in cnn.claims(hits, p, sizes, loc=loc)}
    share, hit = rows["weights_localise_share"], rows["weights_localise_hit"]
    assert share.value == pytest.approx(10.0) and (share.lo, share.hi) == pytest.approx((10.0, 10.0))
    assert hit.value == pytest.approx(50.0) and 30 < hit.lo < 50 < hit.hi < 70
    assert share.status == hit.status == "reproduced"
    assert share.quantity.endswith("entropy weights - centre prior (%), cluttered canvases")
    uni, cen = share.preconditions
    assert (
        uni["passed"]
        and "the GAP model's CAM) beats the uniform map on the cluttered canvases (positive" in uni["name"]
    )
    assert uni["value"] == "CAM - uniform +10.00 [+10.00, +10.00] points"
    assert cen["passed"] and cen["value"] == "CAM - centre +5.00 [+5.00, +5.00] points"
    assert hit.preconditions[0]["value"] == "CAM - uniform +75.00 [+75.00, +75.00] points"
    assert "The centre prior scores 30.0 %; against a uniform map the entropy weights score +15.00" in share.why
    assert (
        "each of 50 CIFAR-10 test images" in share.setting and "crops of 200 CIFAR-10 training images" in share.setting
    )
    # the networks whose weights are scored, with their cuts, are named in the row itself
    assert share.setting.endswith(
        "weights of a ResNet (widths [16, 32, 64] x 1 block(s)/stage, stride-2 stem) "
        "trained from scratch on 5,000 CIFAR-10 images for 12 epochs (clean images, no "
        "canvases), every seed"
    )
    assert f"{n} test images" not in share.setting.split("; weights of")[1]  # the canvases, not the clean test set


def test_localisation_claims_need_the_cam_positive_control():
    """The localisation rows are judged only where the test can show localisation at all: the GAP model's CAM (a
    content-aware map that is not the entropy weights) beats the uniform map on the same canvases and measure, its
    95 % lower bound above 0. A CAM no better than uniform, or no CAM: not testable (precondition), even though the
    entropy weights beat the centre prior here."""
    n = 50
    hits = {(net, q): np.ones((n, 3)) for net in cnn.NETWORKS for q in ("gap", "entropy_linear")}
    p, sizes = claim_setup(n)
    sizes.update(loc_items=n, canvas=128, loc_background=200)
    rng = np.random.default_rng(5)
    base = {
        "entropy_linear": {"share": np.full((n, 3), 0.40), "hit": np.ones((n, 3))},
        "uniform": {"share": np.full((n, 1), 0.25), "hit": np.full((n, 1), 0.25)},
        cnn.CENTRE: {"share": np.full((n, 1), 0.30), "hit": np.r_[np.ones(n // 2), np.zeros(n // 2)][:, None]},
    }
    as_uniform = {"share": np.full((n, 3), 0.25), "hit": np.full((n, 3), 0.25)}  # CAM - uniform = 0 exactly
    straddling = {"share": 0.25 + rng.normal(0, 0.2, (n, 3)), "hit": (rng.random((n, 3)) < 0.25).astype(float)}
    below_centre = {"share": np.full((n, 3), 0.28), "hit": np.full((n, 3), 0.4)}  # beats uniform, not the centre
    for cam in (as_uniform, straddling, below_centre, None):
        loc = {"cluttered": dict(base) if cam is None else {**base, cnn.CAM: cam}}
        rows = {c.id: c for c in cnn.claims(hits, p, sizes, loc=loc)}
        for what in ("share", "hit"):
            r = rows[f"weights_localise_{what}"]
            assert (r.status, r.reason) == ("not testable here", "precondition"), (what, r.status)
            assert not all(pc["passed"] for pc in r.preconditions) and "positive control" in r.verdict
            assert all("positive control" in pc["name"] for pc in r.preconditions)
            assert r.value > 0 and r.lo > 0  # our number is shown (and would have passed): the gate, not the claim
            if cam is None:
                assert r.preconditions[0]["value"] == "no CAM in this run"
            if cam is below_centre:
                assert [pc["passed"] for pc in r.preconditions] == [True, False]


def test_localisation_is_judged_on_the_first_canvas_kind_whose_positive_control_passes():
    """Two canvas kinds in the order fixed before the run: where the cluttered canvases' CAM loses to the centre prior
    and the plain canvases' CAM beats both blind maps, the claim is judged on the plain canvases, and says so."""
    n = 50
    hits = {(net, q): np.ones((n, 3)) for net in cnn.NETWORKS for q in ("gap", "entropy_linear")}
    p, sizes = claim_setup(n)
    sizes.update(loc_items=n, canvas=128, loc_background=200)
    blind = {
        "uniform": {"share": np.full((n, 1), 0.25), "hit": np.full((n, 1), 0.25)},
        cnn.CENTRE: {"share": np.full((n, 1), 0.30), "hit": np.r_[np.ones(n // 2), np.zeros(n // 2)][:, None]},
    }
    loc = {
        "cluttered": {
            **blind,
            cnn.CAM: {"share": np.full((n, 3), 0.28), "hit": np.full((n, 3), 0.4)},
            "entropy_linear": {"share": np.full((n, 3), 0.20), "hit": np.zeros((n, 3))},
        },
        "plain": {
            **blind,
            cnn.CAM: {"share": np.full((n, 3), 0.60), "hit": np.ones((n, 3))},
            "entropy_linear": {"share": np.full((n, 3), 0.50), "hit": np.ones((n, 3))},
        },
    }
    rows = {c.id: c for c in cnn.claims(hits, p, sizes, loc=loc)}
    share = rows["weights_localise_share"]
    assert share.status == "reproduced" and share.value == pytest.approx(20.0)  # plain: 50 - 30
    assert share.quantity.endswith("plain canvases") and "plain canvas" in share.setting
    assert all(pc["passed"] and "plain canvases" in pc["name"] for pc in share.preconditions)
    assert (
        "Judged on the plain canvases" in share.why
        and "on the cluttered canvases the positive control fails" in share.why
    )


def test_resnet_cut_is_one_phrase_for_notes_and_ledger():
    p = {"seeds": [4, 5], "widths": [16, 32, 64], "blocks": 1, "stem_stride": 2, "epochs": 80, "control_factor": 2}
    assert cnn.resnet_cut(p, 2000) == (
        "a ResNet (widths [16, 32, 64] x 1 block(s)/stage, stride-2 stem) trained "
        "from scratch on 2,000 CIFAR-10 images for 80 epochs"
    )
    gap = ctl(np.r_[np.ones(100), np.zeros(100)], np.r_[np.ones(110), np.zeros(90)])  # +5 points
    conv = cnn.convergence({"hits": {"gap": gap}})
    assert cnn.resnet_cut(p, 2000, conv).endswith(
        f"for 80 epochs (training 2x longer moved GAP by +5.0 [{conv['gap'].lo:+.1f}, {conv['gap'].hi:+.1f}] points, "
        "mean over 2 seeds)"
    )


def test_gmp_and_attention_rows_name_what_stands_in_for_the_abstracts_comparators():
    n = 50
    hits = {(net, q): np.ones((n, 3)) for net in cnn.NETWORKS for q in ("gap", "gmp", "attention", "entropy_linear")}
    p = {
        "seed": 0,
        "seeds": [0, 1, 2],
        "profile": "cpu",
        "widths": [16, 32, 64],
        "blocks": 1,
        "stem_stride": 2,
        "epochs": 12,
        "control_factor": 2,
        "head_epochs": 8,
    }
    sizes = {"cifar_train": 5000, "cifar_test": n, "head_train": 2000, "head_test": n}
    rows = {c.id: c for c in cnn.claims(hits, p, sizes)}
    gmp = rows["beats_gmp_mobilenet"].setting
    assert 'global max pooling, a classic pooling, not a "recently proposed" one' in gmp
    assert 'standing in for the abstract\'s unnamed "attention mechanisms"' in rows["beats_attention_resnet"].setting
    # identical hits: every test item ties, so the ordering cannot be judged (issue 30: a tie is no failure)
    assert (rows["beats_gmp_mobilenet"].status, rows["beats_gmp_mobilenet"].reason) == (
        "not testable here",
        "saturated",
    )
    assert rows["beats_gmp_mobilenet"].hi == 0
    # no control run here: the ResNet's orderings cannot pass the stability gate
    assert (rows["beats_gmp_resnet"].status, rows["beats_gmp_resnet"].reason) == ("not testable here", "scale")
    assert rows["beats_gmp_resnet"].hi == 0


def test_cifar_recipe_is_fit_cifars_keywords_from_params():
    """The stage and its benchmarks read the recipe through one function: every key is a keyword of fit_cifar, and
    the values are the profile's own."""
    import inspect

    from poolrep import config

    p = config.resolve("entropy", profile="cpu")
    r = cnn.cifar_recipe(p)
    assert set(r) <= set(inspect.signature(cnn.fit_cifar).parameters) - {"epochs", "device", "evaluate"}
    assert r == {k: p[k] for k in r} and r["stem_stride"] == p["stem_stride"] and "epochs" not in r


def test_predict_correct_accuracy_on_a_fixed_linear_model():
    model = nn.Linear(2, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        model.bias.copy_(torch.tensor([0.0, 0.0, 0.5]))
    x = np.array([[2.0, 1.0], [0.0, 3.0], [-1.0, -2.0], [1.0, 2.0]], np.float32)
    # logits by hand: (x0, x1, 0.5 - x0 - x1)
    logits = torch.tensor([[2.0, 1.0, -2.5], [0.0, 3.0, -2.5], [-1.0, -2.0, 3.5], [1.0, 2.0, -2.5]])
    torch.testing.assert_close(predict(model, x, batch_size=3), logits)  # two batches: 3 + 1
    y = [0, 2, 2, 1]  # arg-max 0, 1, 2, 1: the second is wrong
    np.testing.assert_array_equal(correct(model, x, y, batch_size=3), [True, False, True, True])
    assert correct(model, x, y).dtype == bool
    assert accuracy(model, x, y, batch_size=2) == 0.75
    assert accuracy(model, torch.as_tensor(x), torch.tensor([0, 1, 2, 1])) == 1.0
    with pytest.raises(ValueError, match="4 inputs but 3 labels"):
        correct(model, x, y[:3])


def test_weights_phrase_names_the_statistics_and_says_close_to_gap_only_when_near_uniform():
    from poolrep.papers.entropy import NEAR_UNIFORM, weights_phrase

    near = weights_phrase({"rel_entropy": 0.978, "max_weight": 0.039, "uniform_max_weight": 1 / 36})
    assert "relative entropy 0.978" in near and "0.039" in near and "0.028" in near and "close to GAP" in near
    far = weights_phrase({"rel_entropy": NEAR_UNIFORM - 0.2, "max_weight": 0.3, "uniform_max_weight": 1 / 36})
    assert "relative entropy 0.750" in far and "close to GAP" not in far
    assert weights_phrase(None) == ""


def test_control_seeds_are_a_subset_of_seeds_and_default_to_all():
    assert cnn.control_seeds({"seeds": [0, 1, 2, 3, 4], "control_seeds": [0, 1, 2]}) == [0, 1, 2]
    assert cnn.control_seeds({"seeds": [3, 4]}) == [3, 4]
    with pytest.raises(ValueError, match=r"control_seeds \[7\]"):
        cnn.control_seeds({"seeds": [0, 1], "control_seeds": [0, 7]})


def test_head_learning_rate_is_chosen_on_held_out_training_maps():
    """Hand-made maps whose class is (mostly: 20 % of the labels moved to the next class) the channel that lights up:
    a tiny rate barely moves from chance, a huge one blows the logits up (held-out loss in the thousands), a
    sensible one wins; every pooling gets its own row per rate and one chosen rate; only training maps are used
    (the function is given no others). One rate: no choice, no rows."""
    g = torch.Generator().manual_seed(0)
    n, c, k = 160, 8, 4
    y = torch.arange(n) % k
    maps = torch.rand(n, c, 3, 3, generator=g)
    maps[torch.arange(n), y, 1, 1] += 2.0
    y = torch.where(torch.rand(n, generator=g) < 0.2, (y + 1) % k, y)
    p = {
        "seed": 0,
        "poolings": ["gap", "gmp"],
        "head_lr_grid": [1e-5, 0.1, 1e6],
        "head_lr": 0.05,
        "head_val_fraction": 0.25,
        "head_epochs": 10,
        "head_batch_size": 16,
        "head_weight_decay": 0.0,
        "temperature": 0.5,
        "head_dropout": 0.0,
    }
    chosen, rows = cnn.choose_head_lrs(p, maps, y, "cpu")
    assert chosen == {"gap": 0.1, "gmp": 0.1}
    assert [(r["pooling"], r["lr"]) for r in rows] == [(q, lr) for q in ("gap", "gmp") for lr in p["head_lr_grid"]]
    by = {(r["pooling"], r["lr"]): r for r in rows}
    for q in ("gap", "gmp"):
        assert by[(q, 0.1)]["val_accuracy"] >= 60 and by[(q, 0.1)]["val_loss"] < by[(q, 1e-5)]["val_loss"] - 0.1
        assert by[(q, 1e-5)]["val_loss"] == pytest.approx(math.log(k), abs=0.25)  # barely moved from chance
        assert by[(q, 1e6)]["val_loss"] > 1e3
        assert sum(by[(q, lr)]["chosen"] for lr in p["head_lr_grid"]) == 1
    assert cnn.finite_or_inf(float("nan")) == cnn.finite_or_inf(float("inf")) == float("inf")
    assert cnn.choose_head_lrs({**p, "head_lr_grid": []}, maps, y, "cpu") == ({"gap": 0.05, "gmp": 0.05}, [])


def test_each_resnet_ordering_is_gated_on_its_own_difference_only():
    """Issue 42: GMP still gaining ~+20 points from the longer training while GAP, attention and entropy stay put
    moves entropy - GMP (not testable here, scale) but not entropy - GAP or entropy - attention, which are judged:
    one pooling's distance to its plateau no longer blocks every ordering (the old convergence precondition did)."""
    rng = np.random.default_rng(3)
    n = 400
    pools = ("gap", "gmp", "attention", "entropy_linear")
    hits = {(net, q): (rng.random((n, 3)) < 0.5).astype(float) for net in cnn.NETWORKS for q in pools}
    p, sizes = claim_setup(n)
    flat = {q: ctl(hits[(cnn.NETWORKS[0], q)], hits[(cnn.NETWORKS[0], q)]) for q in pools}
    base = hits[(cnn.NETWORKS[0], "gmp")]
    control = {"hits": {**flat, "gmp": ctl(base, np.maximum(base, rng.random((n, 3)) < 0.4))}}
    conv = cnn.convergence(control)
    assert list(conv) == list(pools) and conv["gmp"].lo > 10
    rows = {c.id: c for c in cnn.claims(hits, p, sizes, conv=conv, control=control)}
    gmp = rows["beats_gmp_resnet"]
    assert (gmp.status, gmp.reason) == ("not testable here", "scale") and "not stable" in gmp.verdict
    assert gmp.stability["longer"]["value"] < gmp.stability["standard"]["value"] - 10
    for cid in ("beats_gap_resnet", "beats_attention_resnet"):
        r = rows[cid]
        assert r.status != "not testable here", (cid, r.status, r.verdict)
        assert r.stability["longer"]["value"] == r.stability["standard"]["value"]


def test_control_table_shows_each_poolings_gain_without_a_gate():
    base = np.r_[np.ones(60), np.zeros(40)][:, None].repeat(3, axis=1)
    gaining = base.copy()
    gaining[60:90] = 1  # +30 points on every seed
    control = {"epochs": 24, "hits": {"gap": ctl(base, base), "gmp": ctl(base, gaining)}}
    conv = cnn.convergence(control)
    t = cnn.control_table(control, conv, 12, {"gap": "GAP", "gmp": "GMP"}).set_index("pooling")
    assert t.loc["GAP", "12 epochs (%)"] == t.loc["GAP", "24 epochs (%)"] == pytest.approx(60.0)
    assert t.loc["GMP", "24 epochs (%)"] == pytest.approx(90.0) and t.loc["GMP", "gain (points)"] == pytest.approx(30.0)
    assert t.loc["GMP", "seeds"] == 3
    assert not any("margin" in c or "converged" in c for c in t.columns)  # evidence, not the old equivalence gate


def test_plain_canvases_hold_each_object_in_its_box_on_one_colour():
    from poolrep.data.cluttered import CIFAR_MEAN_RGB, plain

    rng = np.random.default_rng(0)
    objects = rng.integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    c = plain(objects, np.arange(5), canvas=64, seed=1)
    assert c.images.shape == (5, 64, 64, 3) and c.canvas == 64
    for img, (x0, y0, x1, y1), obj in zip(c.images, c.boxes, objects):
        assert (x1 - x0, y1 - y0) == (32, 32)
        np.testing.assert_array_equal(img[y0:y1, x0:x1], obj)
        outside = np.ones((64, 64), bool)
        outside[y0:y1, x0:x1] = False
        assert (img[outside] == np.asarray(CIFAR_MEAN_RGB, np.uint8)).all()
    with pytest.raises(ValueError, match="canvas 16"):
        plain(objects, np.arange(5), canvas=16)
    with pytest.raises(ValueError, match="labels"):
        plain(objects, np.arange(4), canvas=64)


def test_metrics_keep_full_precision_and_slug_keys():
    rng = np.random.default_rng(2)
    hits = {(cnn.NETWORKS[0], q): (rng.random((300, 3)) < 0.6).astype(float) for q in ("gap", "entropy_linear")}
    m = cnn.accuracy_metrics(hits)
    assert set(m) == {"cifar_resnet"} and set(m["cifar_resnet"]) == {"gap", "entropy_linear"}
    e = m["cifar_resnet"]["entropy_linear"]
    assert e["mean"] == pytest.approx(100 * hits[(cnn.NETWORKS[0], "entropy_linear")].mean())
    assert e["lo"] < e["mean"] < e["hi"] and round(e["lo"], 2) != e["lo"]  # not rounded
    assert e["minus_gap"]["value"] == pytest.approx(e["mean"] - m["cifar_resnet"]["gap"]["mean"])
    assert "minus_gap" not in m["cifar_resnet"]["gap"] and len(e["per_seed"]) == 3
    loc = {"plain": {cnn.CAM: {"share": rng.random((40, 3)), "hit": (rng.random((40, 3)) < 0.5).astype(float)}}}
    lm = cnn.localisation_metrics(loc)
    assert set(lm["plain"]["cam"]) == {"share", "hit"}
    assert lm["plain"]["cam"]["share"]["mean"] == pytest.approx(100 * loc["plain"][cnn.CAM]["share"].mean())


def test_one_head_recipe_for_the_stage_and_the_zoo():
    from poolrep.heads import head_recipe

    p = {"head_epochs": 8, "head_batch_size": 128, "head_weight_decay": 5e-4, "head_dropout": 0.2, "head_lr": 0.05}
    assert head_recipe(p) == {"epochs": 8, "batch_size": 128, "weight_decay": 5e-4, "dropout": 0.2}
    with pytest.raises(KeyError, match="head_dropout"):
        head_recipe({k: v for k, v in p.items() if k != "head_dropout"})


def test_speed_table_times_every_network_and_pooling():
    from poolrep import bench

    torch.manual_seed(0)
    p = {
        "seed": 0,
        "batch_size": 8,
        "widths": [8, 8, 16],
        "blocks": 1,
        "temperature": 0.5,
        "stem_stride": 2,
        "lr": 0.1,
        "weight_decay": 5e-4,
        "label_smoothing": 0.1,
        "cifar_poolings": ["gap", "entropy_linear"],
        "poolings": ["gap", "attention"],
        "head_batch_size": 16,
        "head_dropout": 0.2,
        "head_lr": 0.05,
        "head_weight_decay": 5e-4,
    }
    x, y = torch.rand(20, 3, 32, 32), torch.arange(20) % 4
    maps, labels = torch.rand(30, 24, 6, 6), torch.arange(30) % 4
    t = cnn.speed_table(p, x, y, maps, labels, repeats=2)
    assert list(zip(t["network"], t["pooling"])) == [
        ("cifar_resnet", "gap"),
        ("cifar_resnet", "entropy_linear"),
        ("mobilenet_v2_head", "gap"),
        ("mobilenet_v2_head", "attention"),
    ]
    assert (t["gflop"] > 0).all() and (t["ms"] > 0).all() and t.attrs["rates"]["threads"] == 1
    assert (t["networks"] == 1).all()
    # the seeds side by side: one more row per ResNet pooling, S networks per step, S times one network's FLOPs
    # compile_grouped: one more, the same grouped step under torch.compile
    if cnn.model.cpp_compiler() is None:
        pytest.skip("torch.compile's cpu kernels need a C++ compiler")
    g = cnn.speed_table(dict(p, seeds=[0, 1, 2], group_seeds=True, compile_grouped=True), x, y, maps, labels, repeats=2)
    assert list(zip(g["pooling"], g["networks"], g["compiled"]))[:6] == [
        ("gap", 1, False),
        ("gap", 3, False),
        ("gap", 3, True),
        ("entropy_linear", 1, False),
        ("entropy_linear", 3, False),
        ("entropy_linear", 3, True),
    ]
    assert np.allclose(g["gflop"].iloc[[1, 2, 4, 5]].to_numpy(), 3 * g["gflop"].iloc[[0, 0, 3, 3]].to_numpy())
    assert np.allclose(g["of_conv"], g["gflops"] / g.attrs["rates"]["conv_gflops"])
    one_ms = g["ms"].iloc[[0, 0, 0, 3, 3, 3]].to_numpy()
    assert np.allclose(g["speedup"].iloc[:6], g["networks"].iloc[:6] * one_ms / g["ms"].iloc[:6])
    assert (t["speedup"] == 1.0).all() and not t["compiled"].any()
    assert t["batch"].tolist() == [8, 8, 16, 16]
    shown = bench.display(t)
    assert "of 1-thread conv" in shown and "of_conv" not in shown and shown.attrs["rates"] == t.attrs["rates"]
