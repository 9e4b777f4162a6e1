"""Feature extraction on every visible GPU with PyTorch's own tools: ``torchrun`` starts one process per GPU,
``torch.distributed`` (gloo) joins them, each extracts a contiguous shard of the images, and the shards are
gathered back in order (:func:`poolrep.features.extract` does the sharding when a group is up).

- ``procs(setting)``: how many processes a stage asks for (``"auto"``: one per visible GPU, at least 1).
- ``launch(args, n)``: re-run ``poolrep <args>`` under ``python -m torch.distributed.run`` with n processes.
- ``group()``: inside a torchrun worker, join the process group (gloo: the gathered maps are numpy arrays in
  host memory, so NCCL would only add copies) and pin the worker to its GPU; a no-op in a plain process.

gloo also runs on CPU-only machines, which is how the tests run two real processes on this 2-core box.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch


def procs(setting: int | str) -> int:
    """Processes for a stage's ``extract_procs`` parameter: a positive int, or ``"auto"`` (one per visible GPU,
    1 without a GPU)."""
    if setting == "auto":
        return max(1, torch.cuda.device_count())
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ValueError(f"extract_procs must be a positive integer or 'auto', got {setting!r}")
    return setting


def in_worker() -> bool:
    """True inside a process torchrun started (it sets WORLD_SIZE and LOCAL_RANK)."""
    return "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def torchrun_command(args: Sequence[str], n: int) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc-per-node n -m poolrep.cli <args>``."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={n}",
        "-m",
        "poolrep.cli",
        *args,
    ]


def launch(args: Sequence[str], n: int) -> int:
    """Run ``poolrep <args>`` as n torchrun workers; their exit status (non-zero if any worker failed)."""
    cmd = torchrun_command(args, n)
    print(f"[distributed] {n} processes: {' '.join(cmd[1:])}", flush=True)
    # torchrun sets OMP_NUM_THREADS=1 per worker unless told otherwise; keep the cores shared out evenly
    env = {**os.environ}
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))
    return subprocess.run(cmd, env=env).returncode


def rank_world() -> tuple[int, int]:
    """(rank, world size) of this process's torch.distributed group, or (0, 1) outside one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _worker_gpu() -> int:
    """This torchrun worker's GPU: ``LOCAL_RANK``, wrapped over the visible GPUs."""
    return int(os.environ.get("LOCAL_RANK", "0")) % max(1, torch.cuda.device_count())


def local_device(device: torch.device) -> torch.device:
    """Inside a group, a bare ``cuda`` means this worker's own GPU (``cuda:LOCAL_RANK``)."""
    if device.type == "cuda" and device.index is None and rank_world()[1] > 1:
        return torch.device("cuda", _worker_gpu())
    return device


@contextmanager
def group() -> Iterator[tuple[int, int]]:
    """Join torchrun's process group for the duration (yields (rank, world)); outside torchrun, (0, 1)."""
    import torch.distributed as dist

    if not in_worker() or dist.is_initialized():
        yield rank_world()
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(_worker_gpu())
    dist.init_process_group("gloo")
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        dist.destroy_process_group()


def shard(n: int, rank: int, world: int) -> slice:
    """The contiguous part of ``range(n)`` that ``rank`` of ``world`` handles: sizes differ by at most one, the
    parts are disjoint, in rank order, and cover everything (some are empty when n < world)."""
    if world < 1 or not 0 <= rank < world or n < 0:
        raise ValueError(f"bad shard request: n={n}, rank={rank}, world={world}")
    q, r = divmod(n, world)
    lo = rank * q + min(rank, r)
    return slice(lo, lo + q + (rank < r))


def gather(part: dict, rank: int, world: int) -> dict:
    """Every rank's ``{name: array}`` shard concatenated in rank order, on rank 0; ``{}`` on the others.

    The shards travel through files in a temporary folder on this machine (torchrun ``--standalone`` is one
    machine), not through pickled collectives: a paper-profile backbone cache is several GB, and only rank 0
    writes it."""
    import shutil
    import tempfile
    from pathlib import Path

    import numpy as np
    import torch.distributed as dist

    box = [tempfile.mkdtemp(prefix="poolrep-gather-") if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    folder = Path(box[0])
    with open(folder / f"part{rank}.npz", "wb") as fh:
        np.savez(fh, **part)
    dist.barrier()
    out: dict = {}
    if rank == 0:
        try:
            parts = [dict(np.load(folder / f"part{r}.npz")) for r in range(world)]
            keys = next((list(p) for p in parts if p), [])
            out = {k: np.concatenate([p[k] for p in parts if p]) for k in keys}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    dist.barrier()
    return out
