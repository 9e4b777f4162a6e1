"""Auto-pooling (Sukhbaatar, Makino & Aihara 2013): a learned non-negative pooling matrix.

Features ``x`` (D-d, non-negative) are pooled by ``z = P x`` with ``P >= 0`` (K x D). P is learned from pairs of
temporally adjacent inputs ``(x_t, x_t+1)`` by minimising, averaged over pairs,

    C(P) = 0.5 ||x_t - P^T P x_t||^2 + 0.5 ||x_t+1 - P^T P x_t+1||^2 + lambda * 0.5 ||P x_t - P x_t+1||^2

(reconstruction through the pooled code, plus an invariance term that pulls the pooled codes of neighbours
together). Non-negativity is kept by projection: after each step ``P <- max(P, 0)`` (the author's code clips
at 0). The gradient is analytic (:func:`cost_and_grad`; checked against autograd in the tests): with
``X = [X_t; X_t+1]`` (2B x D) for a batch of B pairs, ``Z = X P^T``, ``E = Z P - X`` and
``dz = Z_t - Z_t+1``,

    dC/dP = (Z^T E + (E P^T + lam [dz; -dz])^T X) / B

(the invariance term ``lam dz^T (X_t - X_t+1)`` is folded into the factor of X, so it costs no product of its
own): ``20 B K D`` flops per batch, four products (``Z``, ``E``, ``E P^T`` over K x D x 2B, the gradient over
K x D x 4B); :func:`train_autopool` reports the achieved GFLOP/s from that count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


def _flat(x: torch.Tensor, D: int, what: str = "x") -> torch.Tensor:
    if x.ndim == 4:
        x = x.reshape(x.shape[0], -1)
    if x.ndim != 2 or x.shape[1] != D:
        raise ValueError(
            f"{what}: expected N x {D} features (or N x C x H x W maps with C*H*W = {D}), got shape {tuple(x.shape)}"
        )
    return x


class AutoPool(nn.Module):
    """``z = P x``: ``N x D`` (or ``N x C x H x W``, flattened in C, H, W order) -> ``N x K``. ``P`` (K x D) must
    be non-negative."""

    def __init__(self, P: torch.Tensor):
        super().__init__()
        P = torch.as_tensor(P)
        if P.ndim != 2:
            raise ValueError(f"P must be K x D, got shape {tuple(P.shape)}")
        if not P.is_floating_point():
            raise ValueError(f"P must be a floating-point tensor, got {P.dtype}")
        if (P < 0).any():
            raise ValueError("P must be non-negative")
        self.P = nn.Buffer(P)

    @property
    def K(self) -> int:
        return self.P.shape[0]

    @property
    def D(self) -> int:
        return self.P.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _flat(x, self.D)
        return x.to(self.P.dtype) @ self.P.T

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``P^T P x``."""
        return self.forward(x) @ self.P


def cost(P: torch.Tensor, xa: torch.Tensor, xb: torch.Tensor, lam: float) -> torch.Tensor:
    """The auto-pooling cost averaged over the B pairs ``(xa[i], xb[i])`` (autograd-friendly reference)."""
    D = P.shape[1]
    xa, xb = _flat(xa, D, "xa"), _flat(xb, D, "xb")
    if xa.shape != xb.shape:
        raise ValueError(f"xa and xb must have the same shape, got {tuple(xa.shape)} and {tuple(xb.shape)}")
    za, zb = xa @ P.T, xb @ P.T
    rec = 0.5 * ((za @ P - xa) ** 2).sum() + 0.5 * ((zb @ P - xb) ** 2).sum()
    inv = 0.5 * lam * ((za - zb) ** 2).sum()
    return (rec + inv) / xa.shape[0]


OPTIMIZERS = ("momentum", "sgd", "adam")  # P's updates (see train_autopool)

BLOCK_COLUMNS = 2048
"""Columns of P per block of a training step (:class:`PStep`) on the CPU. The gradient of a block of columns
needs only that block of P, E and X (and the small ``Z`` and ``E P^T``), so the step runs block by block and
the optimiser updates each block while its gradient is still in cache, instead of writing the whole K x D
gradient to memory and reading it back. Measured on the stage's 32-px step (K = 400, D = 72,900, B = 100, one
thread, ``benchmarks/autopool_speed.py``'s step): 366-369 ms as one block, 356-359 ms in blocks of 2,048 (512 to
4,096 within 2 %); at 16 px (D = 12,100, which with Adam's moments fits in this machine's cache) the blocks
change nothing beyond the noise. On a GPU P is one block."""


