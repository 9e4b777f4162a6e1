"""Auto-pooling's P (Sec. 3.2): trained on fresh frame pairs at each size, and judged on its own objective.

Two sizes run the same steps (:class:`Scale`): the paper's, 32x32 images and 27x27 maps (D = 72,900), and a
scaled-down replicate where every image, CIFAR-10 and frame patch alike, is area-resized to 16x16 first (11x11 maps,
D = 12,100). For each size, P for every K and seed on **fresh streamed pairs**
(:class:`poolrep.data.framepairs.PairStream`: every batch new pairs from every usable frame of each clip's first
``heldout_from``, never stored, none repeated), its held-out cost (optimally scaled,
:func:`poolrep.pooling.autopool.heldout_cost`) every ``curve_every`` pairs; then the diagnostics of the objective:
the grids' held-out costs at several lambdas, P started from the grid, each row's channel purity, a random P of the
same row density (each row's entries shuffled).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...data.framepairs import Pairs, PairStream
from .model import PatchModel, cluster_members, conv_features, resize_images

# --------------------------------------------------------------------------------------------- sizes


@dataclass
class Scale:
    """One size of the convolutional experiment: images ``side x side`` before the 6x6 SAE."""

    name: str  # "32px" (the paper's size) | "16px" (the scaled-down replicate)
    side: int
    ks: list[int]
    seeds: list[int]
    n_pairs: int  # fresh pairs per P
    sets: tuple[str, ...] = ("full", "small")  # the CIFAR-10 training sets of its Table 1

    @property
    def label(self) -> str:
        return (
            "paper size (32x32 images, 27x27 maps)"
            if self.side == 32
            else f"scaled-down replicate ({self.side}x{self.side} images, {self.side - 5}x{self.side - 5} maps)"
        )


def scales(p: dict) -> list[Scale]:
    """The paper's size and, if ``rep_side`` is set, the scaled-down replicate."""
    out = [Scale("32px", 32, list(p["ks"]), list(p["seeds"]), p["n_pairs"], tuple(p["train_sets"]))]
    if p["rep_side"]:
        out.append(Scale(f"{p['rep_side']}px", p["rep_side"], list(p["rep_ks"]), list(p["rep_seeds"]), p["rep_pairs"]))
    return out


# --------------------------------------------------------------------------------------------- frame pairs


def pair_stream(frames: list[np.ndarray], names: list[str], p: dict, seed: int, patch: int = 32) -> PairStream:
    """Fresh training pairs from every usable frame of each clip's first ``heldout_from`` of time."""
    return PairStream(frames, patch, p["cut_threshold"], (0.0, p["heldout_from"]), names, seed)


def heldout_pairs(stream: PairStream, n: int, p: dict) -> Pairs:
    """``n`` distinct pairs from the rest of each clip of the training ``stream`` (time P never trains on): P's
    held-out cost, invariance."""
    return next(stream.respan((p["heldout_from"], 1.0), p["seed"] + 1).batches(n, n))


def _feats(x, model: PatchModel, side: int, device) -> torch.Tensor:
    return conv_features(resize_images(x, side), model, device).flatten(1)


def feature_batches(pairs: Pairs, model: PatchModel, side: int, batch_size: int, device="cpu") -> list:
    """The conv features of every pair at ``side``, in batches, kept in memory (the held-out pairs)."""
    return [
        (
            _feats(pairs.a[s : s + batch_size], model, side, device),
            _feats(pairs.b[s : s + batch_size], model, side, device),
        )
        for s in range(0, len(pairs), batch_size)
    ]


def stream_batches(
    stream: PairStream, model: PatchModel, side: int, n_pairs: int, chunk: int, batch: int, device="cpu"
):
    """``batches(i)`` for :func:`poolrep.pooling.autopool.train_autopool`: ``n_pairs`` distinct fresh pairs drawn
    at once (none used twice in the whole run), served ``chunk`` at a time, their features computed per batch and
    never stored. One "epoch" of the trainer is one chunk, so the held-out cost is recorded every ``chunk`` pairs."""
    clip, t, y, x = stream.draw(n_pairs)

    def batches(i: int):
        for s in range(i * chunk, min((i + 1) * chunk, n_pairs), batch):
            e = min(s + batch, (i + 1) * chunk, n_pairs)
            b = stream.pairs(clip[s:e], t[s:e], y[s:e], x[s:e])
            yield _feats(b.a, model, side, device), _feats(b.b, model, side, device)

    return batches


# --------------------------------------------------------------------------------------------- training P


