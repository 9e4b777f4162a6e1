"""Low-level features of auto-pooling (Sukhbaatar, Makino & Aihara 2013): a sparse auto-encoder on
contrast-normalised, ZCA-whitened patches, applied convolutionally (Coates, Lee & Ng 2011 pipeline).

- contrast normalisation of a patch ``p`` (values in 0..255): ``(p - mean(p)) / sqrt(var(p) + eps_cn)``, eps_cn = 10;
- ZCA whitening: ``W = U diag(1 / sqrt(s + eps_zca)) U^T`` from the covariance ``U diag(s) U^T`` of the normalised
  patches, eps_zca = 0.1;
- sparse auto-encoder: ``h = sigmoid(W1 x + b1)``, ``x_hat = W2 h + b2`` (linear decoder), cost

      J = 1/(2N) sum ||x_hat - x||^2 + decay/2 (||W1||^2 + ||W2||^2) + beta sum_j KL(rho || rho_hat_j),

  ``rho_hat_j`` the mean activation of unit j over the batch (UFLDL's sparseAutoencoderLinearCost), trained with
  full-batch L-BFGS (torch.optim.LBFGS, as the author's code used minFunc's L-BFGS);
- convolutional features: every ``s x s`` patch of an image at stride 1 goes through the same normalisation,
  whitening and encoder, giving ``H x (32 - s + 1) x (32 - s + 1)`` non-negative maps (100 x 27 x 27 = 72,900
  values per CIFAR image for the colour model). :func:`conv_features` works on one batch of images at a time, so
  the 72,900-d features of a data set are never held in memory together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm


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


@dataclass
class ZCA:
    """ZCA whitening ``(x - mean) @ W`` with ``W = U diag((s + eps)^-1/2) U^T`` (symmetric)."""

    mean: torch.Tensor
    W: torch.Tensor

    @classmethod
    def fit(cls, patches, eps: float = 0.1) -> "ZCA":
        x = _as_float_patches(patches).double()
        if x.shape[0] < 2:
            raise ValueError("ZCA needs at least two patches")
        mean = x.mean(dim=0)
        cov = torch.cov((x - mean).T)
        s, U = torch.linalg.eigh(cov)
        W = U @ torch.diag(1.0 / torch.sqrt(s.clamp(min=0) + eps)) @ U.T
        return cls(mean.float(), W.float())

    def __call__(self, patches) -> torch.Tensor:
        x = _as_float_patches(patches)
        if x.shape[1] != self.W.shape[0]:
            raise ValueError(f"ZCA was fitted on {self.W.shape[0]}-d patches, got {x.shape[1]}-d")
        return (x - self.mean.to(x.device)) @ self.W.to(x.device)

    def to(self, device) -> "ZCA":
        return ZCA(self.mean.to(device), self.W.to(device))


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
    out = np.stack([images[a, b:b + size, c:c + size] for a, b, c in zip(i, y, x)])
    return out.reshape(n, -1).astype(np.float32)


class SparseAutoencoder(nn.Module):
    """Sigmoid encoder, linear decoder, KL sparsity penalty and weight decay (UFLDL's linear decoder)."""

    def __init__(self, visible: int, hidden: int, rho: float = 0.035, beta: float = 5.0, decay: float = 3e-3,
                 seed: int = 0):
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
        wd = 0.5 * self.decay * ((self.W1 ** 2).sum() + (self.W2 ** 2).sum())
        rho_hat = h.mean(dim=0).clamp(1e-6, 1 - 1e-6)
        rho = self.rho
        kl = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
        return rec + wd + self.beta * kl

    def fit(self, x, iters: int = 200, progress: bool = True) -> list[float]:
        """Full-batch L-BFGS on ``x`` (N x visible, already normalised and whitened); returns the cost history."""
        x = _as_float_patches(x).to(self.W1.device)
        opt = torch.optim.LBFGS(self.parameters(), lr=1.0, max_iter=iters, history_size=20,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)
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
        """The features' decoder atoms (columns of ``W2``, in whitened patch space, as UFLDL displays a linear
        decoder's features) in pixel order, ``hidden x size x size [x C]``, for display."""
        w = self.sae.W2.detach().cpu().T.numpy()
        shape = (self.size, self.size) + ((self.channels,) if self.channels > 1 else ())
        return w.reshape(-1, *shape)


def train_patch_model(patches, size: int, channels: int, hidden: int, rho: float, beta: float, decay: float,
                      iters: int, eps_cn: float = 10.0, eps_zca: float = 0.1, seed: int = 0,
                      device: torch.device | str = "cpu") -> tuple[PatchModel, list[float]]:
    """Normalise, whiten and train the SAE on ``patches`` (N x size*size*channels, 0..255)."""
    xn = contrast_normalize(patches, eps_cn)
    zca = ZCA.fit(xn, eps_zca)
    xw = zca(xn).to(device)
    sae = SparseAutoencoder(xw.shape[1], hidden, rho, beta, decay, seed).to(device)
    hist = sae.fit(xw, iters)
    return PatchModel(size, channels, zca.to(device), sae, eps_cn), hist


@torch.no_grad()
def conv_features(images, model: PatchModel, device: torch.device | str = "cpu") -> torch.Tensor:
    """Convolutional features of one batch of images (N x H x W x C uint8 or float, 0..255):
    ``N x hidden x (H - s + 1) x (W - s + 1)`` float32 on ``device``. Call per batch (see :func:`iter_features`)."""
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    if x.ndim == 3 and model.channels == 1:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] != model.channels:
        raise ValueError(f"expected images N x H x W x {model.channels}, got shape {tuple(x.shape)}")
    N, H, W, C = x.shape
    s = model.size
    x = x.to(device=device, dtype=torch.float32).permute(0, 3, 1, 2)
    cols = F.unfold(x, s)  # N x (C*s*s) x L, channel-major (c, y, x)
    L = cols.shape[-1]
    # reorder to (y, x, c) so columns match sample_patches' flattening
    cols = cols.view(N, C, s * s, L).permute(0, 3, 2, 1).reshape(N * L, s * s * C)
    h = model.encode_patches(cols)
    oh, ow = H - s + 1, W - s + 1
    return h.view(N, oh, ow, -1).permute(0, 3, 1, 2).contiguous()


def iter_features(images, model: PatchModel, batch_size: int = 100, device="cpu", desc: str = "features"):
    """Yield ``(start, features of images[start:start+batch_size])``: the streaming form of :func:`conv_features`."""
    n = len(images)
    for a in tqdm(range(0, n, batch_size), desc=desc, leave=False):
        yield a, conv_features(images[a:a + batch_size], model, device)
