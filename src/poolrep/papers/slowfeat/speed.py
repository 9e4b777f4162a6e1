"""The ``slowfeat`` stage's speed table: each trained model's training step timed at the workers' thread count
against this machine's own GEMM and convolution rates, measured in the same call (``poolrep.bench``), and the
training jobs' estimated seconds (``train_seeds`` starts the longest first)."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from .experiment import specs_of, stack_cfgs, supervised_net
from .model import DECODERS, ConvAutoEncoder, ae_step, default_decoder, drlim_step, supervised_step, temporal_pairs


def speed_table(x: torch.Tensor, scene: np.ndarray, x_sup: torch.Tensor, y_sup: torch.Tensor, p: dict, repeats=10):
    """Each trained model's training step (``model.ae_step``, ``drlim_step``, ``supervised_step``: the steps the
    training repeats, on minibatches of the real frames and images) timed at one torch thread, the workers' count,
    against this machine's 1-thread GEMM and convolution rates measured in the same call (``poolrep.bench``).
    Returns ``(table, ms)``: ``ms[(model, layer)]`` the step's milliseconds (``train_seeds`` orders its jobs by
    them, longest first). Layer 2 is timed on the pooled maps of an untrained layer 1 (the shapes are the cost)."""
    import pandas as pd

    from ... import bench

    rates = bench.machine_rates(1, repeats)
    specs, rng = specs_of(p), np.random.default_rng(p["seed"])
    pairs = temporal_pairs(scene)
    pick = pairs[rng.integers(0, len(pairs), p["batch"])]
    neg = np.concatenate([pick[:, 0], pick[:, 1], rng.integers(0, len(scene), p["batch"] * p["negatives"])])
    torch.manual_seed(p["seed"])
    first = ConvAutoEncoder(x.shape[1], **specs[0]).eval()
    with torch.no_grad():  # each layer's input: frames, then layer 1's pooled maps
        inputs = [
            (x[pick[:, 0]], x[pick[:, 1]], x[neg]),
            tuple(first.features(x[i]) for i in (pick[:, 0], pick[:, 1], neg)),
        ]
    rows, ms = [], {}

    def timed(model, layer, what, net, step, batch):
        r = bench.step_rate(step, rates, repeats)
        ms[(model, layer)] = ms.get((model, layer), r["ms"])  # the recipe in use is timed first
        rows.append(
            {
                "model": model,
                "layer": layer,
                "recipe": what,
                "batch": batch,
                **r,
                "params": sum(t.numel() for t in net.parameters()),
            }
        )

    for model, (method, cfgs) in stack_cfgs(p, p["seed"]).items():
        for li, (spec, cfg) in enumerate(zip(specs, cfgs)):
            a, b, both = inputs[li]
            used = default_decoder(a.shape[1])  # the decoder this layer trains with, timed first
            others = [d for d in DECODERS if d != used] if model == "ours" else []
            kinds = [(f"decoder: {used} (in use)", used)] + [(f"decoder: {d}", d) for d in others]
            for what, decoder in kinds if method == "slow" else [("encoder", None)]:
                net = ConvAutoEncoder(a.shape[1], **spec, decoder=decoder)
                opt = torch.optim.Adam(net.parameters() if method == "slow" else net.enc.parameters(), lr=cfg.lr)
                if method == "slow":
                    step = partial(ae_step, net, opt, a, b, cfg)
                else:
                    step = partial(drlim_step, net.features, opt, both, len(a), cfg.negatives, cfg.margin)
                timed(model, f"L{li + 1}", what, net, step, len(both) if method == "drlim" else 2 * len(a))
    torch.manual_seed(p["seed"])
    sup = supervised_net(specs, p, y_sup)
    opt = torch.optim.Adam(sup.parameters(), lr=p["lr"])
    # a random minibatch, as in training: the first images of a class-sorted subset are one class, and repeated
    # steps on one class saturate the softmax into denormal numbers, which time 5x slower than any real step
    b = torch.from_numpy(rng.choice(len(y_sup), p["sup_batch"], replace=False))
    xb, yb = x_sup[b], y_sup[b]
    timed("supervised", "all", "cross-entropy", sup, partial(supervised_step, sup, opt, xb, yb), len(xb))
    table = pd.DataFrame(rows)
    table.attrs["rates"] = rates
    return table, ms


def job_seconds(ms: dict, p: dict) -> dict[str, float]:
    """Estimated seconds of each model's training job (one seed): its steps per layer times the speed table's
    milliseconds per step (``speed_table``)."""
    steps = {m: [c.steps for c in cfgs] for m, (_, cfgs) in stack_cfgs(p, p["seed"]).items()}
    out = {m: sum(n * ms[(m, f"L{i + 1}")] for i, n in enumerate(st)) / 1e3 for m, st in steps.items()}
    out["supervised"] = p["sup_steps"] * ms[("supervised", "all")] / 1e3
    return out
