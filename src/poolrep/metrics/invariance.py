"""The invariance score of auto-pooling (Sukhbaatar, Makino & Aihara 2013):

    score = mean_{random pairs (i, j)} ||z_i - z_j|| / mean_{temporal neighbours} ||z_t - z_t+1||

i.e. how much farther apart the codes of unrelated inputs are than the codes of consecutive frames. Higher is
more invariant; it does not change when all codes are scaled, so raw features and pooled codes compare directly.
Here the neighbour pairs are ``(a[i], b[i])`` and the random pairs are ``(a[i], a[perm(i)])`` over a random
derangement of the first frames (``n_random`` of them, default all).
"""

from __future__ import annotations

import numpy as np
import torch


def _as2d(x, name):
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
    if x.ndim == 4:
        x = x.reshape(x.shape[0], -1)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected N x D codes, got shape {tuple(x.shape)}")
    return x.double()


def derangement(n: int, seed: int = 0) -> np.ndarray:
    """A random permutation of range(n) with no fixed point (n >= 2)."""
    if n < 2:
        raise ValueError("need at least 2 items for random pairs")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    # rotate the cycle through a random order: perm[k] -> perm[k+1] has no fixed point
    out = np.empty(n, dtype=int)
    out[perm] = np.roll(perm, -1)
    return out


def invariance_parts(a, b, seed: int = 0, random_pairs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per pair i: ``near_i = ||a_i - b_i||`` (temporal neighbours) and ``far_i = ||a_i - a_j(i)||`` (random pairs),
    float64. The score is ``mean(far) / mean(near)``; kept per pair so that its interval can be bootstrapped over
    the pairs."""
    a, b = _as2d(a, "a"), _as2d(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    j = derangement(len(a), seed) if random_pairs is None else np.asarray(random_pairs)
    if len(j) != len(a):
        raise ValueError("random_pairs must have one index per pair")
    near = (a - b).norm(dim=1)
    far = (a - a[torch.as_tensor(j)]).norm(dim=1)
    return near.numpy(), far.numpy()


def score_of(near, far, axis: int = -1):
    """``mean(far) / mean(near)`` along ``axis`` (vectorised, for bootstrap resamples)."""
    return np.mean(far, axis=axis) / np.mean(near, axis=axis)


def invariance_score(a, b, seed: int = 0, random_pairs: np.ndarray | None = None) -> float:
    """``a``, ``b``: codes of the first and second frame of each pair (N x D). ``random_pairs``: optional
    index array j(i) for the random pairs ``(a[i], a[j(i)])`` (default: a random derangement)."""
    near, far = invariance_parts(a, b, seed, random_pairs)
    near_m = torch.as_tensor(near).mean()
    if near_m == 0:
        return float("inf")
    return float(torch.as_tensor(far).mean() / near_m)


def score_items(near, far) -> np.ndarray:
    """Per pair, its linearised share of the score: ``L_i = s + (far_i - s near_i) / mean(near)`` with
    ``s = mean(far) / mean(near)``. ``mean(L) = s`` exactly, and the variance of ``mean(L)`` over resampled pairs is
    the delta method's for the ratio, so per-pair values of several seeds can go into an interval over pairs x seeds
    (:func:`poolrep.claims.seed_interval`), which needs a mean of per-item values."""
    near, far = np.asarray(near, dtype=np.float64), np.asarray(far, dtype=np.float64)
    if near.shape != far.shape or near.ndim != 1:
        raise ValueError(f"near and far must be vectors of the same length, got {near.shape} and {far.shape}")
    m = near.mean()
    if m <= 0:
        raise ValueError("score_items: every temporal neighbour distance is 0 (the score is infinite)")
    s = far.mean() / m
    return s + (far - s * near) / m
