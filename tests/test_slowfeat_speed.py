"""Issue 44's speed work: the auto-encoder's decoder (a matrix product and shifted adds) is the same linear map as
the ConvTranspose2d module it replaced and as the decoding Conv2d (same draw, same gradients and training to float
tolerance), the machine-limit benchmark counts and times what it says,
and the speed table, the job order and the stability table are built from the stage's own functions."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from poolrep import bench
from poolrep.papers import slowfeat as sf
from poolrep.papers.slowfeat.model import decode_same


@pytest.mark.parametrize("in_ch,n_filters,kernel,group,pool", [(3, 8, 9, 4, 2), (4, 8, 5, 1, 4)])
def test_shifted_add_decoder_is_the_transposed_conv_and_trains_the_same(in_ch, n_filters, kernel, group, pool):
    torch.manual_seed(0)
    new = sf.ConvAutoEncoder(in_ch, n_filters, kernel, group, pool, decoder="shifted adds")
    torch.manual_seed(0)
    old = sf.ConvAutoEncoder(in_ch, n_filters, kernel, group, pool, decoder="ConvTranspose2d")
    h = torch.randn(2, n_filters, 16, 16, requires_grad=True)
    # the decoding convolution (kernel transposed and flipped), the ConvTranspose2d module, the shifted adds
    conv = F.conv2d(h, new.dec.weight.flip(2, 3).transpose(0, 1), padding=kernel // 2)
    torch.testing.assert_close(new.decode(h), conv, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(new.decode(h), old.decode(h), atol=1e-5, rtol=1e-5)
    # the backward is torch's own transposed-convolution backward: gradients of both inputs equal the module's
    g = torch.randn(2, in_ch, 16, 16)
    grads = [torch.autograd.grad((m.decode(h) * g).sum(), (h, m.dec.weight)) for m in (new, old)]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        assert a.abs().max() > 0
    # atoms have unit norm, one per filter, the patch a unit adds
    assert new.atoms().shape == (n_filters, in_ch, kernel, kernel)
    torch.testing.assert_close(new.atoms().flatten(1).norm(dim=1), torch.ones(n_filters))
    data = torch.randn(40, in_ch, 16, 16)
    pairs = np.stack([np.arange(39), np.arange(1, 40)], 1)
    cfg = sf.TrainCfg(steps=12, batch=4, lr=1e-3, alpha=0.1, beta=2.0, seed=3)
    h_new = sf.train_autoencoder(new, data, pairs, cfg)
    h_old = sf.train_autoencoder(old, data, pairs, cfg)
    assert h_new[-1]["loss"] == pytest.approx(h_old[-1]["loss"], rel=1e-4)
    torch.testing.assert_close(new.enc.weight, old.enc.weight, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(new.dec.weight, old.dec.weight, atol=1e-5, rtol=1e-4)


def test_decoder_choice_follows_the_output_maps():
    assert sf.ConvAutoEncoder(3, 8, 9, 4, 2).decoder == "shifted adds"  # layer 1: 3 colours
    assert sf.ConvAutoEncoder(16, 8, 5, 1, 4).decoder == "ConvTranspose2d"  # layer 2: 16 pooled maps
    with pytest.raises(ValueError, match="unknown decoder"):
        sf.ConvAutoEncoder(3, 8, 9, 4, 2, decoder="fft")


def test_decode_same_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="odd square kernel"):
        decode_same(torch.zeros(1, 4, 8, 8), torch.zeros(4, 3, 4, 4))
    with pytest.raises(ValueError, match="odd square kernel"):
        decode_same(torch.zeros(1, 5, 8, 8), torch.zeros(4, 3, 3, 3))


def test_l1_sparsity_of_relu_codes_has_the_gradient_of_their_absolute_value():
    torch.manual_seed(2)
    m = sf.ConvAutoEncoder(3, 8, 5, 4, 2)
    x1, x2 = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8)
    sf.slow_loss(m, x1, x2, alpha=0.3, beta=2.0)[0].backward()
    new = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    h = m.encode(torch.cat([x1, x2]))
    assert (h == 0).any()  # the case where |h| and h could differ
    mp = m.pooled(h)
    rec = ((m.decode(h) - torch.cat([x1, x2])) ** 2).flatten(1).sum(1)
    old = rec[:3] + rec[3:] + 0.3 * (h.abs().flatten(1).sum(1)[:3] + h.abs().flatten(1).sum(1)[3:])
    old = (old + 2.0 * (mp[:3] - mp[3:]).abs().flatten(1).sum(1)).mean()
    old.backward()
    for a, p in zip(new, m.parameters()):
        torch.testing.assert_close(a, p.grad, atol=1e-6, rtol=1e-5)


def test_slow_loss_of_one_batch_equals_the_two_frames_apart():
    torch.manual_seed(1)
    m = sf.ConvAutoEncoder(3, 8, 5, 4, 2)
    x1, x2 = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8)
    loss, parts = sf.slow_loss(m, x1, x2, alpha=0.3, beta=2.0)
    h1, h2 = m.encode(x1), m.encode(x2)
    rec = sum(((m.decode(h) - x) ** 2).flatten(1).sum(1) for h, x in ((h1, x1), (h2, x2)))
    sp = h1.abs().flatten(1).sum(1) + h2.abs().flatten(1).sum(1)
    slow = (m.pooled(h1) - m.pooled(h2)).abs().flatten(1).sum(1)
    assert loss.item() == pytest.approx((rec + 0.3 * sp + 2.0 * slow).mean().item(), rel=1e-5)
    assert parts["slow"] == pytest.approx(slow.mean().item(), rel=1e-5)


def test_bench_counts_matrix_and_convolution_flops():
    a, b = torch.randn(64, 32), torch.randn(32, 16)
    assert bench.count_flops(lambda: a @ b) == 2 * 64 * 32 * 16
    x, w = torch.randn(2, 3, 8, 8), torch.randn(5, 3, 3, 3)
    assert bench.count_flops(lambda: F.conv2d(x, w, padding=1)) == 2 * 2 * 5 * 8 * 8 * 3 * 9


def test_bench_times_and_restores_threads():
    before = torch.get_num_threads()
    calls = []
    assert bench.seconds_per_call(lambda: calls.append(1), repeats=4, warmup=2) >= 0
    assert len(calls) == 6
    rates = bench.machine_rates(1, repeats=2)
    assert rates["threads"] == 1 and rates["gemm_gflops"] > 0 and rates["conv_gflops"] > 0
    assert torch.get_num_threads() == before
    a = torch.randn(128, 128)
    r = bench.step_rate(lambda: a @ a, rates, repeats=3)
    assert r["gflop"] == pytest.approx(2 * 128**3 / 1e9)
    assert r["gflops"] == pytest.approx(r["gflop"] / (r["ms"] / 1e3))
    assert r["of_conv"] == pytest.approx(r["gflops"] / rates["conv_gflops"])
    with pytest.raises(ValueError, match="threads"):
        with bench.threads(0):
            pass
    with pytest.raises(ValueError, match="repeats"):
        bench.seconds_per_call(lambda: None, repeats=0)


def _tiny_params():
    return {
        "seed": 0,
        "seeds": [0],
        "n_filters1": 4,
        "kernel1": 3,
        "group1": 2,
        "pool1": 2,
        "n_filters2": 4,
        "kernel2": 3,
        "group2": 1,
        "pool2": 2,
        "steps1": 6,
        "steps2": 4,
        "drlim_steps": 2,
        "batch": 4,
        "lr": 1e-3,
        "alpha": 0.1,
        "beta": 2.0,
        "group_alpha": 0.1,
        "drlim_lr": 3e-4,
        "margin": 1.0,
        "negatives": 2,
        "image_size": 8,
        "sup_hidden": 8,
        "sup_steps": 10,
        "sup_batch": 4,
        "keep_every": 2,
    }


def test_speed_table_times_every_model_and_orders_jobs_by_its_times():
    torch.manual_seed(0)
    p = _tiny_params()
    x = torch.randn(24, 3, 8, 8)
    scene = np.repeat(np.arange(6), 4)
    table, ms = sf.speed_table(x, scene, x[:8], torch.arange(8) % 4, p, repeats=2)
    assert set(zip(table["model"], table["layer"])) == {
        *((m, f"L{i}") for m in ("ours", "sparse", "group", "DrLIM") for i in (1, 2)),
        ("supervised", "all"),
    }
    # ours' two layers timed with both decoders, the one in use first; the others with the one in use only
    assert table["recipe"].str.endswith("(in use)").sum() == 6
    # both layers here decode to at most 4 maps (3 colours; layer 2: 4 filters in groups of 2), so shifted adds
    assert (table["recipe"] == "decoder: shifted adds (in use)").sum() == 6
    assert (table["recipe"] == "decoder: ConvTranspose2d").sum() == 2
    assert (table["gflop"] > 0).all() and (table["ms"] > 0).all()
    assert table.attrs["rates"]["threads"] == 1
    cost = sf.job_seconds(ms, p)
    assert cost["ours"] == pytest.approx((6 * ms[("ours", "L1")] + 4 * ms[("ours", "L2")]) / 1e3)
    assert cost["DrLIM"] == pytest.approx(2 * (ms[("DrLIM", "L1")] + ms[("DrLIM", "L2")]) / 1e3)
    assert cost["supervised"] == pytest.approx(10 * ms[("supervised", "all")] / 1e3)
    shown = sf.speed_display(table)
    assert shown["of 1-thread conv"].str.endswith("%").all() and "of_conv" not in shown


def test_stability_table_gives_each_cifar_claim_at_every_kept_state():
    rng = np.random.default_rng(0)
    auc_c = {k: rng.uniform(0.2, 0.4, (50, 3)) for k in ("ours L1", "ours L2", "ZCA pixels")}
    ck = {
        "ours L1": {"step": 8, "final": 10, "curve": {6: auc_c["ours L1"] - 0.01, 8: auc_c["ours L1"] - 0.005}},
        "ours L2": {"step": 8, "final": 10, "curve": {6: auc_c["ours L2"], 8: auc_c["ours L2"] + 0.002}},
    }
    t = sf.stability_table(auc_c, ck)
    assert list(t["steps"]) == [6, 8, 10, 6, 8, 10]
    l1 = t[t["claim"] == "cifar_l1_beats_input"]["value"].to_numpy()
    base = (auc_c["ours L1"] - auc_c["ZCA pixels"]).mean()
    np.testing.assert_allclose(l1, [base - 0.01, base - 0.005, base])


def test_clip_counts_count_competing_scenes_from_shots():
    def frames(shots_per_clip):
        scene, video, shot, names, cuts = [], [], [], [], []
        s = sh = 0
        for vi, shots in enumerate(shots_per_clip):
            for n_scenes in shots:
                for _ in range(n_scenes):
                    scene += [s] * 3
                    video += [vi] * 3
                    shot += [sh] * 3
                    s += 1
                sh += 1
            names.append(f"c{vi}")
            cuts.append(len(shots) - 1)
        n = len(scene)
        return sf.Frames(
            np.zeros((n, 2, 2, 3), np.uint8), np.array(scene), np.array(video), names, cuts=cuts, shot=np.array(shot)
        )

    t = sf.clip_counts(frames([[2, 1], [3]]), frames([[4], [1, 1, 2]]))
    assert isinstance(t, pd.DataFrame)
    assert t["competing scenes"].tolist() == [3, 0, 0, 4]
    assert t["scenes"].tolist() == [3, 3, 4, 4] and t["shots with a scene"].tolist() == [2, 1, 1, 3]
    assert t["role"].tolist() == ["train", "train", "test", "test"]