def _factor(blocks, works, B: int, lam: float):
    """The left factor of the gradient, ``[Z; E P^T + lam [dz; -dz]]^T / B`` (K x 4B), and the two cost terms
    (sums over the batch), from P's column ``blocks`` and, per block, its contiguous ``works`` buffer (4B rows:
    ``E`` written into the first 2B, ``X`` read from the last 2B): one pass over the blocks for ``Z = X P^T``,
    one for ``E = Z P - X`` and ``E P^T``. Sums over blocks use ``addmm(out=)``: the in-place ``addmm_`` is not
    in torch's FLOP counter (``poolrep.bench``)."""
    Z = works[0][2 * B :] @ blocks[0].T
    for Pj, Wj in zip(blocks[1:], works[1:]):
        torch.addmm(Z, Wj[2 * B :], Pj.T, out=Z)
    rec = 0.0
    for j, (Pj, Wj) in enumerate(zip(blocks, works)):
        Ej = torch.mm(Z, Pj, out=Wj[: 2 * B]).sub_(Wj[2 * B :])  # addmm(beta=-1) copies X in first: slower
        if j == 0:
            EPt = Ej @ Pj.T
        else:
            torch.addmm(EPt, Ej, Pj.T, out=EPt)
        rec += float(torch.linalg.vector_norm(Ej)) ** 2
    dz = Z[:B] - Z[B:]
    EPt[:B].add_(dz, alpha=lam)
    EPt[B:].sub_(dz, alpha=lam)
    left = torch.cat([Z, EPt]).div_(B).T.contiguous()
    return left, 0.5 * rec, 0.5 * float(torch.linalg.vector_norm(dz)) ** 2


def _pairs(D: int, xa, xb, work):
    """``xa``, ``xb`` flattened to ``B x D`` (same shape) and B; ``work``, when given, checked as 4B x D."""
    xa, xb = _flat(xa, D, "xa"), _flat(xb, D, "xb")
    if xa.shape != xb.shape:
        raise ValueError(f"xa and xb must have the same shape, got {tuple(xa.shape)} and {tuple(xb.shape)}")
    B = xa.shape[0]
    if work is not None and (work.shape != (4 * B, D) or not work.is_contiguous()):
        raise ValueError(f"work must be a contiguous {4 * B} x {D} tensor, got {tuple(work.shape)}")
    return xa, xb, B


def cost_and_grad(
    P: torch.Tensor,
    xa: torch.Tensor,
    xb: torch.Tensor,
    lam: float,
    out: torch.Tensor | None = None,
    work: torch.Tensor | None = None,
):
    """``(cost, dcost/dP, parts)`` with the analytic gradient (see the module docstring); ``parts`` holds the
    reconstruction and invariance terms (per pair).

    ``out`` (K x D) receives the gradient and ``work`` (4B x D) holds ``[E; X]``; both optional (on the CPU a
    fresh tensor this large, 117 MB for the gradient at the stage's K = 400, D = 72,900, is a fresh mmap, and its
    page faults cost about as much as the products). The training loop runs the same products block by block
    (:class:`PStep`)."""
    xa, xb, B = _pairs(P.shape[1], xa, xb, work)
    if out is not None and out.shape != P.shape:
        raise ValueError(f"out must have P's shape {tuple(P.shape)}, got {tuple(out.shape)}")
    if work is None:
        work = P.new_empty(4 * B, P.shape[1])
    work[2 * B : 3 * B], work[3 * B :] = xa, xb
    left, rec, inv = _factor([P], [work], B, lam)
    grad = torch.mm(left, work, out=out)
    return (rec + lam * inv) / B, grad, {"reconstruction": rec / B, "invariance": inv / B}


def flops_per_batch(B: int, K: int, D: int) -> int:
    """Multiply-adds x 2 of one gradient evaluation on B pairs (see the module docstring)."""
    return 20 * B * K * D


