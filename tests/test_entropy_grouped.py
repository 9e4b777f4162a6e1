"""The seeds of one pooling trained side by side (issue 46): ``GroupedNet`` packs S CIFAR ResNets into one network of
grouped convolutions and per-seed heads, and ``heads.train`` with a list of seeds trains it. Checked against the
networks trained apart: the same outputs, the same gradients, the same few training steps (float tolerance)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poolrep import heads
from poolrep.papers import entropy as cnn

CONFIG = dict(widths=(8, 8, 16), blocks=1, stem_stride=2, temperature=0.5, n_classes=5)


def _nets(pooling, seeds):
    out = []
    for s in seeds:
        torch.manual_seed(s)
        c = CONFIG
        out.append(
            cnn.training_net(pooling, c["n_classes"], c["widths"], c["blocks"], c["temperature"], c["stem_stride"])
        )
    return out


def _perturb(nets, seed=0):
    """Non-trivial weights (attention starts at zero; BN at 1 / 0) so every path of the head is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n in nets:
            for p in n.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=g))
            for m in n.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.add_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                    m.running_var.mul_(1 + 0.2 * torch.rand(m.running_var.shape, generator=g))
    return nets


@pytest.mark.parametrize("pooling", heads.POOLINGS)
def test_pack_unpack_round_trip_and_the_same_outputs_as_apart(pooling):
    nets = _perturb(_nets(pooling, [3, 4, 5]))
    grouped = cnn.GroupedNet.pack(nets, CONFIG)
    for a, b in zip(nets, grouped.unpack()):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    g = torch.Generator().manual_seed(1)
    xs = [torch.rand(6, 3, 32, 32, generator=g) for _ in nets]
    for train in (False, True):  # eval: running statistics; train: each network's own batch statistics
        grouped.train(train)
        for n in nets:
            n.train(train)
        out = grouped(torch.cat(xs, 1))
        assert out.shape == (6, 3, 5)
        for s, (n, x) in enumerate(zip(nets, xs)):
            assert torch.allclose(out[:, s], n(x), rtol=1e-4, atol=1e-5), (pooling, train, s)


def test_losses_of_networks_side_by_side_are_each_networks_own():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(7, 3, 4, generator=g), torch.randint(0, 4, (7, 3), generator=g)
    per = heads.losses(logits, y, 0.2)
    want = [float(torch.nn.functional.cross_entropy(logits[:, s], y[:, s], label_smoothing=0.2)) for s in range(3)]
    assert per.shape == (3,) and np.allclose(per.numpy(), want, rtol=1e-6)
    assert float(heads.losses(logits[:, 0], y[:, 0], 0.2)) == pytest.approx(want[0], rel=1e-6)


@pytest.mark.parametrize("pooling", ["gap", "attention", "entropy_linear"])
def test_training_side_by_side_equals_training_apart(pooling):
    """One full-batch step with augmentation: each network's weights, loss and evaluation as when it trains alone
    with its own seed, to float tolerance. Over more steps float rounding grows chaotically (the same network
    started with 1e-6 relative noise ends 3 steps later up to 1e-2 apart), so longer runs are checked through their
    pieces: the same batches below, the same gradients at the end of this file, and SGD's element-wise update."""
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(40, 3, 32, 32, generator=g) * 255).to(torch.uint8).float() / 255
    y = torch.randint(0, 5, (40,), generator=g)
    seeds = [0, 7]
    kw = dict(epochs=1, batch_size=40, lr=0.05, weight_decay=5e-4, label_smoothing=0.1, progress=False)
    kw["memory_format"] = cnn.memory_format(CONFIG["widths"])
    apart = _nets(pooling, seeds)
    curves_apart = [
        heads.train(n, x, y, seed=s, evaluate=lambda m: heads.losses(m(x[:8]), y[:8]).item(), **kw)
        for n, s in zip(apart, seeds)
    ]
    grouped = cnn.GroupedNet.pack(_nets(pooling, seeds), CONFIG)

    def evaluate(m):
        return heads.losses(m(x[:8].repeat(1, 2, 1, 1)), y[:8, None].repeat(1, 2)).tolist()

    curves = heads.train(grouped, x, y, seed=seeds, evaluate=evaluate, **kw)
    assert len(curves) == 2
    for n, c, ca in zip(grouped.unpack(), curves, curves_apart):
        assert np.allclose(c["loss"], ca["loss"], rtol=1e-4) and np.allclose(c["eval"], ca["eval"], rtol=1e-4)
        sa, sb = n.state_dict(), dict(apart[curves.index(c)].state_dict())
        for k in sa:
            assert torch.allclose(sa[k].float(), sb[k].float(), rtol=1e-3, atol=1e-5), k
    moved = cnn.GroupedNet.pack(_nets(pooling, seeds), CONFIG).state_dict()
    assert any(not torch.equal(moved[k], v) for k, v in grouped.state_dict().items())  # it trained


