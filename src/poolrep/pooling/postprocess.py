"""PCA of local features and the post-processing of a pooled representation (Liu et al. CVPR 2015; the authors'
code's order: standardise each dimension with training statistics, signed square root, L2-normalise). Used by the
cross-layer stage and the zoo."""

from __future__ import annotations

import numpy as np

from ..normalize import l2_normalize


def fit_pca(local: np.ndarray, dim: int, seed: int = 0):
    """(mean, components D x F, explained variance ratio) of scikit-learn's PCA on ``local`` (samples x F).

    Components come sorted by variance, so the first d rows are (up to the randomized solver's accuracy) the d-dim
    PCA, which the dimension sweep uses.
    """
    from sklearn.decomposition import PCA

    if local.ndim != 2:
        raise ValueError(f"local features must be samples x dims, got {local.shape}")
    if dim > min(local.shape):
        raise ValueError(f"PCA dim {dim} exceeds min(samples, dims) = {min(local.shape)}")
    # randomized SVD (Halko et al.): a few seconds where the exact full / covariance solvers of a 2,880-dim
    # (9 x 320) or 3,456-dim (9 x 384) local feature take minutes on 2 cores; seeded, so deterministic
    solver = "randomized" if dim < 0.5 * min(local.shape) else "full"
    pca = PCA(n_components=dim, svd_solver=solver, random_state=seed).fit(local)
    return pca.mean_.astype(np.float32), pca.components_.astype(np.float32), pca.explained_variance_ratio_


class PostProcess:
    """Standardise (training mean/std per dimension), signed square root, L2-normalise (the reference code's order).

    ``fit`` on training representations, ``transform`` any; works in float32 chunks over float16 storage.
    ``l2=False`` leaves the L2 step to the kernel (``linear_kernel`` normalises), so a column subset can be
    normalised on its own (the PCA-dimension sweep).
    """

    def __init__(self, eps: float = 1e-6, chunk: int = 256):
        self.eps, self.chunk = eps, chunk
        self.mean_ = self.std_ = None

    def fit(self, X: np.ndarray) -> PostProcess:
        if X.ndim != 2:
            raise ValueError(f"expected representations N x D, got {X.shape}")
        s = np.zeros(X.shape[1], np.float64)
        ss = np.zeros(X.shape[1], np.float64)
        for i in range(0, len(X), self.chunk):
            c = X[i : i + self.chunk].astype(np.float64)
            s += c.sum(0)
            ss += (c * c).sum(0)
        self.mean_ = s / len(X)
        self.std_ = np.sqrt(np.maximum(ss / len(X) - self.mean_**2, 0.0))
        return self

    def transform(self, X: np.ndarray, l2: bool = True, dtype=np.float32) -> np.ndarray:
        if self.mean_ is None:
            raise RuntimeError("PostProcess.transform before fit")
        if X.ndim != 2 or X.shape[1] != len(self.mean_):
            raise ValueError(f"expected N x {len(self.mean_)} representations, got {X.shape}")
        out = np.empty(X.shape, dtype)
        for i in range(0, len(X), self.chunk):
            c = (X[i : i + self.chunk].astype(np.float32) - self.mean_.astype(np.float32)) / (
                self.std_.astype(np.float32) + self.eps
            )
            c = np.sign(c) * np.sqrt(np.abs(c))
            if l2:
                c = l2_normalize(c)
            out[i : i + len(c)] = c
        return out