class PStep:
    """P's projected training step, repeated by :func:`train_autopool`: the gradient of :func:`cost_and_grad`,
    then the optimiser's update and ``P <- max(P, 0)``, column block by column block (:data:`BLOCK_COLUMNS`).

    P lives here as contiguous column blocks (``.P`` assembles it): torch's fused Adam, the update this step
    uses, reads its tensors as contiguous memory, so a strided column view of one K x D tensor cannot be
    updated in place. ``optimizer`` and ``lr`` as in :func:`train_autopool`; ``__call__(xa, xb, epoch)``
    returns ``(cost, parts)`` of the batch before the update."""

    def __init__(
        self,
        P: torch.Tensor,
        lam: float,
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum_after: int = 5,
        block_columns: int | None = None,
    ):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; use 'momentum', 'sgd' or 'adam'")
        if P.ndim != 2 or not P.is_floating_point():
            raise ValueError(f"P must be a floating-point K x D tensor, got {P.dtype} of shape {tuple(P.shape)}")
        if block_columns is not None and block_columns < 1:
            raise ValueError(f"block_columns must be >= 1, got {block_columns}")
        K, D = P.shape
        width = block_columns or (BLOCK_COLUMNS if P.device.type == "cpu" else D)
        self.shape, self.lam, self.optimizer, self.momentum_after = (K, D), lam, optimizer, momentum_after
        self.cols = [slice(c, min(D, c + width)) for c in range(0, D, width)]
        self.blocks = [P[:, c].contiguous() for c in self.cols]
        # adam: torch's own fused Adam kernel (one pass over P, m, v and the gradient), lr relative to P's mean
        # entry; a hand-written update allocated K x D temporaries each step and took longer than the gradient
        self.lr = lr * float(P.mean()) if optimizer == "adam" else lr
        # momentum by hand: the velocity carries over when the momentum switches from 0 to 0.9 (v <- mu v + g)
        self.state = [
            [torch.zeros_like(b) for b in self.blocks] for _ in range({"adam": 2, "momentum": 1}.get(optimizer, 0))
        ]
        self.steps = torch.zeros((), dtype=torch.float32, device=P.device)  # Adam's step count (bias correction)
        self.grad = P.new_empty(K * width)
        self.works = None  # per block: [E; X] (4B rows), contiguous, so E is written in place

    @property
    def P(self) -> torch.Tensor:
        return torch.cat(self.blocks, 1)

    def __call__(self, xa: torch.Tensor, xb: torch.Tensor, epoch: int = 0):
        xa, xb, B = _pairs(self.shape[1], xa, xb, None)
        if self.works is None or self.works[0].shape[0] != 4 * B:  # the last batch of an epoch may be short
            self.works = [b.new_empty(4 * B, b.shape[1]) for b in self.blocks]
        for Wj, c in zip(self.works, self.cols):
            Wj[2 * B : 3 * B], Wj[3 * B :] = xa[:, c], xb[:, c]
        left, rec, inv = _factor(self.blocks, self.works, B, self.lam)
        self.steps.add_(1)
        mu = 0.0 if epoch < self.momentum_after else 0.9  # the authors' switch after some epochs
        for j, (Pj, Wj) in enumerate(zip(self.blocks, self.works)):
            g = torch.mm(left, Wj, out=self.grad[: Pj.numel()].view(Pj.shape))
            if self.optimizer == "adam":
                m, v = self.state[0][j], self.state[1][j]
                torch._fused_adam_(
                    [Pj], [g], [m], [v], [], [self.steps], lr=self.lr, beta1=0.9, beta2=0.999,
                    weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False,
                )  # fmt: skip
            elif self.optimizer == "momentum":
                Pj.add_(self.state[0][j].mul_(mu).add_(g), alpha=-self.lr)
            else:
                Pj.add_(g, alpha=-self.lr)
            Pj.clamp_(min=0)
        return (rec + self.lam * inv) / B, {"reconstruction": rec / B, "invariance": inv / B}


def init_P(
    K: int, D: int, x_sample: torch.Tensor | None = None, seed: int = 0, device="cpu", members: float | None = None
) -> torch.Tensor:
    """Random non-negative ``P`` (uniform), scaled so that ``P^T P x`` best matches ``x`` in least squares on
    ``x_sample`` (``s^2 = <x, A x> / ||A x||^2`` with ``A = P0^T P0``), so training starts at a sensible scale.

    ``members=None``: dense uniform entries. A dense non-negative start has nearly identical rows (each is the
    mean plus noise), so every row gets nearly the same gradient and the rows separate only slowly; ``members=m``
    keeps each entry with probability ``m / K`` (each feature starts in about m random pools), which breaks
    that symmetry (our choice for short runs; the paper only says P starts random)."""
    g = torch.Generator().manual_seed(seed)
    P = torch.rand(K, D, generator=g)
    if members is not None:
        if members <= 0:
            raise ValueError("members must be > 0")
        P *= (torch.rand(K, D, generator=g) < min(1.0, members / K)).float()
    P = P.to(device)
    if x_sample is not None:
        x = _flat(x_sample.to(device=device, dtype=P.dtype), D, "x_sample")
        ax = (x @ P.T) @ P
        s2 = float((x * ax).sum() / (ax * ax).sum().clamp_min(1e-30))
        P *= max(s2, 1e-12) ** 0.5
    else:
        P /= float(np.sqrt(K * D))
    return P


