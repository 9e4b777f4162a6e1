"""Cross-layer pooling (Liu et al. 2015): operator vs loop reference, shapes, borders, post-processing, SVM kernel,
the CUB-200-2011 loader on a fixture in its official layout, and the paper profile's AlexNet path (random weights)."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from poolrep.data.cub import LazyImages, load_cub200, read_cub
from poolrep.data.fetch import DataError
from poolrep.features import apply_batched, extractor
from poolrep.linear_svm import linear_kernel, svm_accuracy
from poolrep.papers.crosslayer import column_subset
from poolrep.pooling.crosslayer import CrossLayerPool, centre_weights, local_features, sample_local_features
from poolrep.pooling.direct import DirectPool
from poolrep.pooling.postprocess import PostProcess, fit_pca


def loop_reference(mt, mt1, mean, comp, m=3, n=3):
    """Slow, literal version of the paper's formula."""
    N, C, H, W = mt.shape
    K = mt1.shape[1]
    out = np.zeros((N, K, comp.shape[0]))
    for b in range(N):
        for y in range(m // 2, H - m // 2):
            for x in range(n // 2, W - n // 2):
                f = []
                for c in range(C):
                    for dy in range(-(m // 2), m // 2 + 1):
                        for dx in range(-(n // 2), n // 2 + 1):
                            f.append(mt[b, c, y + dy, x + dx])
                xi = comp @ (np.array(f) - mean)
                for k in range(K):
                    out[b, k] += mt1[b, k, y, x] * xi
    return out.reshape(N, -1)


def test_crosslayer_matches_loop_reference():
    g = torch.Generator().manual_seed(0)
    mt = torch.randn(2, 3, 6, 5, generator=g, dtype=torch.float64).float()
    mt1 = torch.rand(2, 4, 6, 5, generator=g).float()
    F = 3 * 9
    mean = np.random.default_rng(1).normal(size=F).astype(np.float32)
    comp = np.random.default_rng(2).normal(size=(5, F)).astype(np.float32)
    got = CrossLayerPool(mean, comp)(mt, mt1).numpy()
    ref = loop_reference(mt.numpy().astype(np.float64), mt1.numpy().astype(np.float64), mean, comp)
    assert got.shape == (2, 4 * 5)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    # normalise_sum divides by the number of kept positions (4 x 3 = 12)
    got2 = CrossLayerPool(mean, comp, normalise_sum=True)(mt, mt1).numpy()
    np.testing.assert_allclose(got2 * 12, ref, rtol=1e-4, atol=1e-4)


def test_without_pca_and_5x3_window():
    mt = torch.randn(1, 2, 7, 6)
    mt1 = torch.rand(1, 3, 7, 6)
    got = CrossLayerPool(m=5, n=3)(mt, mt1).numpy()
    ref = loop_reference(mt.numpy(), mt1.numpy(), np.zeros(2 * 15), np.eye(2 * 15), m=5, n=3)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_alexnet_conv4_conv5_shapes():
    # the paper's (Caffe) AlexNet: conv4 13 x 13 x 384, conv5 13 x 13 x 256, PCA to 512
    mt = torch.rand(2, 384, 13, 13)
    mt1 = torch.rand(2, 256, 13, 13)
    x = local_features(mt)
    assert x.shape == (2, 11 * 11, 384 * 9)
    assert centre_weights(mt1).shape == (2, 121, 256)
    rng = np.random.default_rng(0)
    comp = np.linalg.qr(rng.normal(size=(384 * 9, 512)))[0].T.astype(np.float32)
    out = CrossLayerPool(np.zeros(384 * 9, np.float32), comp)(mt, mt1)
    assert out.shape == (2, 256 * 512) and out.shape[1] == 131072


def test_neighbourhood_extraction_at_borders():
    # value = 100*c + 10*y + x identifies channel and position
    C, H, W = 2, 4, 5
    mt = torch.tensor([[[[100 * c + 10 * y + x for x in range(W)] for y in range(H)] for c in range(C)]]).float()
    x = local_features(mt)  # centres (1..2) x (1..3): 6 positions, border dropped
    assert x.shape == (1, 6, C * 9)
    first = x[0, 0].reshape(C, 3, 3)  # centre (1, 1): rows 0..2, cols 0..2
    assert first[1].tolist() == [[100, 101, 102], [110, 111, 112], [120, 121, 122]]
    last = x[0, -1].reshape(C, 3, 3)  # centre (2, 3): rows 1..3, cols 2..4 (last row/col of the map)
    assert last[0].tolist() == [[12, 13, 14], [22, 23, 24], [32, 33, 34]]
    a = centre_weights(mt)  # the same centres in layer t+1
    assert a[0, :, 0].tolist() == [11, 12, 13, 21, 22, 23]
    # a 3 x 3 map keeps exactly one position; a 2 x 2 one cannot hold a neighbourhood
    assert local_features(torch.rand(1, 1, 3, 3)).shape == (1, 1, 9)
    with pytest.raises(ValueError, match="smaller than"):
        local_features(torch.rand(1, 1, 2, 2))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="N x C x H x W"):
        local_features(torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="odd"):
        CrossLayerPool(m=2, n=3)
    with pytest.raises(ValueError, match="same N and spatial size"):
        CrossLayerPool()(torch.rand(1, 2, 6, 6), torch.rand(1, 3, 5, 5))
    with pytest.raises(ValueError, match="wrong number of channels"):
        CrossLayerPool(np.zeros(18, np.float32), np.zeros((4, 18), np.float32))(
            torch.rand(1, 3, 5, 5), torch.rand(1, 2, 5, 5)
        )
    with pytest.raises(ValueError, match="mode"):
        DirectPool(CrossLayerPool(), "mean")
    with pytest.raises(ValueError, match="PCA dim"):
        column_subset(4, 8, 9)


def test_postprocess_on_hand_made_vectors():
    X = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]], np.float16)
    pp = PostProcess(eps=0.0).fit(X)
    np.testing.assert_allclose(pp.mean_, [3.0, 2.0])
    np.testing.assert_allclose(pp.std_, [np.sqrt(8 / 3), 0.0])
    pp.eps = 1e-6
    z = pp.transform(np.array([[3.0 + 4 * np.sqrt(8 / 3), 2.0]], np.float32), l2=False)
    np.testing.assert_allclose(z, [[2.0, 0.0]], atol=1e-4)  # standardised 4 -> signed sqrt 2; constant dim -> 0
    z = pp.transform(np.array([[3.0 - 9 * np.sqrt(8 / 3), 2.0]], np.float32), l2=False)
    np.testing.assert_allclose(z, [[-3.0, 0.0]], atol=1e-4)  # sign kept
    z = pp.transform(np.array([[3.0 + 9 * np.sqrt(8 / 3), 2.0]], np.float32))
    np.testing.assert_allclose(z, [[1.0, 0.0]], atol=1e-5)  # L2-normalised
    with pytest.raises(ValueError, match="N x 2"):
        pp.transform(np.zeros((1, 3)))


def test_linear_kernel_subsets_and_svm():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 12)).astype(np.float16)
    B = rng.normal(size=(4, 12)).astype(np.float16)
    cols = column_subset(3, 4, 2)
    assert cols.tolist() == [0, 1, 4, 5, 8, 9]
    K = linear_kernel(A, B, cols, chunk=4)
    a = A[:, cols].astype(np.float64)
    b = B[:, cols].astype(np.float64)
    ref = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T
    np.testing.assert_allclose(K, ref, atol=1e-5)
    # two well separated classes: the precomputed-kernel SVM gets them all
    Xtr = np.r_[rng.normal(3, 1, (20, 5)), rng.normal(-3, 1, (20, 5))]
    ytr = np.r_[np.zeros(20), np.ones(20)]
    Xte = np.r_[rng.normal(3, 1, (5, 5)), rng.normal(-3, 1, (5, 5))]
    yte = np.r_[np.zeros(5), np.ones(5)]
    acc = svm_accuracy(linear_kernel(Xtr, Xtr, normalise=False), ytr, linear_kernel(Xte, Xtr, normalise=False), yte)
    assert acc == 100.0
    with pytest.raises(ValueError, match="kernel shapes"):
        svm_accuracy(np.eye(3), [0, 1, 0], np.ones((2, 4)), [0, 1])


