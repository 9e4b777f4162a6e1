"""Cross-convolutional-layer pooling (Liu, Shen and van den Hengel, CVPR 2015).

Layer ``t`` gives the local features, layer ``t+1`` the pooling channels:

- local feature at position i: the ``m x n`` neighbourhood of layer t's maps around i, concatenated
  (``C_t * m * n`` values, channel-major); positions whose neighbourhood leaves the map are dropped;
  then reduced by a PCA fitted on training local features: ``x_i = W (f_i - mu)``;
- pooling channel k (one per channel of layer t+1): ``P_k = sum_i x_i a_{i,k}``, where ``a_{i,k}`` is layer
  t+1's activation k at the centre of neighbourhood i (both layers must have the same spatial size);
- image representation: ``[P_1, ..., P_K]`` (``K * D`` values), post-processed as the authors' code does:
  standardise each dimension with training statistics, signed square root, L2-normalise.

``CrossLayerPool`` is the operator (``forward(maps_t, maps_t1) -> N x K*D``); the paper's experiment (PCA,
post-processing, the linear SVM, the direct-pooling baselines) is in :mod:`poolrep.papers.crosslayer`;
``sample_local_features`` (a random subset of training local features, for the PCA) is here, shared with the zoo.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .helpers import check_maps


def _check_window(m: int, n: int) -> None:
    if m < 1 or n < 1 or m % 2 == 0 or n % 2 == 0:
        raise ValueError(f"neighbourhood must be odd-sized (m x n with m, n >= 1 odd), got {m} x {n}")


def local_features(maps_t: torch.Tensor, m: int = 3, n: int = 3) -> torch.Tensor:
    """``N x C x H x W`` -> ``N x L x (C*m*n)``: each position's ``m x n`` neighbourhood, concatenated.

    Only positions whose whole neighbourhood lies inside the map are kept (no padding), so
    ``L = (H-m+1)(W-n+1)``, in row-major order of the centres ``(m//2 .. H-1-m//2, n//2 .. W-1-n//2)``.
    The vector is channel-major: entry ``c*m*n + dy*n + dx`` is channel c at offset (dy, dx).
    """
    check_maps(maps_t, "layer-t maps")
    _check_window(m, n)
    N, C, H, W = maps_t.shape
    if H < m or W < n:
        raise ValueError(f"layer-t maps of {H} x {W} are smaller than the {m} x {n} neighbourhood")
    # F.unfold is exactly the sliding-window extraction (im2col); no hand-written loop needed
    cols = F.unfold(maps_t, kernel_size=(m, n))  # N x (C*m*n) x L
    return cols.transpose(1, 2)


def centre_weights(maps_t1: torch.Tensor, m: int = 3, n: int = 3) -> torch.Tensor:
    """Layer t+1's activations at the centres kept by ``local_features``: ``N x K x H x W -> N x L x K``."""
    check_maps(maps_t1, "layer-(t+1) maps")
    _check_window(m, n)
    N, K, H, W = maps_t1.shape
    if H < m or W < n:
        raise ValueError(f"layer-(t+1) maps of {H} x {W} are smaller than the {m} x {n} neighbourhood")
    a = maps_t1[:, :, m // 2 : H - m // 2, n // 2 : W - n // 2]
    return a.flatten(2).transpose(1, 2)


class CrossLayerPool(nn.Module):
    """``P_k = sum_i x_i a_{i,k}`` for every channel k of layer t+1; returns ``N x (K*D)`` (k-major).

    ``pca_mean`` (``C_t*m*n``) and ``pca_components`` (``D x C_t*m*n``, rows = principal directions) come from
    ``fit_pca``; ``None`` skips the PCA (raw local features). ``normalise_sum=True`` divides by the number of
    positions (a constant per input size; it cancels in the standardisation and keeps float16 in range).
    """

    def __init__(self, pca_mean=None, pca_components=None, m: int = 3, n: int = 3, normalise_sum: bool = False):
        super().__init__()
        _check_window(m, n)
        self.m, self.n, self.normalise_sum = m, n, normalise_sum
        if (pca_mean is None) != (pca_components is None):
            raise ValueError("give both pca_mean and pca_components, or neither")
        if pca_components is not None:
            comp = torch.as_tensor(np.asarray(pca_components), dtype=torch.float32)
            mean = torch.as_tensor(np.asarray(pca_mean), dtype=torch.float32)
            if comp.ndim != 2 or mean.ndim != 1 or comp.shape[1] != mean.shape[0]:
                raise ValueError(
                    f"pca_components must be D x F and pca_mean F, got {tuple(comp.shape)} and {tuple(mean.shape)}"
                )
            self.register_buffer("pca_mean", mean)
            self.register_buffer("pca_components", comp)
        else:
            self.pca_mean = self.pca_components = None

    def project(self, maps_t: torch.Tensor) -> torch.Tensor:
        """PCA-reduced local features ``N x L x D`` of layer t."""
        x = local_features(maps_t.float(), self.m, self.n)
        if self.pca_components is not None:
            if x.shape[-1] != self.pca_components.shape[1]:
                raise ValueError(
                    f"local features have {x.shape[-1]} dims (C_t * {self.m} * {self.n}) but the PCA expects "
                    f"{self.pca_components.shape[1]}: layer t has the wrong number of channels"
                )
            x = (x - self.pca_mean) @ self.pca_components.T
        return x

    def forward(self, maps_t: torch.Tensor, maps_t1: torch.Tensor) -> torch.Tensor:
        check_maps(maps_t, "layer-t maps")
        check_maps(maps_t1, "layer-(t+1) maps")
        if maps_t.shape[0] != maps_t1.shape[0] or maps_t.shape[2:] != maps_t1.shape[2:]:
            raise ValueError(
                f"layers t {tuple(maps_t.shape)} and t+1 {tuple(maps_t1.shape)} need the same N and spatial size"
            )
        x = self.project(maps_t)  # N x L x D
        a = centre_weights(maps_t1.float(), self.m, self.n)  # N x L x K
        p = torch.bmm(a.transpose(1, 2), x)  # N x K x D
        if self.normalise_sum:
            p = p / x.shape[1]
        return p.flatten(1)


def sample_local_features(
    maps_t: np.ndarray, m: int, n: int, max_samples: int, seed: int = 0, batch: int = 256
) -> np.ndarray:
    """A random subset (at most ``max_samples``) of the local features of training maps, float32.

    The (image, position) pairs are drawn first and only their neighbourhoods are built, a batch of images at a
    time, so the local features of the whole training set (35 GB at 448 px for CUB) are never held in memory."""
    N, _, H, W = maps_t.shape
    L = (H - m + 1) * (W - n + 1)
    total = N * L
    if total > max_samples:
        idx = np.sort(np.random.default_rng(seed).choice(total, max_samples, replace=False))
    else:
        idx = np.arange(total)
    img, pos = np.divmod(idx, L)
    out = []
    for s in range(0, N, batch):
        sel = (img >= s) & (img < s + batch)
        if not sel.any():
            continue
        x = local_features(torch.as_tensor(maps_t[s : s + batch]).float(), m, n)  # B x L x F
        out.append(x[torch.as_tensor(img[sel] - s), torch.as_tensor(pos[sel])].numpy())
    return np.concatenate(out)