def onehot_P(K: int, D: int, seed: int = 0, device="cpu") -> torch.Tensor:
    """The authors' start (tesatory/auto-pooling): each pooled unit begins as one randomly chosen input feature,
    ``P[k, j_k] = 1`` with distinct ``j_k`` when ``K <= D``."""
    g = torch.Generator().manual_seed(seed)
    j = torch.randperm(D, generator=g)[:K] if K <= D else torch.randint(0, D, (K,), generator=g)
    P = torch.zeros(K, D)
    P[torch.arange(K), j] = 1.0
    return P.to(device)


@torch.no_grad()
def heldout_cost(
    P: torch.Tensor, pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], lam: float, device="cpu"
) -> dict[str, float]:
    """The cost per pair of ``P`` on held-out pairs, as it is and optimally scaled: ``min_s C(sP)`` over a scalar
    ``s`` (the cost depends on the scale of P, and a 0/1 grid has none that fits). With ``u = s^2`` the cost is
    ``0.5 Sx - u S1 + 0.5 u^2 S2 + 0.5 lam u S3`` (``Sx = sum ||x||^2``, ``S1 = sum <x, P^T P x>``,
    ``S2 = sum ||P^T P x||^2`` over both frames, ``S3 = sum ||P (x_t - x_t+1)||^2`` over pairs), minimised at
    ``u* = max(0, (S1 - lam S3 / 2) / S2)``. Returns ``{"cost", "scaled", "scale", "reconstruction", "invariance"}``
    (the last two of the scaled P, per pair)."""
    P = P.to(device=device, dtype=torch.float32)
    sx = s1 = s2 = s3 = 0.0
    n = 0
    for xa, xb in pairs:
        xa = _flat(xa.to(device=device, dtype=torch.float32), P.shape[1], "xa")
        xb = _flat(xb.to(device=device, dtype=torch.float32), P.shape[1], "xb")
        for x in (xa, xb):
            ax = (x @ P.T) @ P
            sx += float((x.double() ** 2).sum())
            s1 += float((x.double() * ax.double()).sum())
            s2 += float((ax.double() ** 2).sum())
        s3 += float((((xa - xb) @ P.T).double() ** 2).sum())
        n += len(xa)
    if n == 0:
        raise ValueError("heldout_cost: no pairs")
    raw = 0.5 * sx - s1 + 0.5 * s2 + 0.5 * lam * s3
    u = max(0.0, (s1 - 0.5 * lam * s3) / s2) if s2 > 0 else 0.0
    rec = 0.5 * sx - u * s1 + 0.5 * u * u * s2
    inv = 0.5 * u * s3
    return {
        "cost": raw / n,
        "scaled": (rec + lam * inv) / n,
        "scale": u**0.5,
        "reconstruction": rec / n,
        "invariance": inv / n,
    }