def test_pca_and_batched_pooling_float16():
    rng = np.random.default_rng(0)
    mt = rng.normal(size=(5, 4, 6, 6)).astype(np.float16)
    mt1 = np.abs(rng.normal(size=(5, 3, 6, 6))).astype(np.float16)
    local = sample_local_features(mt, 3, 3, max_samples=50)
    assert local.shape == (50, 36)
    mean, comp, evr = fit_pca(local, 8)
    assert comp.shape == (8, 36) and np.all(np.diff(evr) <= 1e-7)
    np.testing.assert_allclose(comp @ comp.T, np.eye(8), atol=1e-4)
    pool = CrossLayerPool(mean, comp)
    R = apply_batched(pool, mt, mt1, batch_size=2, dtype=np.float16)
    assert R.dtype == np.float16 and R.shape == (5, 24)
    full = pool(torch.as_tensor(mt).float(), torch.as_tensor(mt1).float()).numpy()
    np.testing.assert_allclose(R.astype(np.float32), full, rtol=2e-3, atol=2e-3)
    # the first d PCA dims of every P_k are the d-dim cross-layer representation
    pool4 = CrossLayerPool(mean, comp[:4])
    np.testing.assert_allclose(
        full[:, column_subset(3, 8, 4)],
        pool4(torch.as_tensor(mt).float(), torch.as_tensor(mt1).float()).numpy(),
        rtol=1e-4,
        atol=1e-4,
    )
    S = apply_batched(DirectPool(pool, "sum"), mt, batch_size=2, dtype=np.float32)
    M = apply_batched(DirectPool(pool, "max"), mt, batch_size=2, dtype=np.float32)
    proj = pool.project(torch.as_tensor(mt).float()).numpy()
    np.testing.assert_allclose(S, proj.sum(1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(M, proj.max(1), rtol=1e-5)
    with pytest.raises(ValueError, match="PCA dim"):
        fit_pca(local[:5], 8)


# ---------------------------------------------------------------------------------- CUB-200-2011 fixture


def make_cub_archive(tmp_path, n_classes=3, per_class=4):
    """A tiny archive in the exact official layout of CUB_200_2011.tgz."""
    root = tmp_path / "src" / "CUB_200_2011"
    img = root / "images"
    lines = {
        "images.txt": [],
        "image_class_labels.txt": [],
        "train_test_split.txt": [],
        "classes.txt": [],
        "bounding_boxes.txt": [],
    }
    names = ["Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross"][:n_classes]
    iid = 0
    rng = np.random.default_rng(0)
    for c, name in enumerate(names, 1):
        folder = f"{c:03d}.{name}"
        lines["classes.txt"].append(f"{c} {folder}")
        (img / folder).mkdir(parents=True)
        for j in range(per_class):
            iid += 1
            fn = f"{name}_{j:04d}_{100 + iid}.jpg"
            Image.fromarray(rng.integers(0, 255, (20 + j, 30, 3), dtype=np.uint8)).save(img / folder / fn)
            lines["images.txt"].append(f"{iid} {folder}/{fn}")
            lines["image_class_labels.txt"].append(f"{iid} {c}")
            lines["train_test_split.txt"].append(f"{iid} {int(j % 2 == 0)}")
            lines["bounding_boxes.txt"].append(f"{iid} 2.0 3.0 {20 + j % 5}.0 {10 + j}.0")  # x y width height
    for f, ls in lines.items():
        (root / f).write_text("\n".join(ls) + "\n")
    archive = tmp_path / "CUB_200_2011.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="CUB_200_2011")
    return archive, root


def test_cub_loader_on_fixture(tmp_path, isolated_data):
    archive, root = make_cub_archive(tmp_path)
    tr = load_cub200("train", archive=archive)
    te = load_cub200("test", archive=archive)
    assert len(tr) == 6 and len(te) == 6
    assert tr.classes == ("001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross")
    assert tr.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert [p.name for p in tr.paths[:2]] == [
        "Black_footed_Albatross_0000_101.jpg",
        "Black_footed_Albatross_0002_103.jpg",
    ]
    assert [p.name for p in te.paths[:1]] == ["Black_footed_Albatross_0001_102.jpg"]
    ims = tr.images(16)
    batch = ims[0:4]
    assert batch.shape == (4, 16, 16, 3) and batch.dtype == np.uint8
    assert isinstance(ims, LazyImages) and ims[5].shape == (16, 16, 3)
    assert tr.subset(1, seed=0).labels.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="split"):
        load_cub200("val", archive=archive)


def test_cub_crop_box(tmp_path, isolated_data):
    from PIL import Image

    archive, root = make_cub_archive(tmp_path)
    whole, boxed = load_cub200("train", archive=archive), load_cub200("train", archive=archive, crop_box=True)
    assert whole.boxes is None and boxed.boxes[0] == (2.0, 3.0, 22.0, 13.0)
    assert "bounding boxes" in boxed.source and "whole images" in whole.source
    ref = Image.open(boxed.paths[0]).convert("RGB").crop((2, 3, 22, 13)).resize((16, 16), Image.BICUBIC)
    assert (boxed.images(16)[0] == np.asarray(ref)).all()
    assert not (whole.images(16)[0] == np.asarray(ref)).all()
    sub = boxed.subset(1, seed=0)
    assert sub.boxes == [boxed.boxes[boxed.paths.index(q)] for q in sub.paths]
    (root / "bounding_boxes.txt").write_text("1 0 0 0 5\n")
    with pytest.raises(DataError, match="empty box"):
        read_cub(root, crop_box=True)


def test_cub_loader_errors(tmp_path):
    _, root = make_cub_archive(tmp_path)
    assert len(read_cub(root.parent)["train"]) == 6  # parent of CUB_200_2011/ accepted
    first = (root / "images.txt").read_text().splitlines()[0].split()[1]
    (root / "images" / first).unlink()
    with pytest.raises(DataError, match="missing"):
        read_cub(root)
    (root / "train_test_split.txt").write_text("1 1\n")
    with pytest.raises(DataError, match="different ids"):
        read_cub(root, check_files=False)
    with pytest.raises(DataError, match="images.txt"):
        read_cub(tmp_path / "nowhere")
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"not a tar")
    from poolrep.data.cub import unpack

    with pytest.raises(DataError, match="not a readable"):
        unpack(bad, tmp_path / "out")


