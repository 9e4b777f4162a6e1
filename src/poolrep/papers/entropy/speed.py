"""The ``entropy`` stage's speed table: one training step of each CIFAR ResNet and each head on the MobileNetV2 maps
(``poolrep.heads.sgd_step``, the step ``train`` repeats, on a real augmented minibatch) timed at the workers' one
thread, against this machine's 1-thread GEMM and convolution rates measured in the same call (``poolrep.bench``)."""

from __future__ import annotations

from functools import partial

import torch

from ... import bench
from ...heads import PoolHead, augment, sgd, sgd_step
from .experiment import NETWORKS
from .model import memory_format, training_net


def speed_table(p: dict, x_tr: torch.Tensor, y_tr: torch.Tensor, maps: torch.Tensor, labels: torch.Tensor, repeats=10):
    """One row per network and pooling (``cifar_poolings`` on the ResNet, ``poolings`` as heads): GFLOP, ms and
    GFLOP/s per training step and the shares of the limits (``bench.step_rate``); ``attrs["rates"]`` the limits."""
    import pandas as pd

    rates = bench.machine_rates(1, repeats)
    gen = torch.Generator().manual_seed(p["seed"])
    idx = torch.randperm(len(x_tr), generator=gen)[: p["batch_size"]]
    xb = augment(x_tr[idx].float(), gen).contiguous(memory_format=memory_format(p["widths"]))
    yb, n_classes = y_tr[idx], int(y_tr.max()) + 1
    hidx = torch.randperm(len(labels), generator=gen)[: p["head_batch_size"]]
    mb, mby = maps[hidx].float(), labels[hidx]
    rows = []
    for pooling in p["cifar_poolings"]:
        torch.manual_seed(p["seed"])
        net = training_net(pooling, n_classes, p["widths"], p["blocks"], p["temperature"], p["stem_stride"]).train()
        step = partial(sgd_step, net, sgd(net, p["lr"], p["weight_decay"]), xb, yb, p["label_smoothing"])
        rows.append(
            {"network": NETWORKS[0], "pooling": pooling, "batch": len(yb), **bench.step_rate(step, rates, repeats)}
        )
    for pooling in p["poolings"]:
        torch.manual_seed(p["seed"])
        head = PoolHead(pooling, maps.shape[1], n_classes, p["temperature"], p["head_dropout"]).train()
        step = partial(sgd_step, head, sgd(head, p["head_lr"], p["head_weight_decay"]), mb, mby)
        rows.append(
            {"network": NETWORKS[1], "pooling": pooling, "batch": len(mby), **bench.step_rate(step, rates, repeats)}
        )
    table = pd.DataFrame(rows)
    table.attrs["rates"] = rates
    return table
