"""The ``entropy`` stage's speed table: one training step of each CIFAR ResNet and each head on the MobileNetV2 maps
(``poolrep.heads.sgd_step``, the step ``train`` repeats, on a real augmented minibatch) timed at the workers' one
thread, against this machine's 1-thread GEMM and convolution rates measured in the same call (``poolrep.bench``).

With ``group_seeds`` the table also times the step the stage trains with: every seed's ResNet of one pooling side
by side (:class:`~poolrep.papers.entropy.model.GroupedNet`, ``networks`` = S). Its FLOPs are S times one network's
(the grouped network runs exactly the S networks' convolutions): torch's FLOP counter counts a grouped
convolution's forward right but its backward several times over, which would put a step above the limit."""

from __future__ import annotations

from functools import partial

import torch

from ... import bench
from ...heads import PoolHead, augment, sgd, sgd_step
from .experiment import NETWORKS
from .model import GroupedNet, compiled, memory_format, seed_nets


def speed_table(p: dict, x_tr: torch.Tensor, y_tr: torch.Tensor, maps: torch.Tensor, labels: torch.Tensor, repeats=10):
    """One row per network and pooling (``cifar_poolings`` on the ResNet, ``poolings`` as heads), and with
    ``group_seeds`` one more per ResNet pooling for the S seeds side by side (``networks``: how many networks one
    step trains; ``batch``: images per network): GFLOP, ms and GFLOP/s per training step and the shares of the
    limits (``bench.step_rate``); ``attrs["rates"]`` the limits."""
    import pandas as pd

    rates = bench.machine_rates(1, repeats)
    gen = torch.Generator().manual_seed(p["seed"])
    idx = torch.randperm(len(x_tr), generator=gen)[: p["batch_size"]]
    xb = augment(x_tr[idx].float(), gen).contiguous(memory_format=memory_format(p["widths"]))
    yb, n_classes = y_tr[idx], int(y_tr.max()) + 1
    hidx = torch.randperm(len(labels), generator=gen)[: p["head_batch_size"]]
    mb, mby = maps[hidx].float(), labels[hidx]
    rows = []
    S = len(p["seeds"]) if p.get("group_seeds") else 0
    for pooling in p["cifar_poolings"]:
        seeds = p["seeds"] if S else [p["seed"]]
        nets, config = seed_nets(
            pooling, seeds, n_classes, p["widths"], p["blocks"], p["temperature"], p["stem_stride"]
        )
        net = nets[0]
        step = partial(sgd_step, net, sgd(net, p["lr"], p["weight_decay"]), xb, yb, p["label_smoothing"])
        one = bench.step_rate(step, rates, repeats)
        row = {"network": NETWORKS[0], "pooling": pooling, "batch": len(yb)}
        rows.append({**row, "networks": 1, "compiled": False, **one, "speedup": 1.0})
        if S:
            xs = torch.cat([xb] * S, 1).contiguous(memory_format=memory_format(p["widths"]))
            ys = torch.stack([yb] * S, 1)
            for compile_ in (False, True) if p.get("compile_grouped") else (False,):
                grouped = GroupedNet.pack(nets, config).train()
                runner = compiled(grouped) if compile_ else grouped
                opt = sgd(grouped, p["lr"], p["weight_decay"])
                gstep = partial(sgd_step, runner, opt, xs, ys, p["label_smoothing"])
                rate = bench.step_rate(gstep, rates, repeats, gflop=S * one["gflop"])
                rows.append({**row, "networks": S, "compiled": compile_, **rate, "speedup": S * one["ms"] / rate["ms"]})
    for pooling in p["poolings"]:
        torch.manual_seed(p["seed"])
        head = PoolHead(pooling, maps.shape[1], n_classes, p["temperature"], p["head_dropout"]).train()
        step = partial(sgd_step, head, sgd(head, p["head_lr"], p["head_weight_decay"]), mb, mby)
        rows.append(
            {
                "network": NETWORKS[1],
                "pooling": pooling,
                "batch": len(mby),
                "networks": 1,
                "compiled": False,
                **bench.step_rate(step, rates, repeats),
                "speedup": 1.0,
            }
        )
    table = pd.DataFrame(rows)
    table.attrs["rates"] = rates
    return table