def test_paper_profile_alexnet_path(tmp_path, isolated_data):
    """The paper path end to end on the fixture: CUB loader -> AlexNet conv4/conv5 (random weights: the ImageNet
    AlexNet is not offline) -> PCA -> cross-layer pooling -> post-processing -> kernel SVM."""
    import poolrep.features as feats

    torch.manual_seed(0)
    archive, _ = make_cub_archive(tmp_path)
    tr, te = load_cub200("train", archive=archive), load_cub200("test", archive=archive)
    fx, mean, std = extractor("alexnet", ["features.9", "features.11"], pretrained=False)
    maps = feats.extract(fx, mean, std, tr.images(224), 224, batch_size=4, device="cpu")
    assert maps["features.9"].shape == (6, 256, 13, 13) and maps["features.11"].shape == (6, 256, 13, 13)
    m, comp, _ = fit_pca(sample_local_features(maps["features.9"], 3, 3, 500), 16)
    pool = CrossLayerPool(m, comp, normalise_sum=True)
    R = apply_batched(pool, maps["features.9"], maps["features.11"], batch_size=4, dtype=np.float16)
    assert R.shape == (6, 256 * 16) and np.isfinite(R.astype(np.float32)).all()
    mte = feats.extract(fx, mean, std, te.images(224), 224, batch_size=4, device="cpu")
    Rte = apply_batched(pool, mte["features.9"], mte["features.11"], batch_size=4, dtype=np.float16)
    pp = PostProcess().fit(R)
    Ztr, Zte = pp.transform(R, l2=False), pp.transform(Rte, l2=False)
    Ktr, Kte = linear_kernel(Ztr, Ztr), linear_kernel(Zte, Ztr)
    acc = svm_accuracy(Ktr, tr.labels, Kte, te.labels)  # one C: 10 (the default Cs)
    # independent reference: the rows L2-normalised in float64 by numpy, and libsvm's own linear kernel on them
    # (scikit-learn's SVC(kernel="linear"), same C) instead of the precomputed kernel
    from sklearn.svm import SVC

    unit = lambda Z: Z.astype(np.float64) / np.linalg.norm(Z.astype(np.float64), axis=1, keepdims=True)  # noqa: E731
    Utr, Ute = unit(Ztr), unit(Zte)
    np.testing.assert_allclose(Ktr, Utr @ Utr.T, atol=1e-5)
    np.testing.assert_allclose(Kte, Ute @ Utr.T, atol=1e-5)
    pred = SVC(kernel="linear", C=10.0).fit(Utr, tr.labels).predict(Ute)
    assert acc == pytest.approx(100.0 * np.mean(pred == te.labels), abs=1e-12)
    with pytest.raises(ValueError, match="backbone"):
        extractor("vgg16", ["x"], pretrained=False)


