"""The ``autopool`` stage's speed table: P's training step timed at the workers' thread count against this machine's
own GEMM rate, measured in the same call (``poolrep.bench``), and each training job's rate in the run.

P's step (:class:`poolrep.pooling.autopool.PStep`: the gradient, the fused Adam update and the projection onto
P >= 0, column block by column block: what :func:`~poolrep.pooling.autopool.train_autopool` repeats) is three
matrix products over K x D x 2B and one over K x D x 4B, 20 B K D FLOPs for B pairs: matrix-product work whose
limit is the machine's GEMM rate.
Its share of that rate depends on B (the inner dimension of the products; the update reads and writes P, its two
Adam moments and the gradient once per step whatever B is), so the table times the method's batch
(``batch_pairs``, the authors' 100) and the larger one of the recipe check (``batch_pairs_check``)."""

from __future__ import annotations

import numpy as np
import torch


def p_step(K: int, D: int, B: int, lam: float, seed: int = 0):
    """One training step of P (K x D) on a batch of B pairs of uniform [0, 1) features (sigmoid outputs' range),
    the step and buffers the training loop uses (:class:`~poolrep.pooling.autopool.PStep`, Adam): a closure for
    ``poolrep.bench``."""
    from ...pooling.autopool import PStep

    g = torch.Generator().manual_seed(seed)
    P = torch.rand(K, D, generator=g) / float(np.sqrt(K * D))
    xa, xb = torch.rand(B, D, generator=g), torch.rand(B, D, generator=g)
    step = PStep(P, lam, "adam", lr=1e-3)
    return lambda: step(xa, xb)


def speed_table(shapes: dict, scales_run: list, p: dict, repeats: int = 3):
    """Per size, K and batch (``batch_pairs`` and ``batch_pairs_check``): P's step timed at one torch thread (the
    workers' count) against the 1-thread GEMM rate measured in the same call. ``shapes``: size -> (C, H, W).
    Returns the table (``attrs["rates"]``: the limits)."""
    import pandas as pd

    from ... import bench

    rates = bench.machine_rates(1, repeats=5)
    batches = [b for b in (p["batch_pairs"], p["batch_pairs_check"]) if b]
    rows = []
    for sc in scales_run:
        D = int(np.prod(shapes[sc.name]))
        for K in sc.ks:
            for B in batches:
                r = bench.step_rate(p_step(K, D, B, p["lam"], p["seed"]), rates, repeats=repeats, warmup=1)
                rows.append({"size": sc.name, "K": K, "D": D, "batch": B, "method's batch": B == p["batch_pairs"], **r})
    table = pd.DataFrame(rows)
    table.attrs["rates"] = rates
    return table


def job_table(timings: dict, rates: dict):
    """Each training job's rate in the run (its P updates' FLOPs over their seconds, at one thread while the other
    worker ran beside it) as a share of the 1-thread GEMM rate of :func:`speed_table`."""
    import pandas as pd

    rows = [
        {
            "job": name,
            "steps": t["steps"],
            "seconds": t["seconds"],
            "on P": t["seconds_P"],
            "on features": t["seconds_features"],
            "GFLOP/s": t["gflops"],
            "of 1-thread GEMM": f"{t['gflops'] / rates['gemm_gflops']:.0%}",
        }
        for name, t in timings.items()
    ]
    return pd.DataFrame(rows)
