"""Independent jobs (e.g. one small network trained per job) run side by side in ``procs`` processes.

- ``run(fn, jobs, procs, init=..., init_args=...)``: ``[fn(job) for job in jobs]``, in order. ``procs`` 1: in this
  process, with its torch threads as they are (the path a GPU run takes). ``procs`` > 1: a pool of that many
  *spawned* processes (fork is unsafe once torch has started its threads), each with one torch thread; ``init``
  runs once in each with ``init_args`` (the shared data: tensors travel through shared memory, once per process).

Why processes, with one thread each: the entropy stage's CIFAR ResNets are so small that one 2-thread process
leaves the second core half idle; on this 2-core machine two 1-thread processes train 1.2x as many models per
second (``benchmarks/train_procs.py``). And torch's cpu kernels sum in an order that depends on the thread
count, so one thread per job also makes a job's numbers independent of how many cores the machine has.
A job's result depends on the job alone, never on which process ran it or in which order: the caller seeds each
job itself.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm


def check_procs(procs: Any) -> int:
    if isinstance(procs, bool) or not isinstance(procs, int) or procs < 1:
        raise ValueError(f"procs must be a positive integer, got {procs!r}")
    return procs


def _start(init: Callable | None, init_args: tuple) -> None:
    torch.set_num_threads(1)
    if init is not None:
        init(*init_args)


def run(fn: Callable, jobs: Sequence, procs: int, *, init: Callable | None = None, init_args: tuple = (),
        desc: str = "jobs") -> list:
    """``[fn(job) for job in jobs]`` in ``procs`` processes (see the module). ``fn`` and ``init`` must be importable
    module-level functions (a spawned process imports them by name); jobs are handed out in the given order, so put
    the longest first. An exception in a job is raised here."""
    procs = check_procs(procs)
    jobs = list(jobs)
    if procs == 1:
        if init is not None:
            init(*init_args)
        return [fn(j) for j in tqdm(jobs, desc=desc)]
    ctx = torch.multiprocessing.get_context("spawn")
    # a pool even for one job: the thread count, hence the numbers, must depend on ``procs`` alone
    with ctx.Pool(min(procs, max(1, len(jobs))), initializer=_start, initargs=(init, init_args)) as pool:
        return list(tqdm(pool.imap(fn, jobs, chunksize=1), total=len(jobs), desc=f"{desc} ({procs} processes)"))