def test_sampled_local_features_are_the_same_rows_without_building_them_all():
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(7, 4, 6, 5)).astype(np.float32)
    full = local_features(torch.as_tensor(maps), 3, 3).reshape(-1, 4 * 9).numpy()  # every neighbourhood
    idx = np.sort(np.random.default_rng(11).choice(len(full), 25, replace=False))
    got = sample_local_features(maps, 3, 3, max_samples=25, seed=11, batch=2)  # 2 images at a time
    np.testing.assert_array_equal(got, full[idx])
    np.testing.assert_array_equal(sample_local_features(maps, 3, 3, max_samples=10_000), full)  # all when fewer


def test_svm_C_is_chosen_by_cross_validation_on_the_training_set_only():
    from poolrep.linear_svm import svm_correct

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 5))
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0).astype(int)
    Xte = rng.normal(size=(40, 5))
    yte = (Xte[:, 0] > 0).astype(int) + 2 * (Xte[:, 1] > 0).astype(int)
    K, Kte = X @ X.T, Xte @ X.T
    c1, C1 = svm_correct(K, y, Kte, yte, Cs=[0.001, 1.0, 100.0], seed=0)
    assert C1 in (1.0, 100.0) and c1.dtype == bool and c1.mean() > 0.8  # a tiny C underfits: not chosen
    # the choice never looks at the test labels: scrambling them changes the score, not the C
    _, C2 = svm_correct(K, y, Kte, rng.permutation(yte), Cs=[0.001, 1.0, 100.0], seed=0)
    assert C2 == C1
    assert svm_correct(K, y, Kte, yte, Cs=[10.0])[1] == 10.0


