"""Cross-convolutional-layer pooling (Liu, Shen and van den Hengel, CVPR 2015).

Layer ``t`` gives the local features, layer ``t+1`` the pooling channels:

- local feature at position i: the ``m x n`` neighbourhood of layer t's maps around i, concatenated
  (``C_t * m * n`` values, channel-major); positions whose neighbourhood leaves the map are dropped;
  then reduced by a PCA fitted on training local features: ``x_i = W (f_i - mu)``;
- pooling channel k (one per channel of layer t+1): ``P_k = sum_i x_i a_{i,k}``, where ``a_{i,k}`` is layer
  t+1's activation k at the centre of neighbourhood i (both layers must have the same spatial size);
- image representation: ``[P_1, ..., P_K]`` (``K * D`` values), post-processed as the authors' code does:
  standardise each dimension with training statistics, signed square root, L2-normalise.

``CrossLayerPool`` is the operator (``forward(maps_t, maps_t1) -> N x K*D``). The stage helpers below batch it
(on the GPU when present, stored as float16), fit the PCA and the post-processing, and train the linear SVM
through a precomputed linear kernel (sums of kernels = kernels of concatenated representations).
"""

from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm


def _check_maps(x: torch.Tensor, name: str = "maps") -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"expected {name} as a tensor N x C x H x W, got {shape}")


def _check_window(m: int, n: int) -> None:
    if m < 1 or n < 1 or m % 2 == 0 or n % 2 == 0:
        raise ValueError(f"neighbourhood must be odd-sized (m x n with m, n >= 1 odd), got {m} x {n}")


def local_features(maps_t: torch.Tensor, m: int = 3, n: int = 3) -> torch.Tensor:
    """``N x C x H x W`` -> ``N x L x (C*m*n)``: each position's ``m x n`` neighbourhood, concatenated.

    Only positions whose whole neighbourhood lies inside the map are kept (no padding), so
    ``L = (H-m+1)(W-n+1)``, in row-major order of the centres ``(m//2 .. H-1-m//2, n//2 .. W-1-n//2)``.
    The vector is channel-major: entry ``c*m*n + dy*n + dx`` is channel c at offset (dy, dx).
    """
    _check_maps(maps_t, "layer-t maps")
    _check_window(m, n)
    N, C, H, W = maps_t.shape
    if H < m or W < n:
        raise ValueError(f"layer-t maps of {H} x {W} are smaller than the {m} x {n} neighbourhood")
    # F.unfold is exactly the sliding-window extraction (im2col); no hand-written loop needed
    cols = F.unfold(maps_t, kernel_size=(m, n))  # N x (C*m*n) x L
    return cols.transpose(1, 2)


def centre_weights(maps_t1: torch.Tensor, m: int = 3, n: int = 3) -> torch.Tensor:
    """Layer t+1's activations at the centres kept by ``local_features``: ``N x K x H x W -> N x L x K``."""
    _check_maps(maps_t1, "layer-(t+1) maps")
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
                raise ValueError(f"pca_components must be D x F and pca_mean F, got {tuple(comp.shape)} and {tuple(mean.shape)}")
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
        _check_maps(maps_t, "layer-t maps")
        _check_maps(maps_t1, "layer-(t+1) maps")
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


# ---------------------------------------------------------------------------------------------------- PCA


def sample_local_features(maps_t: np.ndarray, m: int, n: int, max_samples: int, seed: int = 0) -> np.ndarray:
    """A random subset (at most ``max_samples``) of the local features of training maps, float32."""
    x = local_features(torch.as_tensor(maps_t).float(), m, n)
    x = x.reshape(-1, x.shape[-1]).numpy()
    if len(x) > max_samples:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), max_samples, replace=False))]
    return x


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


# --------------------------------------------------------------------------------------- batched pooling


