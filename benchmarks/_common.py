"""Helpers shared by the benchmark scripts (each script is run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence

os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars in a printed table
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from tabulate import tabulate  # noqa: E402


def table(rows: Sequence[Sequence], headers: Sequence[str], title: str = "") -> str:
    out = tabulate(rows, headers=headers, tablefmt="github", floatfmt=".4g", disable_numparse=True)
    return (f"### {title}\n\n" if title else "") + out


def machine() -> str:
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    dev = f"cuda:{torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    return (
        f"{dev}, torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}, load average {load:.2f} at start"
    )


def timed(fn: Callable[[], object], sync: Callable[[], None] = lambda: None) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def best_and_median(xs: Sequence[float]) -> tuple[float, float]:
    return max(xs), statistics.median(xs)


def verdict(ratio: float, target: float) -> str:
    if ratio != ratio:  # NaN
        return "n/a"
    return f"{'MET' if ratio >= target else 'MISSED'} (target >= {target:.0%}, got {ratio:.0%})"
