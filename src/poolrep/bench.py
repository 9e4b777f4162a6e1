"""This machine's own limits, measured in the run that compares a loop against them.

A loop's speed means little as seconds: the same code runs 1.5x faster on one host than on another. What says
whether a loop is near what the machine can do is its rate against the machine's own rate for the same kind of
work, both measured in the same process, at the same thread count:

- :func:`gemm_gflops`: a square float32 matrix product (``2 n^3`` FLOPs);
- :func:`conv_gflops`: a float32 3 x 3 convolution, 64 -> 64 channels on 32 x 32 maps, batch 32
  (``2 N C_out H W C_in k^2`` FLOPs): a well-shaped convolution, the rate a convolutional step can hope for;
- :func:`count_flops`: the FLOPs of one call of a step (forward and backward), counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions; element-wise work counts 0, so a
  step's rate against the limits is what its arithmetic achieves, its element-wise overhead included in the time);
- :func:`seconds_per_call`: the median wall time of a call after warm-up calls.

A step's time is the median of ``repeats`` timed calls (one descheduled call must not move it); a limit's is the
fastest of its calls (what the machine reached, so a step's share of it errs low, never high).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads, then restore the count."""
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seconds_per_call(fn: Callable[[], object], repeats: int = 10, warmup: int = 3, fastest: bool = False) -> float:
    """Median (``fastest``: the least) wall seconds of ``fn()`` over ``repeats`` calls after ``warmup`` untimed
    ones."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.min(times) if fastest else np.median(times))


def count_flops(fn: Callable[[], object]) -> float:
    """FLOPs of one call of ``fn`` (matrix products and convolutions, forward and backward), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def gemm_gflops(n: int = 1024, repeats: int = 10) -> float:
    """GFLOP/s of an ``n x n`` float32 matrix product at the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / seconds_per_call(lambda: a @ b, repeats, fastest=True) / 1e9


def conv_gflops(batch: int = 32, channels: int = 64, size: int = 32, kernel: int = 3, repeats: int = 10) -> float:
    """GFLOP/s of a float32 ``kernel x kernel`` convolution (``channels`` -> ``channels``, ``size`` x ``size`` maps,
    'same' padding) at the current thread count."""
    x, w = torch.randn(batch, channels, size, size), torch.randn(channels, channels, kernel, kernel)
    flops = 2 * batch * channels * channels * size * size * kernel * kernel
    return flops / seconds_per_call(lambda: F.conv2d(x, w, padding=kernel // 2), repeats, fastest=True) / 1e9


def machine_rates(n_threads: int, repeats: int = 10) -> dict[str, float]:
    """``{"threads", "gemm_gflops", "conv_gflops"}``: this machine's limits at ``n_threads`` threads, now."""
    with threads(n_threads):
        return {
            "threads": n_threads,
            "gemm_gflops": gemm_gflops(repeats=repeats),
            "conv_gflops": conv_gflops(repeats=repeats),
        }


def step_rate(
    step: Callable[[], object], rates: dict, repeats: int = 10, warmup: int = 3, gflop: float | None = None
) -> dict[str, float]:
    """One training step's cost and speed against ``rates`` (:func:`machine_rates`, the same thread count):
    ``{"gflop", "ms", "gflops", "of_conv", "of_gemm"}`` (``of_*``: the achieved rate as a fraction of the limit).
    ``gflop``: the step's GFLOP when torch's counter gets them wrong (it counts a grouped convolution's backward
    several times over), else counted."""
    with threads(int(rates["threads"])):
        if gflop is None:
            gflop = count_flops(step) / 1e9
        s = seconds_per_call(step, repeats, warmup)
    rate = gflop / s
    return {
        "gflop": gflop,
        "ms": 1e3 * s,
        "gflops": rate,
        "of_conv": rate / rates["conv_gflops"],
        "of_gemm": rate / rates["gemm_gflops"],
    }


def display(table):
    """A table of :func:`step_rate` rows for people (``table.attrs["rates"]``: the limits, kept): milliseconds,
    GFLOP/s and the shares of this machine's limits as percentages."""
    out = table.rename(columns={"gflop": "GFLOP / step", "ms": "ms / step", "gflops": "GFLOP/s"}).copy()
    threads = int(table.attrs["rates"]["threads"])
    out[f"of {threads}-thread conv"] = [f"{x:.0%}" for x in table["of_conv"]]
    out[f"of {threads}-thread GEMM"] = [f"{x:.0%}" for x in table["of_gemm"]]
    out.attrs["rates"] = table.attrs["rates"]
    return out.drop(columns=["of_conv", "of_gemm"])
