"""Cross-layer pooling's representations (Liu et al. CVPR 2015, Sec. 2-3): the cross-layer representation and its
direct-pooling baselines of one scale, the CNN-Global baseline, the value quantisation, the post-processed linear
kernels, and the check that layer t+1 combines the channels of layer t (Eq. 1)."""

from __future__ import annotations

import numpy as np
import torch

from ...features import apply_batched
from ...linear_svm import linear_kernel
from ...pooling.crosslayer import CrossLayerPool, local_features, sample_local_features
from ...pooling.direct import DirectPool
from ...pooling.postprocess import PostProcess, fit_pca


def column_subset(K: int, D: int, d: int) -> np.ndarray:
    """Columns of the k-major ``K x D`` representation that keep the first ``d`` PCA dimensions of every P_k."""
    if not 1 <= d <= D:
        raise ValueError(f"PCA dim {d} must be in 1..{D}")
    return (np.arange(K)[:, None] * D + np.arange(d)[None, :]).ravel()


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
    out = {
        "pool": pool,
        "evr": evr,
        "K": maps_train[layer_t1].shape[1],
        "D": pca_dim,
        "n_positions": local_features(torch.as_tensor(maps_train[layer_t][:1]).float(), window, window).shape[1],
        "pca_samples": len(local),
    }
    out["cl"] = tuple(
        apply_batched(
            pool,
            m[layer_t],
            m[layer_t1],
            batch_size=batch_size,
            device=device,
            dtype=np.float16,
            desc=f"cross-layer {name}",
        )
        for name, m in (("train", maps_train), ("test", maps_test))
    )
    if baselines:
        for mode in ("sum", "max"):
            dp = DirectPool(pool, mode)
            out[mode] = tuple(
                apply_batched(
                    dp, m[layer_t], batch_size=batch_size, device=device, dtype=np.float32, desc=f"{mode} pooling"
                )
                for m in (maps_train, maps_test)
            )
    return out


def global_features(maps: np.ndarray) -> np.ndarray:
    """CNN-Global baseline: fc activations (2-D) as they are, conv maps (4-D) average-pooled."""
    if maps.ndim == 4:
        return maps.astype(np.float32).mean(axis=(2, 3))
    if maps.ndim == 2:
        return maps.astype(np.float32)
    raise ValueError(f"global-layer activations must be N x D or N x C x H x W, got {maps.shape}")


def quantize(Z: np.ndarray, bits: int, scale: np.ndarray) -> np.ndarray:
    """Uniform quantisation of each post-processed value to ``2**bits`` levels on ``[-scale, scale]`` (values
    beyond are clipped; ``scale`` per dimension, from the training set): the coarse value quantisation the paper
    says costs no accuracy. Returns the reconstructed (dequantised) values, float32."""
    if bits < 1:
        raise ValueError("bits must be >= 1")
    levels = 2**bits
    step = 2 * scale / levels
    q = np.clip(np.floor((Z + scale) / step), 0, levels - 1)  # level index 0..levels-1
    return ((q + 0.5) * step - scale).astype(np.float32)  # the level's centre


def kernels(
    train: np.ndarray, test: np.ndarray, cols=None, dtype=np.float16, bits: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Post-process (fit on ``train``: standardise, signed sqrt, stored as ``dtype``; L2 inside the kernel) and
    return (train x train, test x train) linear kernels, optionally on a column subset; ``bits``: quantise the
    post-processed values first (:func:`quantize`, scale = the training 99th percentile of each dimension's
    absolute value), a chunk of rows at a time inside the kernel (elementwise, so the same values as quantising
    the whole array at once, without its float32 copy)."""
    pp = PostProcess().fit(train)
    ztr, zte = pp.transform(train, l2=False, dtype=dtype), pp.transform(test, l2=False, dtype=dtype)
    q = None
    if bits is not None:
        scale = np.maximum(np.percentile(np.abs(ztr.astype(np.float32)), 99, axis=0), 1e-6)

        def q(z: np.ndarray) -> np.ndarray:
            return quantize(z, bits, scale)

    return linear_kernel(ztr, ztr, cols, transform=q), linear_kernel(zte, ztr, cols, transform=q)


def float16_kernel_error(pool: CrossLayerPool, maps_t: np.ndarray, maps_t1: np.ndarray, n: int = 64) -> float:
    """Largest absolute difference between the post-processed linear kernels of the first ``n`` images'
    representations stored as float32 and as float16 (each post-processed with its own statistics)."""
    r32 = apply_batched(pool, maps_t[:n], maps_t1[:n], batch_size=64, dtype=np.float32)
    r16 = r32.astype(np.float16)
    k32, _ = kernels(r32, r32[:1], dtype=np.float32)
    k16, _ = kernels(r16, r16[:1], dtype=np.float16)
    return float(np.abs(k32 - k16).max())


def conv_of(backbone: str, layer: str) -> torch.nn.Conv2d:
    """The convolution that makes ``layer`` of the torchvision ``backbone`` (built without weights): the last
    ``Conv2d`` inside the named module, else the last one before it (a ReLU after its conv)."""
    import torchvision

    last = None
    for name, m in torchvision.models.get_model(backbone, weights=None).named_modules():
        if isinstance(m, torch.nn.Conv2d):
            last = m
        if name == layer:
            inner = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
            return inner[-1] if inner else last
    raise ValueError(f"{backbone} has no module {layer!r}")


def cross_channel(backbone: str, layer_t1: str) -> tuple[bool, str]:
    """Does layer t+1 combine the channels of layer t, as Eq. 1's pooling channels need (Sec. 2: t+1 is obtained "by
    convolving feature maps of the t-th convolutional layer")? A grouped (e.g. depthwise) convolution's output channel
    sees only its own group of input channels. Returns the answer and a phrase naming the conv's groups."""
    conv = conv_of(backbone, layer_t1)
    depthwise = conv.groups == conv.in_channels and conv.groups > 1
    return conv.groups == 1, (
        f"{layer_t1}: {conv.in_channels} -> {conv.out_channels} channels, groups={conv.groups}"
        + (" (depthwise)" if depthwise else "")
    )