def test_fit_cifar_with_a_list_of_seeds_returns_each_network():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(24, 3, 32, 32, generator=g)
    y = torch.arange(24) % 5
    kw = dict(widths=CONFIG["widths"], blocks=1, stem_stride=2, epochs=1, batch_size=8, lr=0.05, weight_decay=0.0)
    nets, curves = cnn.fit_cifar("gmp", [1, 2], x, y, progress=False, **kw)
    alone, c1 = cnn.fit_cifar("gmp", 1, x, y, progress=False, **kw)
    assert len(nets) == 2 and len(curves) == 2 and not nets[0].training
    assert np.allclose(curves[0]["loss"], c1["loss"], rtol=1e-4)
    assert all(torch.allclose(a, b, rtol=1e-3, atol=1e-5) for a, b in zip(nets[0].parameters(), alone.parameters()))
    with pytest.raises(ValueError, match="dropout"):
        head_net = _nets("gap", [0])[0]
        head_net.head.drop.p = 0.5
        cnn.GroupedNet.pack([head_net], CONFIG)


needs_cpp = pytest.mark.skipif(
    cnn.model.cpp_compiler() is None, reason="torch.compile's cpu kernels need a C++ compiler"
)


@needs_cpp
@pytest.mark.parametrize("pooling", ["gap", "entropy_linear"])
def test_fit_cifar_compiled_is_the_eager_training_and_repeats(pooling):
    """compile_grouped: two epochs of three batches (the last one short, so both of its graphs run), evaluated after
    each, give the eager training's weights and curves to float tolerance, the same numbers when run again, and
    ``evaluate`` gets the eager ``GroupedNet``; exactly two graphs were compiled (dynamo did not fall back to eager)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    g = torch.Generator().manual_seed(4)
    x = (torch.rand(20, 3, 32, 32, generator=g) * 255).to(torch.uint8).float() / 255
    y = torch.arange(20) % 5
    kw = dict(widths=CONFIG["widths"], blocks=1, stem_stride=2, epochs=2, batch_size=8, lr=0.05, weight_decay=5e-4)
    seen = []

    def evaluate(m):
        seen.append((type(m), m.training))
        return m.correct(x[:8], y[:8]).mean(0)

    def fit(compile_grouped):
        return cnn.fit_cifar(
            pooling,
            [1, 2],
            x,
            y,
            progress=False,
            evaluate=evaluate,
            eval_every=1,
            compile_grouped=compile_grouped,
            **kw,
        )

    eager, ce = fit(False)
    torch._dynamo.reset()
    counters.clear()
    comp, cc = fit(True)
    assert counters["stats"]["unique_graphs"] == 2  # the batch of 8 and the last batch of 4
    again, ca = fit(True)
    assert seen == [(cnn.GroupedNet, True)] * 6
    for a, b, c in zip(eager, comp, again):
        sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
        for k in sa:
            assert torch.allclose(sa[k].float(), sb[k].float(), rtol=1e-3, atol=1e-5), (pooling, k)
            assert torch.equal(sb[k], sc[k]), (pooling, k)  # same seed, same numbers
    assert [c["loss"] for c in cc] == [c["loss"] for c in ca] and [c["eval"] for c in cc] == [c["eval"] for c in ca]
    assert np.allclose([c["loss"] for c in ce], [c["loss"] for c in cc], rtol=1e-4)
    moved = _nets(pooling, [1])[0].state_dict()
    assert any(not torch.equal(moved[k], v) for k, v in comp[0].state_dict().items())  # it trained


def test_compiled_needs_a_cpp_compiler(monkeypatch):
    monkeypatch.setattr(cnn.model, "cpp_compiler", lambda: None)
    with pytest.raises(RuntimeError, match="compile_grouped: false"):
        cnn.model.compiled(cnn.GroupedNet.pack(_nets("gap", [0]), CONFIG))


@pytest.mark.parametrize("pooling", ["gap", "attention"])
def test_correct_judges_in_eval_mode_and_leaves_the_running_statistics_alone(pooling):
    """``GroupedNet.correct`` called mid-training (train mode): each network's eval-mode predictions, and neither
    BatchNorm's running statistics nor the mode change (in train mode the test images would update them)."""
    nets = _perturb(_nets(pooling, [3, 4]))
    grouped = cnn.GroupedNet.pack(nets, CONFIG).train()
    before = {k: v.clone() for k, v in grouped.state_dict().items()}
    g = torch.Generator().manual_seed(8)
    x, y = torch.rand(12, 3, 32, 32, generator=g), torch.arange(12) % 5
    got = grouped.correct(x, y, batch_size=5)
    assert grouped.training and all(torch.equal(before[k], v) for k, v in grouped.state_dict().items())
    want = np.stack([(n.eval()(x).argmax(1) == y).numpy() for n in nets], 1)
    assert got.shape == (12, 2) and (got == want).all()
    grouped.eval()
    assert (grouped.correct(x, y) == want).all() and not grouped.training