def row_stats(P: torch.Tensor, threshold: float, channels: int) -> dict[str, float]:
    """How distinct P's rows are: the mean cosine between pairs of rows (1: all rows the same pool), the members
    per pool (entries above ``threshold`` x the row's maximum), the share of rows that are all zero, and the mean
    channel purity (:func:`channel_purity`)."""
    P = P.double().cpu()
    n = P.norm(dim=1, keepdim=True)
    live = n[:, 0] > 0
    U = P[live] / n[live]
    G = U @ U.T
    k = len(U)
    cos = float((G.sum() - G.diagonal().sum()) / max(k * (k - 1), 1))
    members = [len(m) for m in cluster_members(P[live].numpy(), threshold)]
    purity = channel_purity(P, channels)
    return {
        "row_cosine": cos,
        "members_mean": float(np.mean(members)) if members else 0.0,
        "members_median": float(np.median(members)) if members else 0.0,
        "zero_rows": float(1 - live.double().mean()),
        "purity_mean": float(purity.mean()),
        "purity_median": float(np.median(purity)),
    }


def channel_purity(P: torch.Tensor, channels: int) -> np.ndarray:
    """Per row of ``P`` (K x C*H*W, columns in (c, y, x) order): the share of its mass in its largest feature map
    (1 for a spatial-pooling row, 1/C for a row spread evenly over the maps). Zero rows give 0."""
    P = torch.as_tensor(P).double().cpu()
    if P.ndim != 2 or P.shape[1] % channels:
        raise ValueError(f"P must be K x (C*H*W) with C = {channels}, got {tuple(P.shape)}")
    m = P.reshape(len(P), channels, -1).sum(-1)
    tot = m.sum(1)
    return torch.where(tot > 0, m.max(1).values / tot.clamp_min(1e-300), 0.0).numpy()


def shuffled_rows(P: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A random P of the same row density: each row's entries in a random order (same values, same members per row,
    same mass; no learned structure). The control for "pooling" against "pooling what P learned"."""
    g = torch.Generator().manual_seed(seed)
    P = torch.as_tensor(P).float().cpu()
    idx = torch.argsort(torch.rand(P.shape, generator=g), dim=1)
    return torch.gather(P, 1, idx)


@dataclass
class PoolRuns:
    """P for every (K, seed) of one :class:`Scale`, with what was measured on the way."""

    scale: Scale
    shape: tuple[int, int, int]
    P: dict = field(default_factory=dict)  # (K, seed) -> K x D tensor (cpu)
    info: dict = field(default_factory=dict)  # (K, seed) -> held-out costs, row statistics, timings
    checkpoints: dict = field(default_factory=dict)  # pairs seen -> P of (ks[0], seeds[0])

    def grid_of(self, K: int) -> tuple[int, int]:
        from ...pooling.spatial import grid_for

        return grid_for(K, self.shape[0])


# One P per job, in the processes of ``poolrep.workers.run`` (``train_procs`` of one torch thread each: on this
# 2-core machine two 1-thread processes update P 1.4x as fast as one 2-thread process, and a 1-thread step runs
# nearer the machine's GEMM rate, see :mod:`.speed`). A job's P depends on the job alone: its pairs come from
# ``stream.reseed(...)`` of the job's own seed and K, never from which process ran it or in which order.
_JOB: dict = {}
KINDS = ("ap", "grid", "batch")  # the method; P started from the same-K grid (diagnostic); the larger-batch recipe


@dataclass(frozen=True)
class PoolJob:
    """One P to train: ``kind`` "ap" (the paper's method: ``n_pairs`` fresh pairs from P's own start), "grid"
    (started from the same-K grid at its best scale: a diagnostic) or "batch" (the method with ``batch_pairs_check``
    pairs per step instead of ``batch_pairs``: the faster recipe, whose held-out curve is shown, not adopted)."""

    scale: str
    side: int
    K: int
    seed: int
    n_pairs: int
    kind: str = "ap"
    keep: tuple[int, ...] = ()  # pairs seen after which P is returned too (the learning curve's checkpoints)

    def work(self, D: int) -> float:
        """Its cost in K x D x pairs (the P updates dominate): ``train_all`` starts the longest first."""
        return float(self.K) * D * self.n_pairs


def pool_job_data(stream: PairStream, model: PatchModel, held: dict, shapes: dict, p: dict, device) -> None:
    """Set this process's training stream, patch model, held-out features per size, map shapes per size, params and
    device. The stream's frames arrive as tensors (shared memory, once per process) and are read as numpy."""
    import copy

    s = copy.copy(stream)
    s.frames = [np.asarray(f) for f in stream.frames]
    _JOB.clear()
    _JOB.update(stream=s, model=model, held=held, shapes=shapes, p=p, device=device)