def test_quantize_levels_clip_and_reconstruct():
    from poolrep.papers.crosslayer import quantize

    z = np.array([[-5.0, -1.0, -0.1, 0.1, 1.0, 5.0]], np.float32)
    q1 = quantize(z, 1, np.full(6, 2.0))  # 2 levels: the sign, at +-1 (the centres of [-2, 0) and [0, 2))
    np.testing.assert_array_equal(q1, [[-1, -1, -1, 1, 1, 1]])
    q2 = quantize(z, 2, np.full(6, 2.0))  # 4 levels: centres -1.5, -0.5, 0.5, 1.5
    np.testing.assert_array_equal(q2, [[-1.5, -0.5, -0.5, 0.5, 1.5, 1.5]])
    assert len(np.unique(quantize(np.linspace(-3, 3, 1000)[None], 4, np.array([2.0])))) == 16
    with pytest.raises(ValueError, match="bits"):
        quantize(z, 0, np.ones(6))


def test_eq1_on_a_hand_made_cross_channel_pair():
    """Eq. 1 where the answer is known by hand: layer t has 2 channels on a 2x2 grid, layer t+1 = ReLU of a 1x1
    convolution that combines both channels (groups=1), so each local feature is one unit of t (m = n = 1) and
    P_k = sum_i a_{i,k} x_i."""
    t = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]], [[0.0, 2.0], [0.0, 0.0]]]])  # x_(0,0) = (1, 0), x_(0,1) = (0, 2)
    conv = torch.nn.Conv2d(2, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]).view(2, 2, 1, 1))
    t1 = torch.relu(conv(t)).detach()  # a_0 = [[1, 2], [0, 0]]; a_1 = ReLU([[1, -2], [0, 0]]) = [[1, 0], [0, 0]]
    got = CrossLayerPool(m=1, n=1)(t, t1).numpy()
    # P_0 = 1 * (1, 0) + 2 * (0, 2) = (1, 4); P_1 = 1 * (1, 0) = (1, 0)
    np.testing.assert_allclose(got, [[1.0, 4.0, 1.0, 0.0]])


def test_the_cpu_profile_pair_is_cross_channel_and_the_depthwise_one_is_not():
    from poolrep import config
    from poolrep.papers.crosslayer import cross_channel

    p = config.resolve("crosslayer", profile="cpu")
    ok, what = cross_channel(p["backbone"], p["layer_t1"])
    assert ok and "groups=1" in what and "320 -> 1280" in what and p["window"] == 1
    paper = config.resolve("crosslayer", profile="paper")  # AlexNet conv4 -> conv5, a 3x3 conv: 3x3 neighbourhoods
    assert (paper["layer_t"], paper["layer_t1"], paper["window"]) == ("features.9", "features.11", 3)
    assert cross_channel("alexnet", "features.11")[0]
    ok, what = cross_channel("mobilenet_v2", "features.17.conv.1")
    assert not ok and "(depthwise)" in what and "groups=960" in what


