"""The normalisations several papers share: L2 normalisation of descriptors and ZCA whitening.

- :func:`l2_normalize`: ``x / max(||x||, eps)`` along the last dimension. Retrieval (paper 002, the zoo) ranks
  L2-normalised descriptors, cross-layer pooling (003) L2-normalises its representation, and cosine nearest
  neighbours (001) are L2-normalised dot products.
- :class:`ZCA`: ``x -> (x - mu) W`` with ``W = U diag((s + eps)^-1/2) U^T`` from the sample covariance
  ``U diag(s) U^T`` (unbiased, N - 1). Auto-pooling (000) whitens contrast-normalised patches before its sparse
  auto-encoder (Coates et al.'s pipeline, eps 0.1), and slow features (001) say "the entire dataset was ZCA
  whitened" (Sec. 5). scikit-learn's ``PCA(whiten=True)`` whitens in the rotated basis (PCA whitening); ZCA
  rotates back so whitened images stay images, which is what a convolutional model must see: hence this class.
"""

from __future__ import annotations

import numpy as np
import torch


def l2_normalize(x, eps: float = 1e-12):
    """Rows (last dimension) scaled to unit L2 norm; a zero row stays zero. Takes and returns a torch tensor or a
    numpy array (computed in torch either way, so every caller gets the same numbers)."""
    t = torch.as_tensor(x)
    out = t / torch.linalg.vector_norm(t, dim=-1, keepdim=True).clamp_min(eps)
    return out.numpy() if isinstance(x, np.ndarray) else out


class ZCA:
    """ZCA whitening of flattened samples (patches or whole images), fitted in float64, applied in float32.

    ``ZCA(eps).fit(x)`` with ``x`` N x ... (torch or numpy; flattened to N x D); ``zca(x)`` (or
    ``zca.transform(x)``) returns whitened data of the same kind, shape and device as ``x``.
    """

    def __init__(self, eps: float = 0.1):
        if eps < 0:
            raise ValueError(f"ZCA eps must be >= 0, got {eps}")
        self.eps = float(eps)
        self.mean: torch.Tensor | None = None
        self.W: torch.Tensor | None = None

    def fit(self, x) -> ZCA:
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
        x = x.reshape(len(x), -1).double()
        if x.shape[0] < 2:
            raise ValueError("ZCA needs at least two samples")
        mean = x.mean(dim=0)
        cov = torch.cov((x - mean).T)
        s, U = torch.linalg.eigh(cov)
        W = U @ torch.diag(1.0 / torch.sqrt(s.clamp(min=0) + self.eps)) @ U.T
        self.mean, self.W = mean.float(), W.float()
        return self

    @property
    def dim(self) -> int:
        if self.W is None:
            raise RuntimeError("ZCA used before fit")
        return self.W.shape[0]

    def __call__(self, x):
        if self.W is None:
            raise RuntimeError("ZCA used before fit")
        t = torch.as_tensor(x)
        shape = t.shape
        flat = t.reshape(len(t), -1)
        flat = flat.to(torch.float32) if not flat.is_floating_point() else flat
        if flat.shape[1] != self.dim:
            raise ValueError(f"ZCA was fitted on {self.dim}-d data, got {flat.shape[1]}-d")
        out = ((flat - self.mean.to(flat.device)) @ self.W.to(flat.device)).reshape(shape)
        return out.numpy() if isinstance(x, np.ndarray) else out

    transform = __call__

    def to(self, device) -> ZCA:
        """The same whitening with its matrices on ``device`` (a copy)."""
        out = ZCA(self.eps)
        out.mean, out.W = self.mean.to(device), self.W.to(device)
        return out
