"""The ``crosslayer`` stage's steps, in the notebook's order: the data, the maps of layers t and t+1 at both input
sizes, Table 1's SVMs, the PCA-dimension sweep and the quantisation of the representation."""

from __future__ import annotations

import numpy as np

from ...linear_svm import svm_accuracy, svm_correct
from .model import column_subset, kernels


def load_data(p: dict, run):
    """``(images, train labels, test labels, classes)``: class-balanced subsets of CIFAR-10 (the offline substitute)
    or of CUB-200-2011 (the paper's Birds-200), logged in ``run``. ``images[split]`` is an array (CIFAR-10) or a
    lazily decoded split (CUB)."""
    if p["dataset"] == "cifar10":
        from ...data.cifar import load_cifar10

        train = load_cifar10("train").subset(p["train_per_class"], p["seed"])
        test = load_cifar10("test").subset(p["test_per_class"], p["seed"] + 1)
        images = {"train": train.images, "test": test.images}
        run.data(
            "cifar10",
            source=train.source,
            n_train=len(train),
            n_test=len(test),
            full={"n_train": 50000, "n_test": 10000},
            substitute="CIFAR-10 (32x32, resized up) stands in for CUB-200-2011, which is not offline",
        )
    elif p["dataset"] == "cub200":
        from ...data.cub import load_cub200

        kw = dict(archive=p["cub_archive"], crop_box=p["crop_box"])
        train = load_cub200("train", **kw).subset(p["train_per_class"], p["seed"])
        test = load_cub200("test", **kw).subset(p["test_per_class"], p["seed"] + 1)
        images = {"train": train, "test": test}  # CubSplit: decoded lazily at each size
        run.data(
            "cub200",
            source=train.source,
            n_train=len(train),
            n_test=len(test),
            full={"n_train": 5994, "n_test": 5794},
            note="no parts; " + ("each image cropped to its bounding box" if p["crop_box"] else "whole images"),
        )
    else:
        raise ValueError(f"unknown dataset {p['dataset']!r}; use 'cifar10' or 'cub200'")
    run.data(
        p["backbone"],
        source=f"torchvision ImageNet weights ({p['backbone']})"
        if p["weights_file"] is None
        else f"state dict {p['weights_file']}",
        substitute=None
        if p["backbone"] == "alexnet"
        else "MobileNetV2 stands in for the paper's AlexNet (not offline)",
    )
    return images, np.asarray(train.labels), np.asarray(test.labels), train.classes


def extract_maps(images: dict, p: dict, device, run) -> dict:
    """Maps of layers t, t+1 and the global layer for both splits at both input sizes: ``{size: {split: {layer:
    N x ...}}}``."""
    from ...features import extract, extractor, load_model

    layers = list(dict.fromkeys([p["layer_t"], p["layer_t1"], p["global_layer"]]))
    fx, mean, std = extractor(p["backbone"], layers, model=load_model(p["backbone"], p["weights_file"]))
    maps = {}
    for sz in (p["input_px"], p["input_px_fine"]):
        with run.timed(f"cnn_{sz}px"):
            maps[sz] = {}
            for s in ("train", "test"):
                ims = images[s].images(sz) if p["dataset"] == "cub200" else images[s]
                maps[sz][s] = extract(
                    fx, mean, std, ims, sz, batch_size=p["batch_size"], device=device, desc=f"{s} {sz}px"
                )
    return maps


def fit_table1(rep: dict, glob: tuple, y_train, y_test, p: dict) -> tuple[dict, dict, dict]:
    """Table 1's classifiers: a kernel SVM (C by 3-fold CV on the training images) on CNN-Global, direct sum / max
    pooling, CL, CL-F and CL-C (their kernels summed); returns ``(accuracy %, per-item correctness, chosen C)``,
    each keyed by the representation's slug (``global``, ``sum``, ``max``, ``cl``, ``clf``, ``clc``)."""
    K = {
        "global": kernels(*glob),
        "sum": kernels(*rep["single"]["sum"]),
        "max": kernels(*rep["single"]["max"]),
        "cl": kernels(*rep["single"]["cl"]),
        "clf": kernels(*rep["fine"]["cl"]),
    }
    K["clc"] = (K["cl"][0] + K["clf"][0], K["cl"][1] + K["clf"][1])  # concatenation = sum of linear kernels
    fits = {k: svm_correct(Ktr, y_train, Kte, y_test, p["svm_Cs"], p["seed"]) for k, (Ktr, Kte) in K.items()}
    correct = {k: c for k, (c, _) in fits.items()}
    chosen_C = {k: C for k, (_, C) in fits.items()}
    acc = {k: 100.0 * float(c.mean()) for k, c in correct.items()}
    if not all(0.0 <= a <= 100.0 for a in acc.values()):
        raise AssertionError(f"an accuracy outside 0-100 %: {acc}")
    return acc, correct, chosen_C


def pca_sweep(r: dict, y_train, y_test, pca_dims, Cs, seed: int = 0):
    """Accuracy against the PCA dimension d of the local features: the first d PCA dimensions of every P_k are the
    d-dim PCA, so the d-dim representation is a column subset (post-processing per dimension, L2 on the kept
    columns); direct sum pooling on the same d dims beside it. C by cross-validation on the training set."""
    import pandas as pd

    rows = []
    for d in pca_dims:
        cols = column_subset(r["K"], r["D"], d)
        k_cl = kernels(*r["cl"], cols=cols)
        k_sum = kernels(*r["sum"], cols=np.arange(d))
        rows.append(
            dict(
                pca_dim=d,
                cl_dims=len(cols),
                cl=svm_accuracy(k_cl[0], y_train, k_cl[1], y_test, Cs, seed),
                direct_sum=svm_accuracy(k_sum[0], y_train, k_sum[1], y_test, Cs, seed),
            )
        )
    return pd.DataFrame(rows)


def quantization_table(r: dict, y_train, y_test, p: dict):
    """CL's accuracy with its post-processed values quantised to ``2**bits`` levels, for each of ``p['quant_bits']``
    (None: float16, the unquantised reference); per-item correctness kept for the claim. Returns (table, correct
    by bits)."""
    import pandas as pd

    rows, correct = [], {}
    for bits in [None, *p["quant_bits"]]:
        Ktr, Kte = kernels(*r["cl"], bits=bits)
        correct[bits], C = svm_correct(Ktr, y_train, Kte, y_test, p["svm_Cs"], p["seed"])
        rows.append(
            {
                "bits per value": "16 (float16)" if bits is None else bits,
                "memory vs float16": 1.0 if bits is None else bits / 16,
                "accuracy": 100.0 * float(correct[bits].mean()),
                "C (3-fold CV)": C,
            }
        )
    return pd.DataFrame(rows), correct