def fit_pool_job(job: PoolJob) -> dict:
    """Train one P (``pool_job_data`` must have run in this process): ``{"P", "log", "checkpoints", "seconds"}``."""
    import time

    from ...pooling.autopool import heldout_cost, train_autopool
    from ...pooling.spatial import grid_for, grid_matrix

    if not _JOB:
        raise RuntimeError("pool_job_data(...) must run in this process before fit_pool_job")
    if job.kind not in KINDS:
        raise ValueError(f"unknown job kind {job.kind!r}; one of {KINDS}")
    t0 = time.perf_counter()
    p, dev, held = _JOB["p"], _JOB["device"], _JOB["held"][job.scale]
    C, H, W = _JOB["shapes"][job.scale]
    P0 = None
    if job.kind == "grid":
        P0 = grid_matrix(grid_for(job.K, C), C, H, W).to(dev)
        P0 = P0 * heldout_cost(P0, held, p["lam"], dev)["scale"]
    batch = p["batch_pairs_check"] if job.kind == "batch" else p["batch_pairs"]
    pairs = _JOB["stream"].reseed(999_999 if job.kind == "grid" else 1000 * job.seed + job.K)
    checkpoints = {}

    def keep(chunk, P):
        if chunk * p["curve_every"] in job.keep:
            checkpoints[chunk * p["curve_every"]] = P.detach().cpu().clone()

    m, log = train_autopool(
        stream_batches(pairs, _JOB["model"], job.side, job.n_pairs, p["curve_every"], batch, dev),
        job.K,
        C * H * W,
        p["lam"],
        job.n_pairs // p["curve_every"],
        p["lr"],
        p["optimizer"],
        job.seed,
        dev,
        P0=P0,
        init=p["init"],
        init_members=p["init_members"],
        momentum_after=p["momentum_after"],
        heldout=lambda: held,
        on_epoch=keep,
        progress=False,
    )
    if float(m.P.min()) < 0:
        raise AssertionError("P left the non-negative orthant")
    return {"P": m.P.detach().cpu(), "log": log, "checkpoints": checkpoints, "seconds": time.perf_counter() - t0}


def map_shape(model: PatchModel, side: int, device="cpu") -> tuple[int, int, int]:
    """``(C, H, W)`` of the conv features at ``side``."""
    return tuple(conv_features(resize_images(np.zeros((1, 32, 32, 3), np.uint8), side), model, device).shape[1:])


def pool_jobs(scales_run: list[Scale], shapes: dict, p: dict) -> list[PoolJob]:
    """Every P of the run, longest first: each size's (K, seed) of the method, its first K started from the grid,
    and (on the smallest size) the first K and seed with the larger batch."""
    jobs = []
    for sc in scales_run:
        k0, s0 = sc.ks[0], sc.seeds[0]
        for K in sc.ks:
            for s in sc.seeds:
                keep = tuple(p["curve_pairs"]) if (K, s) == (k0, s0) else ()
                jobs.append(PoolJob(sc.name, sc.side, K, s, sc.n_pairs, "ap", keep))
        jobs.append(PoolJob(sc.name, sc.side, k0, s0, p["grid_start_pairs"], "grid"))
    sc = min(scales_run, key=lambda s: s.side)
    if p["batch_pairs_check"]:
        jobs.append(PoolJob(sc.name, sc.side, sc.ks[0], sc.seeds[0], sc.n_pairs, "batch"))
    D = {n: int(np.prod(s)) for n, s in shapes.items()}
    return sorted(jobs, key=lambda j: -j.work(D[j.scale]))


