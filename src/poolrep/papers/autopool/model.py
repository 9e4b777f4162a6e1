"""Auto-pooling's low-level features (Sukhbaatar, Makino & Aihara 2013, Sec. 3.1-3.2) and the analysis of pools.

Low-level features (Sec. 3.1 "We used a sparse auto-encoder to learn 400 features from patches"; Sec. 3.2 "a
sparse auto-encoder with 100 hidden units on 6x6 small patches extracted from CIFAR10 images"), after Coates,
Lee & Ng (2011):

- contrast normalisation of a patch ``p`` (values in 0..255): ``(p - mean(p)) / sqrt(var(p) + eps_cn)``, eps_cn = 10;
- ZCA whitening (:class:`poolrep.normalize.ZCA`, eps_zca = 0.1);
- sparse auto-encoder: ``h = sigmoid(W1 x + b1)``, ``x_hat = W2 h + b2`` (linear decoder), cost

      J = 1/(2N) sum ||x_hat - x||^2 + decay/2 (||W1||^2 + ||W2||^2) + beta sum_j KL(rho || rho_hat_j),

  ``rho_hat_j`` the mean activation of unit j over the batch (UFLDL's sparseAutoencoderLinearCost), trained with
  full-batch L-BFGS (torch.optim.LBFGS, as the author's code used minFunc's L-BFGS);
- convolutional features (Sec. 3.2 "those local features are duplicated to all possible locations of 32x32
  images"): every ``s x s`` patch of an image at stride 1 goes through the same normalisation, whitening and
  encoder, giving ``H x (32 - s + 1) x (32 - s + 1)`` non-negative maps (100 x 27 x 27 = 72,900 values per CIFAR
  image for the colour model). :func:`conv_features` works on one batch of images at a time, so the 72,900-d
  features of a data set are never held in memory together. :func:`resize_images` gives the scaled-down
  replicate's 16x16 images (11x11 maps);
- the analysis of pools: each filter's orientation, the spread of orientations inside a pool against random groups
  (Sec. 3.2 "edge detectors of similar orientations are grouped together"), a pool's members.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ...normalize import ZCA


def _as_float_patches(p) -> torch.Tensor:
    p = torch.as_tensor(p)
    if p.ndim != 2:
        raise ValueError(f"expected patches as a 2-d array N x D, got shape {tuple(p.shape)}")
    return p.to(torch.float32) if not p.is_floating_point() else p


def contrast_normalize(patches, eps: float = 10.0) -> torch.Tensor:
    """Per-patch brightness and contrast normalisation, ``(p - mean) / sqrt(var + eps)`` (rows are patches)."""
    p = _as_float_patches(patches)
    mu = p.mean(dim=1, keepdim=True)
    var = p.var(dim=1, keepdim=True)  # unbiased, as Coates et al.'s var(patches, [], 2)
    return (p - mu) / torch.sqrt(var + eps)


def sample_patches(images: np.ndarray, n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` random ``size x size`` patches of ``images`` (N x H x W [x C], uint8), flattened in (y, x, c) order
    -> float32 ``n x size*size*C``."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"expected images N x H x W [x C], got shape {images.shape}")
    N, H, W, _ = images.shape
    if size > H or size > W:
        raise ValueError(f"patch size {size} larger than images {H}x{W}")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, N, n)
    y = rng.integers(0, H - size + 1, n)
    x = rng.integers(0, W - size + 1, n)
    out = np.stack([images[a, b : b + size, c : c + size] for a, b, c in zip(i, y, x)])
    return out.reshape(n, -1).astype(np.float32)


class SparseAutoencoder(nn.Module):
    """Sigmoid encoder, linear decoder, KL sparsity penalty and weight decay (UFLDL's linear decoder)."""

    def __init__(
        self, visible: int, hidden: int, rho: float = 0.035, beta: float = 5.0, decay: float = 3e-3, seed: int = 0
    ):
        super().__init__()
        if not 0 < rho < 1:
            raise ValueError("rho (sparsity target) must be in (0, 1)")
        g = torch.Generator().manual_seed(seed)
        r = float(np.sqrt(6.0 / (visible + hidden + 1)))  # UFLDL initialisation
        self.W1 = nn.Parameter((torch.rand(hidden, visible, generator=g) * 2 - 1) * r)
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.W2 = nn.Parameter((torch.rand(visible, hidden, generator=g) * 2 - 1) * r)
        self.b2 = nn.Parameter(torch.zeros(visible))
        self.rho, self.beta, self.decay = rho, beta, decay

    @property
    def visible(self) -> int:
        return self.W1.shape[1]

    @property
    def hidden(self) -> int:
        return self.W1.shape[0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.visible:
            raise ValueError(f"expected N x {self.visible} inputs, got {tuple(x.shape)}")
        return torch.sigmoid(x @ self.W1.T + self.b1)

    def cost(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encode(x)
        rec = 0.5 * ((h @ self.W2.T + self.b2 - x) ** 2).sum() / x.shape[0]
        wd = 0.5 * self.decay * ((self.W1**2).sum() + (self.W2**2).sum())
        rho_hat = h.mean(dim=0).clamp(1e-6, 1 - 1e-6)
        rho = self.rho
        kl = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
        return rec + wd + self.beta * kl

    def fit(self, x, iters: int = 200, progress: bool = True) -> list[float]:
        """Full-batch L-BFGS on ``x`` (N x visible, already normalised and whitened); returns the cost history."""
        x = _as_float_patches(x).to(self.W1.device)
        opt = torch.optim.LBFGS(
            self.parameters(),
            lr=1.0,
            max_iter=iters,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
        )
        hist: list[float] = []
        bar = tqdm(total=iters, desc="SAE L-BFGS", leave=False, disable=not progress)

        def closure():
            opt.zero_grad()
            c = self.cost(x)
            c.backward()
            hist.append(float(c.detach()))
            bar.update(1)
            return c

        opt.step(closure)
        bar.close()
        return hist


@dataclass
class PatchModel:
    """Everything that maps a ``size x size`` patch to its hidden code: normalisation, whitening, encoder."""

    size: int
    channels: int
    zca: ZCA
    sae: SparseAutoencoder
    eps_cn: float = 10.0

    def encode_patches(self, patches) -> torch.Tensor:
        return self.sae.encode(self.zca(contrast_normalize(patches, self.eps_cn)))

    def filters(self) -> np.ndarray:
        """Each hidden unit's filter in pixel space, ``hidden x size x size [x C]``, for display: the encoder row
        applied to whitened input, ``w . ((x - mu) W_zca)``, is the pixel-space filter ``W_zca w`` (``W_zca``
        symmetric), as UFLDL displays ``W * ZCAWhite``. The decoder atoms in whitened space look like noise even
        when the features are edge detectors."""
        w = (self.sae.W1.detach().cpu() @ self.zca.W.cpu()).numpy()
        shape = (self.size, self.size) + ((self.channels,) if self.channels > 1 else ())
        return w.reshape(-1, *shape)

    @torch.no_grad()
    def mean_activation(self, patches) -> float:
        """The sparsity reached: mean hidden activation over ``patches`` (raw, 0..255), to set against ``rho``."""
        x = _as_float_patches(patches).to(self.sae.W1.device)
        return float(torch.cat([self.encode_patches(x[s : s + 10000]) for s in range(0, len(x), 10000)]).mean())


def orientation(filters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dominant orientation (radians in [0, pi)) and coherence (0: no orientation, 1: a perfect edge or bar) of each
    filter (``n x h x w [x C]``, colour summed), from its structure tensor ``J = sum grad grad^T``: the orientation of
    the gradient ``0.5 atan2(2 J_xy, J_xx - J_yy)``, coherence ``sqrt((J_xx - J_yy)^2 + 4 J_xy^2) / (J_xx + J_yy)``.
    How edge-like the SAE's features are, and how alike the orientations inside a pool are."""
    f = np.asarray(filters, dtype=np.float64)
    if f.ndim == 4:
        f = f.sum(-1)
    if f.ndim != 3:
        raise ValueError(f"expected n x h x w [x C] filters, got shape {f.shape}")
    gy, gx = np.gradient(f, axis=(1, 2))
    jxx, jyy, jxy = (gx * gx).sum((1, 2)), (gy * gy).sum((1, 2)), (gx * gy).sum((1, 2))
    theta = np.mod(0.5 * np.arctan2(2 * jxy, jxx - jyy), np.pi)
    coh = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / np.maximum(jxx + jyy, 1e-30)
    return theta, coh


def orientation_spread(theta: np.ndarray) -> float:
    """Circular variance of orientations (period pi): ``1 - |mean exp(2 i theta)|``, 0 when all are equal, near 1
    when they are spread evenly."""
    return float(1 - np.abs(np.exp(2j * np.asarray(theta)).mean()))


def cluster_orientation_excess(
    P: np.ndarray, theta: np.ndarray, threshold: float, seed: int = 0, n_random: int = 200
) -> np.ndarray:
    """Per pool with at least two members (``cluster_members``): its members' orientation spread minus the mean
    spread of ``n_random`` random groups of the same size drawn from all features. Negative: the pool groups
    features of more similar orientation than chance (the paper's "edge detectors of similar orientations are
    grouped together", Sec. 3.2)."""
    rng = np.random.default_rng(seed)
    out = []
    for m in cluster_members(P, threshold):
        if len(m) < 2:
            continue
        rand = np.mean(
            [orientation_spread(theta[rng.choice(len(theta), len(m), replace=False)]) for _ in range(n_random)]
        )
        out.append(orientation_spread(theta[m]) - rand)
    return np.array(out)


def train_patch_model(
    patches,
    size: int,
    channels: int,
    hidden: int,
    rho: float,
    beta: float,
    decay: float,
    iters: int,
    eps_cn: float = 10.0,
    eps_zca: float = 0.1,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[PatchModel, list[float]]:
    """Normalise, whiten and train the SAE on ``patches`` (N x size*size*channels, 0..255)."""
    xn = contrast_normalize(patches, eps_cn)
    zca = ZCA(eps_zca).fit(xn)
    xw = zca(xn).to(device)
    sae = SparseAutoencoder(xw.shape[1], hidden, rho, beta, decay, seed).to(device)
    hist = sae.fit(xw, iters)
    return PatchModel(size, channels, zca.to(device), sae, eps_cn), hist


def resize_images(images, side: int) -> torch.Tensor | np.ndarray:
    """Images ``N x H x W [x C]`` (0..255) area-resized to ``side x side`` (float32 tensor, same layout); unchanged
    when they already have that side. The scaled-down replicate (issue 31) sees every image, CIFAR-10 and frame
    patch alike, at 16x16, so the same 6x6 SAE gives 11x11 maps."""
    x = torch.as_tensor(images)
    if x.ndim not in (3, 4):
        raise ValueError(f"expected images N x H x W [x C], got shape {tuple(x.shape)}")
    if x.shape[1] == side and x.shape[2] == side:
        return images
    if side < 1 or side > min(x.shape[1], x.shape[2]):
        raise ValueError(f"side {side} must be in 1..{min(x.shape[1], x.shape[2])}")
    y = x[..., None] if x.ndim == 3 else x
    y = F.interpolate(y.permute(0, 3, 1, 2).float(), size=(side, side), mode="area").permute(0, 2, 3, 1)
    return (y[..., 0] if x.ndim == 3 else y).contiguous()


@torch.no_grad()
def conv_features(images, model: PatchModel, device: torch.device | str = "cpu") -> torch.Tensor:
    """Convolutional features of one batch of images (N x H x W x C uint8 or float, 0..255):
    ``N x hidden x (H - s + 1) x (W - s + 1)`` float32 on ``device``; every ``s x s`` patch at stride 1 gives what
    :meth:`PatchModel.encode_patches` gives it. Call it per batch.

    Computed as one convolution, not patch by patch: the encoder's input is linear in the patch ``p`` up to the
    patch's own mean ``mu`` and standard deviation ``sd`` (contrast normalisation), so
    ``W1 . zca((p - mu) / sd) = (p . A - mu sum(A)) / sd - m . A`` with ``A = W_zca W1^T`` folded once (``m`` the
    whitening mean): a convolution with ``A`` and two box filters for ``mu`` and ``sd``. That avoids unfolding
    the 108-value patches of every location (about 4x faster on the CPU; ``tests/test_autopool.py`` compares it
    with the patch-by-patch encoder)."""
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    if x.ndim == 3 and model.channels == 1:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] != model.channels:
        raise ValueError(f"expected images N x H x W x {model.channels}, got shape {tuple(x.shape)}")
    C, s = model.channels, model.size
    n = s * s * C
    # centred at 128: the patch statistics and the result do not change, the float32 sums stay small
    x = x.to(device=device, dtype=torch.float32).permute(0, 3, 1, 2) - 128.0
    W1, b1 = model.sae.W1, model.sae.b1
    zw = model.zca.W.to(W1.device)
    A = zw @ W1.T  # n x hidden, rows in the (y, x, c) order of sample_patches' flattening
    kernel = A.T.reshape(-1, s, s, C).permute(0, 3, 1, 2).contiguous().to(x.device)  # hidden x C x s x s
    bias = (b1 - model.zca.mean.to(W1.device) @ A).to(x.device)
    xa = F.conv2d(x, kernel)  # N x hidden x oh x ow: p . A
    ones = torch.ones(1, C, s, s, device=x.device)
    sx = F.conv2d(x, ones)  # N x 1 x oh x ow: sum of the patch
    sxx = F.conv2d(x * x, ones)
    mu = sx / n
    var = (sxx - sx * mu) / (n - 1)  # unbiased, as contrast_normalize
    sd = torch.sqrt(var.clamp_min(0) + model.eps_cn)
    # in place on the one big tensor: fresh N x hidden x oh x ow temporaries cost as much as the convolution here
    xa.addcmul_(mu, A.sum(0).to(x.device)[None, :, None, None], value=-1).div_(sd).add_(bias[None, :, None, None])
    return xa.sigmoid_()


def cluster_members(P: np.ndarray, threshold: float) -> list[np.ndarray]:
    """For each row of P, the features with ``P_ij > threshold * max_j P_ij``, strongest first."""
    out = []
    for row in P:
        m = row.max()
        idx = np.flatnonzero(row > threshold * m) if m > 0 else np.array([], int)
        out.append(idx[np.argsort(-row[idx])])
    return out