@pytest.mark.parametrize("pooling", heads.POOLINGS)
def test_gradients_side_by_side_are_each_networks_own(pooling):
    """One backward pass of the summed losses: each network's gradient equals its gradient alone."""
    nets = _perturb(_nets(pooling, [0, 7]))
    grouped = cnn.GroupedNet.pack(nets, CONFIG).train()
    g = torch.Generator().manual_seed(1)
    xs = [torch.rand(16, 3, 32, 32, generator=g) for _ in nets]
    ys = [torch.randint(0, 5, (16,), generator=g) for _ in nets]
    heads.losses(grouped(torch.cat(xs, 1)), torch.stack(ys, 1)).sum().backward()
    got = {k: v.grad for k, v in grouped.named_parameters()}
    for s, (n, x, y) in enumerate(zip(nets, xs, ys)):
        n.train()
        heads.losses(n(x), y).backward()
        named = dict(n.named_parameters())
        pairs = [(named[k], got[k].chunk(2, 0)[s]) for k in named if k.startswith("body.")]
        pairs += [(named["head.fc.weight"], got["fc_weight"][s]), (named["head.fc.bias"], got["fc_bias"][s])]
        if pooling == "attention":
            pairs.append((named["head.pool.score.weight"], got["score_weight"][s].view(1, -1, 1, 1)))
        for want, have in pairs:
            assert torch.allclose(have, want.grad, rtol=1e-4, atol=1e-5 * float(want.grad.abs().max()))


@pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")  # sgd_step is replaced: no optimizer step
def test_each_network_side_by_side_sees_the_batches_it_draws_alone(monkeypatch):
    """Two epochs of 3 steps (the last short): the grouped run hands network s, in its channels 3s..3s+2, exactly
    the augmented batch and labels that network s gets when it trains alone with its seed."""
    seen = []

    def record(model, opt, xb, yb, label_smoothing=0.0):
        seen.append((xb.clone(), yb.clone()))
        return [0.0] * yb.shape[1] if yb.ndim == 2 else 0.0

    monkeypatch.setattr(heads, "sgd_step", record)
    g = torch.Generator().manual_seed(4)
    x, y = torch.rand(40, 3, 32, 32, generator=g), torch.randint(0, 5, (40,), generator=g)
    kw = dict(epochs=2, batch_size=16, lr=0.05, progress=False, memory_format=torch.channels_last)
    seeds = [3, 9]
    for s in seeds:
        heads.train(_nets("gap", [s])[0], x, y, seed=s, **kw)
    alone = [seen[:6], seen[6:12]]
    heads.train(cnn.GroupedNet.pack(_nets("gap", seeds), CONFIG), x, y, seed=seeds, **kw)
    together = seen[12:]
    assert len(together) == 6 and [len(b[1]) for b in together] == [16, 16, 8] * 2
    for step, (xb, yb) in enumerate(together):
        assert xb.shape[1] == 6 and xb.is_contiguous(memory_format=torch.channels_last)
        for s in range(2):
            assert torch.equal(xb[:, 3 * s : 3 * s + 3], alone[s][step][0])
            assert torch.equal(yb[:, s], alone[s][step][1])
    assert not torch.equal(together[0][0][:, :3], together[0][0][:, 3:])  # the two seeds draw different batches