@dataclass
class TrainLog:
    cost: list[float] = field(default_factory=list)  # mean cost per epoch
    reconstruction: list[float] = field(default_factory=list)
    invariance: list[float] = field(default_factory=list)
    seconds: float = 0.0  # time in gradient evaluations and updates (features excluded)
    feature_seconds: float = 0.0  # time computing the features of the pairs (streamed)
    gflop: float = 0.0
    steps: int = 0
    heldout: list[float] = field(default_factory=list)  # optimally scaled held-out cost after each epoch (if asked)

    @property
    def gflops(self) -> float:
        """Achieved GFLOP/s of the P updates."""
        return self.gflop / self.seconds if self.seconds > 0 else float("nan")


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def train_autopool(
    batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    K: int,
    D: int,
    lam: float,
    epochs: int = 1,
    lr: float = 1e-3,
    optimizer: str = "adam",
    seed: int = 0,
    device="cpu",
    P0: torch.Tensor | None = None,
    init_members: float | None = None,
    progress: bool = True,
    desc: str = "AutoPool",
    init: str = "dense",
    momentum_after: int = 5,
    heldout: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]] | None = None,
    on_epoch: Callable[[int, torch.Tensor], None] | None = None,
    block_columns: int | None = None,
) -> tuple[AutoPool, TrainLog]:
    """Projected gradient training of ``P`` on streamed pairs.

    ``batches(epoch)`` yields ``(xa, xb)`` feature batches (computed on the fly by the caller, e.g. from frame
    patches with :func:`poolrep.papers.autopool.conv_features`), on ``device``. ``optimizer``:

    - ``"momentum"``: the authors' (tesatory/auto-pooling): SGD with momentum 0 for the first ``momentum_after``
      epochs, then 0.9; ``P <- max(P - lr v, 0)`` after each step;
    - ``"sgd"``: plain projected gradient descent, ``P <- max(P - lr g, 0)``;
    - ``"adam"``: torch's fused Adam (betas 0.9, 0.999, eps 1e-8), then the same projection; its ``lr`` is
      relative to the mean initial entry of P, so it does not depend on the feature scale.

    Each step is :class:`PStep` (column blocks of ``block_columns``, default :data:`BLOCK_COLUMNS` on the CPU).

    Start: ``P0`` if given (e.g. a sum-pooling grid: a named ablation, not the paper's method), else ``init``:
    ``"onehot"`` (the authors': each row one random feature), ``"dense"`` (uniform random, scaled to the first
    batch: :func:`init_P`) or ``"sparse"`` (:func:`init_P` with ``members=init_members``). ``heldout()``: held-out
    pairs whose optimally scaled cost (:func:`heldout_cost`) is recorded before training and after every epoch.
    ``on_epoch(epoch, P)`` is called after each epoch (1-based), e.g. to keep checkpoints for a learning curve.
    """
    if init not in ("dense", "sparse", "onehot"):
        raise ValueError(f"unknown init {init!r}; use 'dense', 'sparse' or 'onehot'")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; use 'momentum', 'sgd' or 'adam'")
    if lam < 0:
        raise ValueError("lambda must be >= 0")
    log = TrainLog()
    P = None if P0 is None else P0.to(device=device, dtype=torch.float32).clamp_min(0).clone()
    if P is None and init == "onehot":
        P = onehot_P(K, D, seed, device)
    if heldout is not None and P is not None:
        log.heldout.append(heldout_cost(P, heldout(), lam, device)["scaled"])
    step = None
    for ep in range(epochs):
        tot = rec = inv = 0.0
        nb = 0
        it = iter(batches(ep))
        bar = tqdm(desc=f"{desc} epoch {ep + 1}/{epochs}", leave=False, disable=not progress)
        while True:
            t0 = time.perf_counter()
            try:
                xa, xb = next(it)
            except StopIteration:
                break
            xa = _flat(xa.to(device=device, dtype=torch.float32), D, "xa")
            xb = _flat(xb.to(device=device, dtype=torch.float32), D, "xb")
            _sync(device)
            t1 = time.perf_counter()
            log.feature_seconds += t1 - t0
            if P is None:
                P = init_P(
                    K,
                    D,
                    torch.cat([xa, xb]),
                    seed=seed,
                    device=device,
                    members=init_members if init == "sparse" else None,
                )
                if heldout is not None:
                    log.heldout.append(heldout_cost(P, heldout(), lam, device)["scaled"])
            if step is None:
                step = PStep(P, lam, optimizer, lr, momentum_after, block_columns)
            c, parts = step(xa, xb, ep)
            _sync(device)
            log.seconds += time.perf_counter() - t1
            log.gflop += flops_per_batch(xa.shape[0], K, D) / 1e9
            log.steps += 1
            tot, rec, inv, nb = tot + c, rec + parts["reconstruction"], inv + parts["invariance"], nb + 1
            bar.update(1)
            bar.set_postfix(cost=f"{c:.4g}")
        bar.close()
        if nb == 0:
            raise ValueError("train_autopool: batches() yielded no data")
        P = step.P
        log.cost.append(tot / nb)
        log.reconstruction.append(rec / nb)
        log.invariance.append(inv / nb)
        if heldout is not None:
            log.heldout.append(heldout_cost(P, heldout(), lam, device)["scaled"])
        if on_epoch is not None:
            on_epoch(ep + 1, P)
    return AutoPool(P), log