@torch.inference_mode()
def pool_batched(
    pool: nn.Module,
    maps_t: np.ndarray,
    maps_t1: np.ndarray | None = None,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    dtype=np.float16,
    desc: str = "cross-layer pooling",
) -> np.ndarray:
    """Apply ``pool`` batch by batch on ``device``; store the result as ``dtype`` (float16 by default).

    ``maps_t1`` None: ``pool`` takes one input (e.g. ``DirectPool``).
    """
    device = torch.device(device)
    pool = pool.to(device)
    out = None
    N = len(maps_t)
    for s in tqdm(range(0, N, batch_size), desc=desc, unit="batch", leave=False):
        xt = torch.as_tensor(maps_t[s : s + batch_size]).to(device)
        r = pool(xt) if maps_t1 is None else pool(xt, torch.as_tensor(maps_t1[s : s + batch_size]).to(device))
        r = r.float().cpu().numpy()
        if out is None:
            out = np.empty((N, r.shape[1]), dtype)
        if dtype == np.float16 and np.abs(r).max() > 6e4:
            raise OverflowError("pooled values exceed the float16 range; pool with normalise_sum=True or store float32")
        out[s : s + len(r)] = r
    return out


class DirectPool(nn.Module):
    """Baselines of the paper: the same PCA-reduced local features pooled directly, ``sum_i x_i`` or ``max_i x_i``."""

    def __init__(self, cross: CrossLayerPool, mode: str = "sum"):
        super().__init__()
        if mode not in ("sum", "max"):
            raise ValueError(f"mode must be 'sum' or 'max', not {mode!r}")
        self.cross, self.mode = cross, mode

    def forward(self, maps_t: torch.Tensor) -> torch.Tensor:
        x = self.cross.project(maps_t)
        return x.sum(1) if self.mode == "sum" else x.amax(1)


# ------------------------------------------------------------------------------------------ post-processing


class PostProcess:
    """Standardise (training mean/std per dimension), signed square root, L2-normalise (the reference code's order).

    ``fit`` on training representations, ``transform`` any; works in float32 chunks over float16 storage.
    ``l2=False`` leaves the L2 step to the kernel (``linear_kernel`` normalises), so a column subset can be
    normalised on its own (the PCA-dimension sweep).
    """

    def __init__(self, eps: float = 1e-6, chunk: int = 256):
        self.eps, self.chunk = eps, chunk
        self.mean_ = self.std_ = None

    def fit(self, X: np.ndarray) -> "PostProcess":
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
                c = l2_normalise(c)
            out[i : i + len(c)] = c
        return out


