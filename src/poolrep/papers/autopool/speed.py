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


def paired_rate(step, gflop: float, repeats: int = 5, warmup: int = 1, gemm_calls: int = 5) -> dict[str, float]:
    """One step's time and its share of the GEMM rate measured right before each timed call, at the current thread
    count: per repeat, the fastest of ``gemm_calls`` 1024-cubed products (``poolrep.bench.gemm_gflops``), then one
    call of ``step``; that repeat's share is the step's rate over that GEMM rate. This host's GEMM rate drifts
    (172 to 229 GFLOP/s over one afternoon, 2026-12-07) while a row's step runs minutes after a limit measured
    once, which moved a step's share by up to 20 points; paired, each share compares the two at one moment.
    ``{"gflop", "ms", "gflops", "gemm_gflops", "of_gemm", "of_gemm_lo", "of_gemm_hi"}``: median step time and
    rate, median GEMM rate, and the median, least and greatest of the repeats' shares."""
    from ... import bench

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        step()
    seconds, gemm = [], []
    for _ in range(repeats):
        gemm.append(bench.gemm_gflops(repeats=gemm_calls))
        seconds.append(bench.seconds_per_call(step, repeats=1, warmup=0))
    seconds, gemm = np.asarray(seconds), np.asarray(gemm)
    shares = gflop / seconds / gemm
    return {
        "gflop": gflop,
        "ms": 1e3 * float(np.median(seconds)),
        "gflops": gflop / float(np.median(seconds)),
        "gemm_gflops": float(np.median(gemm)),
        "of_gemm": float(np.median(shares)),
        "of_gemm_lo": float(shares.min()),
        "of_gemm_hi": float(shares.max()),
    }


def speed_table(shapes: dict, scales_run: list, p: dict, repeats: int = 5):
    """Per size, K and batch (``batch_pairs`` and ``batch_pairs_check``): P's step timed at one torch thread (the
    workers' count) against the 1-thread GEMM rate measured right before each timed call (:func:`paired_rate`).
    ``shapes``: size -> (C, H, W). Returns the table (``attrs["rates"]``: the limits measured once at the start,
    for :func:`job_table`)."""
    import pandas as pd

    from ... import bench
    from ...pooling.autopool import flops_per_batch

    rates = bench.machine_rates(1, repeats=5)
    batches = [b for b in (p["batch_pairs"], p["batch_pairs_check"]) if b]
    rows = []
    with bench.threads(1):
        for sc in scales_run:
            D = int(np.prod(shapes[sc.name]))
            for K in sc.ks:
                for B in batches:
                    step = p_step(K, D, B, p["lam"], p["seed"])
                    r = paired_rate(step, flops_per_batch(B, K, D) / 1e9, repeats)
                    rows.append(
                        {"size": sc.name, "K": K, "D": D, "batch": B, "method's batch": B == p["batch_pairs"], **r}
                    )
    table = pd.DataFrame(rows)
    table.attrs["rates"] = rates
    return table


def display_speed(table):
    """:func:`speed_table` for people: milliseconds, GFLOP/s, the GEMM rate of the row's moment and the step's
    share of it (median, and the range over the repeats) as percentages."""
    out = table.drop(columns=["of_gemm", "of_gemm_lo", "of_gemm_hi"]).rename(
        columns={"gflop": "GFLOP / step", "ms": "ms / step", "gflops": "GFLOP/s", "gemm_gflops": "GEMM GFLOP/s"}
    )
    out["of 1-thread GEMM"] = [f"{x:.0%}" for x in table["of_gemm"]]
    out["range"] = [f"{lo:.0%}-{hi:.0%}" for lo, hi in zip(table["of_gemm_lo"], table["of_gemm_hi"])]
    return out


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