def train_all(stream: PairStream, model: PatchModel, scales_run: list[Scale], held: dict, p: dict, device):
    """Every P of :func:`pool_jobs` in ``p['train_procs']`` processes of one torch thread (``poolrep.workers``; 1:
    here, on ``device``), judged on the objective: the optimally scaled held-out cost every ``curve_every`` pairs
    against the same-K sum-pooling grid's (a feasible P) and P = 0's. Returns ``(runs, from_grid, recipe)``:
    ``runs[size]`` a :class:`PoolRuns`; ``from_grid[size]`` the grid-started P's held-out curve; ``recipe`` the
    larger-batch P's held-out curve beside the method's (same size, K, seed and pairs), and each job's timing."""
    from ... import workers
    from ...pooling.autopool import heldout_cost
    from ...pooling.spatial import grid_matrix

    shapes = {sc.name: map_shape(model, sc.side, device) for sc in scales_run}
    jobs = pool_jobs(scales_run, shapes, p)
    procs = p["train_procs"]
    dev = device if procs == 1 else "cpu"
    shared = stream.reseed(stream.seed)
    shared.frames = [torch.from_numpy(np.ascontiguousarray(f)) for f in stream.frames]
    results = workers.run(
        fit_pool_job, jobs, procs, init=pool_job_data, init_args=(shared, model, held, shapes, p, dev), desc="P"
    )
    done = dict(zip(jobs, results))
    ap = {(j.scale, j.K, j.seed): r for j, r in done.items() if j.kind == "ap"}
    runs, from_grid, recipe = {}, {}, {"timings": {}}
    for sc in scales_run:
        C, H, W = shapes[sc.name]
        out = runs[sc.name] = PoolRuns(sc, (C, H, W))
        for K in sc.ks:
            gy, gx = out.grid_of(K)
            grid = heldout_cost(grid_matrix((gy, gx), C, H, W).to(device), held[sc.name], p["lam"], device)
            zero = heldout_cost(torch.zeros(K, C * H * W, device=device), held[sc.name], p["lam"], device)
            for s in sc.seeds:
                r = ap[(sc.name, K, s)]
                log = r["log"]
                final = heldout_cost(r["P"], held[sc.name], p["lam"], device)
                out.P[(K, s)] = r["P"]
                out.checkpoints.update(r["checkpoints"])
                out.info[(K, s)] = {
                    "scale": sc.name,
                    "K": K,
                    "seed": s,
                    "pairs": sc.n_pairs,
                    "heldout_cost": final["scaled"],
                    "grid_cost": grid["scaled"],
                    "zero_cost": zero["scaled"],
                    "grid": f"{gy}x{gx}",
                    "heldout_reconstruction": final["reconstruction"],
                    "grid_reconstruction": grid["reconstruction"],
                    "heldout_curve": log.heldout,
                    "train_cost_first": log.cost[0],
                    "train_cost_last": log.cost[-1],
                    "steps": log.steps,
                    "seconds_P": log.seconds,
                    "seconds_features": log.feature_seconds,
                    "gflops": log.gflops,
                    **row_stats(r["P"], p["cluster_threshold"], C),
                }
                print(
                    f"{sc.name} K={K} seed {s}: held-out cost {log.heldout[0]:.2f} -> {final['scaled']:.2f} after "
                    f"{sc.n_pairs:,} fresh pairs (grid {gy}x{gx}: {grid['scaled']:.2f}, P = 0: {zero['scaled']:.2f})"
                )
    for j in jobs:
        r = done[j]
        recipe["timings"][f"{j.scale} K={j.K} seed {j.seed} {j.kind}"] = {
            "seconds": r["seconds"],
            "seconds_P": r["log"].seconds,
            "seconds_features": r["log"].feature_seconds,
            "gflops": r["log"].gflops,
            "steps": r["log"].steps,
        }
        curve = r["log"].heldout
        if j.kind == "grid":
            from_grid[j.scale] = {"start": curve[0], "end": curve[-1], "curve": curve, "pairs": j.n_pairs}
        if j.kind == "batch":
            recipe.update(
                scale=j.scale,
                K=j.K,
                seed=j.seed,
                pairs=j.n_pairs,
                batch=p["batch_pairs_check"],
                curve=curve,
                method_batch=p["batch_pairs"],
                method_curve=runs[j.scale].info[(j.K, j.seed)]["heldout_curve"],
            )
    return runs, from_grid, recipe


TIMINGS = ("seconds_P", "seconds_features", "gflops")  # in run.json only: they change from one rerun to the next


def plateau(curve: list[float]) -> float:
    """The last step's relative fall of a held-out cost curve, ``(c[-2] - c[-1]) / c[-2]`` (near 0: flat)."""
    return float((curve[-2] - curve[-1]) / abs(curve[-2])) if len(curve) > 1 else float("nan")


# --------------------------------------------------------------------------------------------- diagnostics


def grid_cost_table(held: list, runs: PoolRuns, lams: list[float], grids: list[int], device="cpu"):
    """Held-out cost (optimally scaled) of the g x g sum-pooling grids, of P (the first seed, each K) and of its
    row-shuffled control, at each lambda in ``lams``: which pooling the objective itself prefers, and whether P
    beats the grids on reconstruction (lambda = 0) while it loses at the run's lambda."""
    import pandas as pd

    from ...pooling.autopool import heldout_cost
    from ...pooling.spatial import grid_matrix

    C, H, W = runs.shape
    codes = {f"SP {g}x{g}": grid_matrix(g, C, H, W) for g in grids if g <= min(H, W)}
    s0 = runs.scale.seeds[0]
    for K in runs.scale.ks:
        codes[f"AP K={K}"] = runs.P[(K, s0)]
        codes[f"random P K={K}"] = shuffled_rows(runs.P[(K, s0)], s0)
    rows = []
    for name, P in codes.items():
        row = {"code": name, "features": P.shape[0]}
        for lm in lams:
            row[f"lambda={lm:g}"] = heldout_cost(P.to(device), held, lm, device)["scaled"]
        rows.append(row)
    return pd.DataFrame(rows)
