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
    out = [Scale("32px", 32, list(p["ks"]), [p["seed"]], p["n_pairs"], tuple(p["train_sets"]))]
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


def train_pools(stream: PairStream, model: PatchModel, sc: Scale, held: list, p: dict, device, run) -> PoolRuns:
    """P for every K in ``sc.ks`` and seed in ``sc.seeds`` on ``sc.n_pairs`` fresh pairs of ``stream`` (the seed
    sets P's start and the pairs drawn), judged on the objective: the optimally scaled held-out cost every ``curve_every`` pairs
    against the same-K sum-pooling grid's (a feasible P) and P = 0's."""
    from ...pooling.autopool import heldout_cost, train_autopool
    from ...pooling.spatial import grid_matrix

    C, H, W = conv_features(resize_images(np.zeros((1, 32, 32, 3), np.uint8), sc.side), model, device).shape[1:]
    out = PoolRuns(sc, (C, H, W))
    D = C * H * W
    chunks = sc.n_pairs // p["curve_every"]
    for K in sc.ks:
        gy, gx = out.grid_of(K)
        grid = heldout_cost(grid_matrix((gy, gx), C, H, W).to(device), held, p["lam"], device)
        zero = heldout_cost(torch.zeros(K, D, device=device), held, p["lam"], device)
        for s in sc.seeds:
            pairs = stream.reseed(1000 * s + K)

            def keep(chunk, P, K=K, s=s):
                seen = chunk * p["curve_every"]
                if K == sc.ks[0] and s == sc.seeds[0] and seen in p["curve_pairs"]:
                    out.checkpoints[seen] = P.detach().cpu().clone()

            with run.timed(f"P {sc.name} K={K} seed {s}"):
                m, log = train_autopool(
                    stream_batches(pairs, model, sc.side, sc.n_pairs, p["curve_every"], p["batch_pairs"], device),
                    K,
                    D,
                    p["lam"],
                    chunks,
                    p["lr"],
                    p["optimizer"],
                    s,
                    device,
                    init=p["init"],
                    init_members=p["init_members"],
                    momentum_after=p["momentum_after"],
                    heldout=lambda: held,
                    on_epoch=keep,
                    desc=f"AP {sc.name} K={K} seed {s}",
                )
            if float(m.P.min()) < 0:
                raise AssertionError("P left the non-negative orthant")
            final = heldout_cost(m.P, held, p["lam"], device)
            out.P[(K, s)] = m.P.detach().cpu()
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
                **row_stats(m.P, p["cluster_threshold"], C),
            }
            print(
                f"{sc.name} K={K} seed {s}: held-out cost {log.heldout[0]:.2f} -> {final['scaled']:.2f} after "
                f"{sc.n_pairs:,} fresh pairs (grid {gy}x{gx}: {grid['scaled']:.2f}, P = 0: {zero['scaled']:.2f}); "
                f"{log.seconds:.0f} s on P, {log.feature_seconds:.0f} s on features"
            )
    return out


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


def p_from_grid(stream: PairStream, model: PatchModel, runs: PoolRuns, held: list, p: dict, device, run) -> dict:
    """A diagnostic, not the paper's method ("without using the explicit spatial information"): P for the first K
    started from the same-K grid (at its best scale) and trained on ``grid_start_pairs`` fresh pairs. If it goes
    below the grid, the objective has better points near the grid than P's own start reaches."""
    from ...pooling.autopool import heldout_cost, train_autopool
    from ...pooling.spatial import grid_matrix

    sc, (C, H, W) = runs.scale, runs.shape
    K = sc.ks[0]
    G = grid_matrix(runs.grid_of(K), C, H, W).to(device)
    G = G * heldout_cost(G, held, p["lam"], device)["scale"]
    pairs = stream.reseed(999_999)
    with run.timed(f"P from the grid {sc.name}"):
        _, log = train_autopool(
            stream_batches(pairs, model, sc.side, p["grid_start_pairs"], p["curve_every"], p["batch_pairs"], device),
            K,
            C * H * W,
            p["lam"],
            p["grid_start_pairs"] // p["curve_every"],
            p["lr"],
            p["optimizer"],
            sc.seeds[0],
            device,
            P0=G,
            heldout=lambda: held,
            desc=f"P from the grid ({sc.name})",
        )
    return {"start": log.heldout[0], "end": log.heldout[-1], "curve": log.heldout, "pairs": p["grid_start_pairs"]}