# ---------------------------------------------------------------- claims (issue 42)

_CL_PARAMS = dict(
    dataset="cifar10",
    profile="cpu",
    backbone="mobilenet_v2",
    layer_t="features.16",
    layer_t1="features.17",
    window=3,
    input_px=96,
    input_px_fine=96,
    pca_dim=64,
    seed=0,
    quant_claim_bits=4,
    quant_margin=1.0,
)


def _correct(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2, n)
    corr = {k: rng.integers(0, 2, n) for k in ("cl", "global", "clc", "clf", "sum", "max")}
    flip = rng.random(n) < 0.005  # quantisation changes almost no prediction
    return corr, {4: np.where(flip, 1 - base, base), None: base}


def test_claims_name_the_registry_stand_ins_and_the_papers_setting():
    from poolrep import claims as C
    from poolrep.papers import crosslayer as CL

    corr, quant = _correct(400)
    cs = {c.id: c for c in CL.claims(corr, _CL_PARAMS, 1000, 400, 10, quant)}
    for cid in ("cl_beats_global", "clc_beats_cl", "clc_beats_clf", "cl_beats_direct_sum", "cl_beats_direct_max"):
        c = cs[cid]
        assert {"cifar10_for_birds", "mobilenet_conv_maps"} <= set(c.standins), cid
        assert c.paper_setting == "Birds-200, AlexNet (Table 1)" and not c.comparable and not c.power, cid
    # CNN-Global is the GAP of MobileNetV2's last maps: the registry's gate, with its decide
    g = cs["cl_beats_global"]
    assert "gap_for_fc_codes" in g.standins and g.reason == "stand-in" and g.test == "greater"
    assert g.decide == "AlexNet weights (data)"
    q = cs["quantisation_costs_little"]
    assert q.confidence == C.TOST_CONFIDENCE and q.test == "within" and q.bound == [-1.0, 1.0]
    assert all(c.decide for c in cs.values() if c.status == C.Status.NOT_TESTABLE)
    assert all(not c.design_error for c in cs.values())
    alex = dict(_CL_PARAMS, backbone="alexnet", layer_t="features.9", layer_t1="features.11")
    a = {c.id: c for c in CL.claims(corr, alex, 1000, 400, 10, quant)}
    assert a["cl_beats_global"].standins == ["cifar10_for_birds"] and a["cl_beats_global"].reason != "stand-in"


def test_claims_on_a_small_test_split_are_declared_not_testable():
    from poolrep.papers import crosslayer as CL

    corr, quant = _correct(12)
    for c in CL.claims(corr, _CL_PARAMS, 100, 12, 10, quant):
        assert c.status == "not testable here" and c.test == "none" and not c.design_error, c.id
        assert c.decide, c.id
        if c.id not in ("birds_accuracy", "other_datasets"):
            assert c.reason == "scale" and "only 12 test images" in c.why, c.id


def test_quantised_kernels_a_chunk_at_a_time_equal_the_whole_array():
    """kernels(bits=) quantises inside the kernel, a chunk of rows at a time (no float32 copy of a 10,000-image test
    set): bit-identical to quantising the whole post-processed array first."""
    from poolrep.linear_svm import linear_kernel
    from poolrep.papers.crosslayer import kernels, quantize

    rng = np.random.default_rng(0)
    tr, te = rng.normal(size=(700, 96)).astype(np.float16), rng.normal(size=(1100, 96)).astype(np.float16)
    pp = PostProcess().fit(tr)
    ztr, zte = pp.transform(tr, l2=False, dtype=np.float16), pp.transform(te, l2=False, dtype=np.float16)
    scale = np.maximum(np.percentile(np.abs(ztr.astype(np.float32)), 99, axis=0), 1e-6)
    qtr, qte = quantize(ztr.astype(np.float32), 2, scale), quantize(zte.astype(np.float32), 2, scale)
    cols = column_subset(4, 24, 8)
    for c in (None, cols):
        whole = (linear_kernel(qtr, qtr, c), linear_kernel(qte, qtr, c))
        chunked = kernels(tr, te, cols=c, bits=2)
        assert all(np.array_equal(a, b) for a, b in zip(whole, chunked))
    assert not np.array_equal(kernels(tr, te, bits=2)[1], kernels(tr, te)[1])  # the quantiser did act