def signed_sqrt(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.sqrt(np.abs(x))


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


# ------------------------------------------------------------------------------------------ linear SVM


def linear_kernel(A: np.ndarray, B: np.ndarray, cols=None, normalise: bool = True, chunk: int = 512) -> np.ndarray:
    """``K = normalise(A[:, cols]) @ normalise(B[:, cols]).T`` in float64, chunked over float16/32 storage.

    With ``normalise`` each row is L2-normalised over the selected columns (the last post-processing step).
    """
    def prep(X):
        rows = []
        for i in range(0, len(X), chunk):
            c = X[i : i + chunk]
            c = (c[:, cols] if cols is not None else c).astype(np.float32)
            rows.append(l2_normalise(c) if normalise else c)
        return rows

    bs = prep(B)
    K = np.empty((len(A), len(B)), np.float64)
    i = 0
    for a in prep(A):
        j = 0
        for b in bs:
            K[i : i + len(a), j : j + len(b)] = a @ b.T
            j += len(b)
        i += len(a)
    return K


def svm_accuracy(K_train: np.ndarray, y_train, K_test: np.ndarray, y_test, C: float = 10.0) -> float:
    """Linear SVM on a precomputed linear kernel (libsvm's dual solver via scikit-learn's ``SVC``, one-vs-one).

    The kernel form keeps memory at N x N for 100k+ dimensional representations, and makes concatenation of
    two representations a sum of kernels. Returns test accuracy in percent.
    """
    from sklearn.svm import SVC

    if K_train.shape[0] != K_train.shape[1] or K_test.shape[1] != K_train.shape[0]:
        raise ValueError(f"kernel shapes {K_train.shape} (train) and {K_test.shape} (test x train) do not match")
    clf = SVC(kernel="precomputed", C=C).fit(K_train, y_train)
    return 100.0 * float((clf.predict(K_test) == np.asarray(y_test)).mean())


def column_subset(K: int, D: int, d: int) -> np.ndarray:
    """Columns of the k-major ``K x D`` representation that keep the first ``d`` PCA dimensions of every P_k."""
    if not 1 <= d <= D:
        raise ValueError(f"PCA dim {d} must be in 1..{D}")
    return (np.arange(K)[:, None] * D + np.arange(d)[None, :]).ravel()


# ------------------------------------------------------------------------------------------ backbones


# ------------------------------------------------------------------------------------------ stage helpers


def represent(
    maps_train: dict,
    maps_test: dict,
    layer_t: str,
    layer_t1: str,
    window: int = 3,
    pca_dim: int = 512,
    pca_max_samples: int = 200_000,
    seed: int = 0,
    batch_size: int = 64,
    device="cpu",
    baselines: bool = True,
) -> dict:
    """Everything one scale needs: PCA fitted on training local features of ``layer_t``, then the cross-layer
    representation (float16, sums divided by the number of positions) of train and test, and optionally the
    direct sum / max pooling baselines of the same PCA-reduced local features. Returns a dict with ``pool``,
    ``evr`` (explained variance ratio), ``cl``, ``sum``, ``max`` (each a (train, test) pair), ``K``, ``D``."""
    for maps in (maps_train, maps_test):
        for layer in (layer_t, layer_t1):
            if layer not in maps:
                raise KeyError(f"layer {layer!r} not among the extracted maps {sorted(maps)}")
    local = sample_local_features(maps_train[layer_t], window, window, pca_max_samples, seed)
    mean, comp, evr = fit_pca(local, pca_dim, seed)
    pool = CrossLayerPool(mean, comp, window, window, normalise_sum=True)
    out = {"pool": pool, "evr": evr, "K": maps_train[layer_t1].shape[1], "D": pca_dim,
           "n_positions": local_features(torch.as_tensor(maps_train[layer_t][:1]).float(), window, window).shape[1],
           "pca_samples": len(local)}
    out["cl"] = tuple(
        pool_batched(pool, m[layer_t], m[layer_t1], batch_size, device, desc=f"cross-layer {name}")
        for name, m in (("train", maps_train), ("test", maps_test))
    )
    if baselines:
        for mode in ("sum", "max"):
            dp = DirectPool(pool, mode)
            out[mode] = tuple(pool_batched(dp, m[layer_t], None, batch_size, device, np.float32, f"{mode} pooling")
                              for m in (maps_train, maps_test))
    return out


def global_features(maps: np.ndarray) -> np.ndarray:
    """CNN-Global baseline: fc activations (2-D) as they are, conv maps (4-D) average-pooled."""
    if maps.ndim == 4:
        return maps.astype(np.float32).mean(axis=(2, 3))
    if maps.ndim == 2:
        return maps.astype(np.float32)
    raise ValueError(f"global-layer activations must be N x D or N x C x H x W, got {maps.shape}")


def kernels(train: np.ndarray, test: np.ndarray, cols=None, dtype=np.float16) -> tuple[np.ndarray, np.ndarray]:
    """Post-process (fit on ``train``: standardise, signed sqrt, stored as ``dtype``; L2 inside the kernel) and
    return (train x train, test x train) linear kernels, optionally on a column subset."""
    pp = PostProcess().fit(train)
    ztr, zte = pp.transform(train, l2=False, dtype=dtype), pp.transform(test, l2=False, dtype=dtype)
    return linear_kernel(ztr, ztr, cols), linear_kernel(zte, ztr, cols)


@torch.inference_mode()
def float16_kernel_error(pool: CrossLayerPool, maps_t: np.ndarray, maps_t1: np.ndarray, n: int = 64) -> float:
    """Largest absolute difference between the post-processed linear kernels of the first ``n`` images'
    representations stored as float32 and as float16 (each post-processed with its own statistics)."""
    r32 = pool_batched(pool, maps_t[:n], maps_t1[:n], dtype=np.float32, desc="fp32 check")
    r16 = r32.astype(np.float16)
    k32, _ = kernels(r32, r32[:1], dtype=np.float32)
    k16, _ = kernels(r16, r16[:1], dtype=np.float16)
    return float(np.abs(k32 - k16).max())
