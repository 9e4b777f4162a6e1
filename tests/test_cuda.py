"""The GPU path gives the CPU's numbers: auto-pooling's gradient and training, the conv features, the linear SVM.

Skipped where no CUDA device is visible (this project's CPU machines and CI); ``tools/gpu_autopool.py`` runs them
first on a GPU machine. TF32 is off for the comparisons (PyTorch's default for matrix products)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poolrep.linear_svm import LinearSVM
from poolrep.papers import autopool as A
from poolrep.pooling.autopool import cost_and_grad, heldout_cost, train_autopool

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(autouse=True)
def no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = old


def _pairs(n=64, D=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, D, generator=g)
    return a, (a + 0.1 * torch.rand(n, D, generator=g)).clamp_min(0)


def test_gradient_on_gpu_matches_cpu():
    xa, xb = _pairs()
    P = torch.rand(20, 300, generator=torch.Generator().manual_seed(1))
    c0, g0, _ = cost_and_grad(P, xa, xb, 3.0)
    c1, g1, _ = cost_and_grad(P.cuda(), xa.cuda(), xb.cuda(), 3.0)
    assert c1 == pytest.approx(c0, rel=1e-5)
    torch.testing.assert_close(g1.cpu(), g0, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("opt,init", [("momentum", "onehot"), ("adam", "dense")])
def test_training_on_gpu_matches_cpu(opt, init):
    xa, xb = _pairs(200)

    def batches(dev):
        def b(epoch):
            for s in range(0, 200, 50):
                yield xa[s : s + 50].to(dev), xb[s : s + 50].to(dev)

        return b

    runs = {}
    for dev in ("cpu", "cuda"):
        m, log = train_autopool(
            batches(dev),
            16,
            300,
            2.0,
            3,
            1e-3 if opt == "momentum" else 0.3,
            opt,
            0,
            dev,
            init=init,
            momentum_after=1,
            progress=False,
        )
        runs[dev] = (m.P.cpu(), log.cost)
    torch.testing.assert_close(runs["cuda"][0], runs["cpu"][0], rtol=1e-3, atol=1e-5)
    assert runs["cuda"][1] == pytest.approx(runs["cpu"][1], rel=1e-4)
    held = [(xa.cuda(), xb.cuda())]
    assert heldout_cost(runs["cuda"][0].cuda(), held, 2.0, "cuda")["scaled"] == pytest.approx(
        heldout_cost(runs["cpu"][0], [(xa, xb)], 2.0)["scaled"], rel=1e-4
    )


def test_conv_features_on_gpu_match_cpu():
    rng = np.random.default_rng(0)
    patches = A.sample_patches(rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8), 500, 6, 0)
    model, _ = A.train_patch_model(patches, 6, 3, 8, 0.035, 5.0, 3e-3, 5)
    imgs = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    f_cpu = A.conv_features(imgs, model)
    gpu = A.PatchModel(model.size, model.channels, model.zca.to("cuda"), model.sae.to("cuda"), model.eps_cn)
    torch.testing.assert_close(A.conv_features(imgs, gpu, "cuda").cpu(), f_cpu, rtol=1e-4, atol=1e-5)


def test_linear_svm_on_gpu_matches_cpu():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 20))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + (x[:, 2] > 1)
    a, b = LinearSVM(0.1).fit(x, y), LinearSVM(0.1, device="cuda").fit(x, y)
    np.testing.assert_allclose(b.objective(x, y), a.objective(x, y), rtol=1e-6)
    assert (a.predict(x) == b.predict(x)).all()


def test_slowfeat_stack_rebuilt_on_the_cpu_gives_its_features_on_the_gpu():
    """Issue 32's workers hand back cpu states; the stage's descriptors then run on the run's device: the rebuilt
    layers must follow the batches there (they once stayed on the cpu while the batches went to CUDA)."""
    from poolrep.papers import slowfeat as sf

    specs = sf.layer_specs(4, 3, 2, 2, 4, 3, 1, 2)
    torch.manual_seed(0)
    layers = [sf.ConvAutoEncoder(3, 4, 3, 2, 2), sf.ConvAutoEncoder(2, 4, 3, 1, 2)]
    states = [{k: v.numpy() for k, v in m.state_dict().items()} for m in layers]
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    cpu = sf.stack_features(sf.stack_from_states(specs, states), x, "cpu")
    gpu = sf.stack_features(sf.stack_from_states(specs, states), x, "cuda")
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-4, atol=1e-5)
