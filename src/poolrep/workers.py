"""Independent jobs (e.g. one small network trained per job) run side by side in ``procs`` processes.

- ``run(fn, jobs, procs, init=..., init_args=...)``: ``[fn(job) for job in jobs]``, in order. ``procs`` 1: in this
  process, with its torch threads as they are (the path a GPU run takes). ``procs`` > 1: a
  ``concurrent.futures.ProcessPoolExecutor`` of that many *spawned* processes (fork is unsafe once torch has started
  its threads), each with one torch thread; ``init`` runs once in each with ``init_args`` (the shared data: tensors
  travel through shared memory, once per process).

Why processes, with one thread each: the entropy stage's CIFAR ResNets are so small that one 2-thread process
leaves the second core half idle; on this 2-core machine two 1-thread processes train 1.2x as many models per
second (``benchmarks/train_procs.py``). And torch's cpu kernels sum in an order that depends on the thread
count, so one thread per job also makes a job's numbers independent of how many cores the machine has.
A job's result depends on the job alone, never on which process ran it or in which order: the caller seeds each
job itself.

A worker that dies (a crash in a native kernel, the kernel's out-of-memory killer, ``os._exit``) fails the whole
``run`` at once with :class:`WorkerDied`, which names the job it was running, its process and how that process
ended. ``multiprocessing.Pool`` would instead replace the dead worker and wait forever for the lost job's result,
which is how a crashed worker once hung CI and would hang ``dvc repro`` (issue 29).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import torch
from tqdm.auto import tqdm


class WorkerDied(RuntimeError):
    """A worker process of :func:`run` ended while it was running a job (its message names the job)."""


def check_procs(procs: Any) -> int:
    if isinstance(procs, bool) or not isinstance(procs, int) or procs < 1:
        raise ValueError(f"procs must be a positive integer, got {procs!r}")
    return procs


_PIDS = None  # shared with the parent: _PIDS[i] is the pid of the process that took job i (0: not started)


def _start(init: Callable | None, init_args: tuple, pids) -> None:
    global _PIDS
    _PIDS = pids
    torch.set_num_threads(1)
    if init is not None:
        init(*init_args)


def _call(fn: Callable, i: int, job):
    """Run job ``i`` in a worker, first noting which process took it (so that a crash can be named)."""
    _PIDS[i] = os.getpid()
    return fn(job)


def _ended(code: int | None) -> str:
    """How a process ended, in words: its exit code, or the signal that killed it."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _exit_codes(procs: dict, wait_s: float = 5.0) -> dict:
    """Each process's exit code, waiting up to ``wait_s`` for at least one to be known: the pool can report itself
    broken before the dead process has been reaped, and its code read then is None ("still running"), which once
    named no cause on a loaded machine."""
    deadline = time.monotonic() + wait_s
    while True:
        codes = {pid: p.exitcode for pid, p in procs.items()}
        if any(c is not None for c in codes.values()) or time.monotonic() > deadline:
            return codes
        time.sleep(0.05)


def _died(jobs: list, done: set[int], pids, procs: dict) -> WorkerDied:
    """The error for a pool whose worker died: which jobs were running, in which process, and how each ended."""
    running = {i: pid for i, pid in enumerate(pids[:]) if pid}
    lost = sorted(i for i in running if i not in done)
    codes = _exit_codes(procs)
    dead = {pid for pid, c in codes.items() if c is not None and c != -signal.SIGTERM}  # SIGTERM: the executor's
    culprits = [i for i in lost if running[i] in dead] or lost
    if culprits:
        what = "while running " + "; ".join(
            f"job {i} {jobs[i]!r} in process {running[i]} ({_ended(codes.get(running[i]))})" for i in culprits
        )
    else:
        what = (
            "before any job started (in its initializer?): "
            + "; ".join(f"process {pid} ({_ended(c)})" for pid, c in codes.items() if c is not None)
            or "no exit code known"
        )
    return WorkerDied(
        f"a worker process died {what}. Its result is lost, so the run stops here instead of waiting "
        f"for it. Look for a native crash (the worker's stderr above: 'corrupted size', 'Segmentation fault') or the "
        f"out-of-memory killer (dmesg); to see the crash in this process, rerun with procs 1 (e.g. train_procs: 1)."
    )


def run(
    fn: Callable, jobs: Sequence, procs: int, *, init: Callable | None = None, init_args: tuple = (), desc: str = "jobs"
) -> list:
    """``[fn(job) for job in jobs]`` in ``procs`` processes (see the module). ``fn`` and ``init`` must be importable
    module-level functions (a spawned process imports them by name); jobs are handed out in the given order, so put
    the longest first. An exception in a job is raised here; a worker that dies raises :class:`WorkerDied`."""
    procs = check_procs(procs)
    jobs = list(jobs)
    if procs == 1:
        if init is not None:
            init(*init_args)
        return [fn(j) for j in tqdm(jobs, desc=desc)]
    ctx = torch.multiprocessing.get_context("spawn")
    pids = ctx.Array("q", len(jobs), lock=False)  # shared memory: no pipe for a worker to block on
    # a pool even for one job: the thread count, hence the numbers, must depend on ``procs`` alone
    ex = ProcessPoolExecutor(
        min(procs, max(1, len(jobs))), mp_context=ctx, initializer=_start, initargs=(init, init_args, pids)
    )
    done: set[int] = set()
    out = []
    failed = True
    try:
        futures = [ex.submit(_call, fn, i, j) for i, j in enumerate(jobs)]
        processes = dict(ex._processes or {})  # every worker is started by now; kept to read their exit codes
        for i, f in enumerate(tqdm(futures, desc=f"{desc} ({procs} processes)")):
            try:
                out.append(f.result())
            except BrokenProcessPool as e:
                processes.update(ex._processes or {})
                finished = {
                    k for k, g in enumerate(futures) if g.done() and not g.cancelled() and g.exception() is None
                }
                raise _died(jobs, done | finished, pids, processes) from e
            done.add(i)
        failed = False
    finally:
        if failed:  # an error: the other workers' jobs are not wanted, so do not wait minutes for them to finish
            for proc in list((ex._processes or {}).values()):
                proc.terminate()
        ex.shutdown(wait=True, cancel_futures=True)
    return out
