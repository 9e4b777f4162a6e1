"""Auto-pooling (Sukhbaatar, Makino & Aihara 2013): a learned non-negative pooling matrix.

Features ``x`` (D-d, non-negative) are pooled by ``z = P x`` with ``P >= 0`` (K x D). P is learned from pairs of
temporally adjacent inputs ``(x_t, x_t+1)`` by minimising, averaged over pairs,

    C(P) = 0.5 ||x_t - P^T P x_t||^2 + 0.5 ||x_t+1 - P^T P x_t+1||^2 + lambda * 0.5 ||P x_t - P x_t+1||^2

(reconstruction through the pooled code, plus an invariance term that pulls the pooled codes of neighbours
together). Non-negativity is kept by projection: after each step ``P <- max(P, 0)`` (the author's code clips
at 0). The gradient is analytic (:func:`cost_and_grad`; checked against autograd in the tests): with
``Z = X P^T`` and ``E = Z P - X`` for a batch ``X`` (B x D),

    dC/dP = (Z_t^T E_t + (E_t P^T)^T X_t + same for t+1 + lambda (Z_t - Z_t+1)^T (X_t - X_t+1)) / B

which costs ``22 B K D`` flops per batch of B pairs (five K x D x B products per frame, one for the invariance
term); :func:`train_autopool` reports the achieved GFLOP/s from that count.
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

    ``out`` (K x D) receives the gradient and ``work`` (5B x D) holds ``[E; X; X_t - X_t+1]``; both optional.
    The training loop passes them because on the CPU a fresh tensor this large (117 MB for the gradient at the
    stage's K = 400, D = 72,900) is a fresh mmap, and its page faults cost about as much as the products."""
    D = P.shape[1]
    xa, xb = _flat(xa, D, "xa"), _flat(xb, D, "xb")
    if xa.shape != xb.shape:
        raise ValueError(f"xa and xb must have the same shape, got {tuple(xa.shape)} and {tuple(xb.shape)}")
    B = xa.shape[0]
    if out is not None and out.shape != P.shape:
        raise ValueError(f"out must have P's shape {tuple(P.shape)}, got {tuple(out.shape)}")
    if work is None:
        work = P.new_empty(5 * B, D)
    elif work.shape != (5 * B, D) or not work.is_contiguous():
        raise ValueError(f"work must be a contiguous {5 * B} x {D} tensor, got {tuple(work.shape)}")
    E, X, dx = work[: 2 * B], work[2 * B : 4 * B], work[4 * B :]
    X[:B], X[B:] = xa, xb
    torch.sub(xa, xb, out=dx)
    Z = X @ P.T  # 2B x K
    torch.addmm(X, Z, P, beta=-1, out=E)  # E = Z P - X
    dz = Z[:B] - Z[B:]
    # one product with inner dimension 5B instead of five thin ones (P is read 3x and the gradient written once):
    # grad = (Z^T E + (E P^T)^T X + lam dz^T dx) / B, the 1/B applied on the small 5B x K side
    left = torch.cat([Z, E @ P.T, lam * dz]).div_(B).T
    grad = torch.mm(left, work, out=out)
    rec = 0.5 * float(torch.linalg.vector_norm(E) ** 2)
    inv = 0.5 * float(torch.linalg.vector_norm(dz) ** 2)
    total = (rec + lam * inv) / B
    return total, grad, {"reconstruction": rec / B, "invariance": inv / B}


def flops_per_batch(B: int, K: int, D: int) -> int:
    """Multiply-adds x 2 of one gradient evaluation on B pairs (see the module docstring)."""
    return 22 * B * K * D


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
) -> tuple[AutoPool, TrainLog]:
    """Projected gradient training of ``P`` on streamed pairs.

    ``batches(epoch)`` yields ``(xa, xb)`` feature batches (computed on the fly by the caller, e.g. from frame
    patches with :func:`poolrep.papers.autopool.conv_features`), on ``device``. ``optimizer``:

    - ``"momentum"``: the authors' (tesatory/auto-pooling): SGD with momentum 0 for the first ``momentum_after``
      epochs, then 0.9; ``P <- max(P - lr v, 0)`` after each step;
    - ``"sgd"``: plain projected gradient descent, ``P <- max(P - lr g, 0)``;
    - ``"adam"``: ``torch.optim.Adam``, fused, then the same projection; its ``lr`` is relative to the mean
      initial entry of P, so it does not depend on the feature scale.

    Start: ``P0`` if given (e.g. a sum-pooling grid: a named ablation, not the paper's method), else ``init``:
    ``"onehot"`` (the authors': each row one random feature), ``"dense"`` (uniform random, scaled to the first
    batch: :func:`init_P`) or ``"sparse"`` (:func:`init_P` with ``members=init_members``). ``heldout()``: held-out
    pairs whose optimally scaled cost (:func:`heldout_cost`) is recorded before training and after every epoch.
    ``on_epoch(epoch, P)`` is called after each epoch (1-based), e.g. to keep checkpoints for a learning curve.
    """
    if init not in ("dense", "sparse", "onehot"):
        raise ValueError(f"unknown init {init!r}; use 'dense', 'sparse' or 'onehot'")
    if optimizer not in ("sgd", "adam", "momentum"):
        raise ValueError(f"unknown optimizer {optimizer!r}; use 'momentum', 'sgd' or 'adam'")
    if lam < 0:
        raise ValueError("lambda must be >= 0")
    log = TrainLog()
    P = None if P0 is None else P0.to(device=device, dtype=torch.float32).clamp_min(0).clone()
    if P is None and init == "onehot":
        P = onehot_P(K, D, seed, device)
    if heldout is not None and P is not None:
        log.heldout.append(heldout_cost(P, heldout(), lam, device)["scaled"])
    opt = None
    grad = work = vel = None
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
            if grad is None:
                grad = torch.empty_like(P)  # reused every step (see cost_and_grad's ``out``)
                P.grad = grad
                if optimizer == "adam":
                    # torch's own Adam, fused: one pass over P, m, v and the gradient; a hand-written update
                    # allocated K x D temporaries each step and took longer than the gradient itself
                    opt = torch.optim.Adam([P], lr=lr * float(P.mean()), fused=True)
                elif optimizer == "momentum":
                    # by hand, not torch.optim.SGD: the velocity must carry over when the momentum switches from
                    # 0 to 0.9 (v <- mu v + g), where torch's SGD starts a fresh buffer at the switch
                    vel = torch.zeros_like(P)
            if work is None or work.shape[0] != 5 * xa.shape[0]:  # the last batch of an epoch may be short
                work = P.new_empty(5 * xa.shape[0], D)
            c, _, parts = cost_and_grad(P, xa, xb, lam, out=grad, work=work)
            if optimizer == "momentum":
                vel.mul_(0.0 if ep < momentum_after else 0.9).add_(grad)  # the authors' switch after some epochs
                P.add_(vel, alpha=-lr)
            elif opt is None:
                P.add_(grad, alpha=-lr)
            else:
                opt.step()
            P.clamp_(min=0)
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
        log.cost.append(tot / nb)
        log.reconstruction.append(rec / nb)
        log.invariance.append(inv / nb)
        if heldout is not None:
            log.heldout.append(heldout_cost(P, heldout(), lam, device)["scaled"])
        if on_epoch is not None:
            on_epoch(ep + 1, P)
    return AutoPool(P), log
