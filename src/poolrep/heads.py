"""Pooling heads and the deterministic SGD loop that trains them, shared by the ``entropy`` stage (its CIFAR ResNets
and its heads on the frozen MobileNetV2 maps) and the ``zoo`` (its attention baseline, trained with the entropy
stage's head recipe), so that neither stage imports the other's experiment module.

A ``PoolHead`` is feature maps ``N x D x h x w`` -> a pooling (``POOLINGS``, made by ``make_pool``) -> one
``nn.Linear(D, n_classes)``. ``train`` is SGD (Nesterov) with a linear warm-up then cosine decay, batches and
augmentation drawn from one seeded generator; ``fit_head`` trains a head alone on cached maps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .pooling.attention import SpatialAttentionPool
from .pooling.entropy import EntropyPool
from .pooling.global_pool import GlobalAvgPool, GlobalMaxPool

POOLINGS = ("gap", "gmp", "attention", "entropy_linear", "entropy_softmax", "entropy_unnormalised", "entropy_detached")


def make_pool(name: str, fc: nn.Linear, temperature: float = 1.0) -> nn.Module:
    """The pooling called ``name`` (``POOLINGS``). Entropy variants: ``linear`` (weights log C - H, normalised over
    the locations), ``softmax`` (softmax(-H / (T log C))), ``unnormalised`` (1 - H / log C, not renormalised) and
    ``detached`` (linear weights, no gradient through them: the weights follow the classifier, they do not train it)."""
    if name == "gap":
        return GlobalAvgPool()
    if name == "gmp":
        return GlobalMaxPool()
    if name == "attention":
        return SpatialAttentionPool(fc.in_features)
    if name == "entropy_linear":
        return EntropyPool(fc, weighting="linear")
    if name == "entropy_softmax":
        return EntropyPool(fc, weighting="softmax", temperature=temperature)
    if name == "entropy_unnormalised":
        return EntropyPool(fc, weighting="unnormalised")
    if name == "entropy_detached":
        return EntropyPool(fc, weighting="linear", detach_weights=True)
    raise ValueError(f"unknown pooling {name!r}; choose one of {', '.join(POOLINGS)}")


class PoolHead(nn.Module):
    """Feature maps ``N x D x h x w`` -> pooling -> ``nn.Linear(D, n_classes)`` -> logits."""

    def __init__(self, pooling: str, in_channels: int, n_classes: int, temperature: float = 1.0, dropout: float = 0.0):
        super().__init__()
        self.pooling = pooling
        self.fc = nn.Linear(in_channels, n_classes)
        self.pool = make_pool(pooling, self.fc, temperature)
        self.drop = nn.Dropout(dropout)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.pool(maps.float())))

    def location_weights(self, maps: torch.Tensor) -> torch.Tensor | None:
        """The pooling's own location weights ``N x h x w`` (entropy / attention), else None."""
        return self.pool.weights(maps.float()) if hasattr(self.pool, "weights") else None

    def cam(self, maps: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """Class activation map ``W_c . f_i`` of class ``cls[n]`` for each image, ``N x h x w`` (Zhou et al.; for a
        GAP head, the logit of class c is the mean of this map plus the bias)."""
        w = self.fc.weight[cls]  # N x D
        return torch.einsum("ndhw,nd->nhw", maps.float(), w)


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (zero pad ``pad``) and horizontal flip of a batch ``N x 3 x H x W``, drawn from ``gen``."""
    n, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    ar_y, ar_x = torch.arange(h), torch.arange(w)
    rows = (dy[:, None] + ar_y[None]).to(x.device)  # N x H
    cols = dx[:, None] + ar_x[None]
    cols = torch.where(flip[:, None], cols.flip(1), cols).to(x.device)  # N x W
    idx = torch.arange(n, device=x.device)[:, None, None]
    return xp.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def losses(logits: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of a minibatch: a scalar for logits ``N x C``; for S networks side by side (logits
    ``N x S x C``, labels ``N x S``: ``poolrep.papers.entropy.GroupedNet``) the S networks' means, whose sum trains
    each network as if it trained alone."""
    if logits.ndim == 3:
        per_item = F.cross_entropy(logits.permute(0, 2, 1), y, label_smoothing=label_smoothing, reduction="none")
        return per_item.mean(0)
    return F.cross_entropy(logits, y, label_smoothing=label_smoothing)


def sgd_step(model: nn.Module, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor, label_smoothing=0.0):
    """One optimiser step of cross-entropy on a minibatch (the step ``train`` repeats; speed tables time it);
    returns the batch's mean loss (a list of S for S networks side by side, summed for the step)."""
    loss = losses(model(xb), yb, label_smoothing)
    opt.zero_grad(set_to_none=True)
    (loss if loss.ndim == 0 else loss.sum()).backward()
    opt.step()
    return loss.item() if loss.ndim == 0 else loss.tolist()


def sgd(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.SGD:
    """The optimiser of ``train``: SGD with Nesterov momentum 0.9."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)


HEAD_KEYS = ("head_epochs", "head_batch_size", "head_weight_decay", "head_dropout")


def head_recipe(p: dict) -> dict:
    """``fit_head``'s recipe from a stage's ``head_*`` parameters (``HEAD_KEYS``): epochs, batch, weight decay and
    dropout, the one place the entropy stage's heads and the zoo's attention baseline read them from (the learning
    rate and temperature are each caller's)."""
    missing = [k for k in HEAD_KEYS if k not in p]
    if missing:
        raise KeyError(f"head_recipe needs the parameters {', '.join(missing)}")
    return {
        "epochs": p["head_epochs"],
        "batch_size": p["head_batch_size"],
        "weight_decay": p["head_weight_decay"],
        "dropout": p["head_dropout"],
    }


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 5e-4,
    seed: int | Sequence[int] = 0,
    device: torch.device | str = "cpu",
    images: bool = True,
    desc: str = "train",
    evaluate=None,
    label_smoothing: float = 0.0,
    eval_every: int = 1,
    progress: bool = True,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> dict[str, list[float]] | list[dict[str, list[float]]]:
    """SGD (momentum 0.9, Nesterov), learning rate warmed up linearly over 15% of the steps then cosine-decayed;
    mini-batches and augmentation (crop + flip, only when ``images``) are drawn from one generator seeded with
    ``seed``, so a run is repeatable. ``x`` stays on the cpu (any dtype; batches are moved and cast to float32).
    Returns the learning curves: mean training loss per epoch, and ``evaluate(model)`` (e.g. test accuracy) after
    every ``eval_every``-th epoch and the last when given (NaN after the others), which shows whether the training
    reached a plateau. ``progress=False``: no progress bar (e.g. in a worker process, whose caller shows one).
    ``memory_format``: the one the model is in; augmented batches are handed over in it (``augment`` returns
    channels-last strides, which would otherwise put a contiguous network's convolutions in channels-last too).

    ``seed`` a list of S seeds: ``model`` is S networks side by side (``poolrep.papers.entropy.GroupedNet``), each
    with its own generator, hence the batches and augmentation it would draw alone, handed over side by side in the
    channels (labels ``N x S``); ``evaluate`` returns S values; the result is one curves dict per seed."""
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need as many labels as inputs (got {len(x)} and {len(y)}), and at least one")
    if epochs < 1 or batch_size < 1 or eval_every < 1:
        raise ValueError("epochs, batch_size and eval_every must be >= 1")
    grouped = not isinstance(seed, int)
    seeds = list(seed) if grouped else [seed]
    if not seeds:
        raise ValueError("need at least one seed")
    device = torch.device(device)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    model.to(device).train()
    opt = sgd(model, lr, weight_decay)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    warm = max(1, int(0.15 * steps))
    # linear warm-up then cosine decay (torch's OneCycleLR divides by zero on schedules of a few steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: (t + 1) / warm if t < warm else 0.5 * (1 + math.cos(math.pi * (t - warm) / max(1, steps - warm)))
    )
    losses_, evals = [], []
    bar = tqdm(range(epochs), desc=desc, leave=False, disable=not progress)
    for epoch in bar:
        perms = [torch.randperm(len(x), generator=g) for g in gens]
        tot, n = np.zeros(len(seeds)), 0
        for i in range(0, len(x), batch_size):
            xbs, ybs = [], []
            for perm, gen in zip(perms, gens):
                idx = perm[i : i + batch_size]
                xb = x[idx].to(device).float()
                xbs.append(augment(xb, gen) if images else xb)
                ybs.append(y[idx])
            xb, yb = (torch.cat(xbs, 1), torch.stack(ybs, 1)) if grouped else (xbs[0], ybs[0])
            if images:
                xb = xb.contiguous(memory_format=memory_format)
            loss = sgd_step(model, opt, xb, yb.to(device), label_smoothing)
            sched.step()
            tot += np.asarray(loss) * len(idx)
            n += len(idx)
        losses_.append(tot / n)
        if evaluate is not None:
            if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
                evals.append(np.asarray(evaluate(model), dtype=float).reshape(len(seeds)))
                model.train()
            else:
                evals.append(np.full(len(seeds), math.nan))  # not evaluated this epoch
        bar.set_postfix(loss=f"{losses_[-1].mean():.3f}")
    curves = [{"loss": [float(e[s]) for e in losses_], "eval": [float(e[s]) for e in evals]} for s in range(len(seeds))]
    return curves if grouped else curves[0]


def fit_head(
    pooling: str,
    seed: int,
    maps: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    temperature: float = 1.0,
    dropout: float = 0.0,
    device: torch.device | str = "cpu",
    evaluate=None,
) -> tuple[PoolHead, dict]:
    """A ``PoolHead`` trained on frozen backbone maps (only the head learns; no augmentation); and its curves."""
    torch.manual_seed(seed)
    head = PoolHead(pooling, maps.shape[1], int(labels.max()) + 1, temperature, dropout)
    curves = train(
        head,
        maps,
        labels,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        device=device,
        images=False,
        desc=f"head {pooling} s{seed}",
        evaluate=evaluate,
    )
    return head.cpu().eval(), curves
