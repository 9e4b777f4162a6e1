"""The toy experiment of Figure 1: a rendered object under rotation (azimuth x elevation), the small network trained
slow on it, and the renderer itself."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...features import apply_batched
from .model import TrainCfg, train_drlim


class ToyNet(nn.Module):
    """The two-layer net of Figure 1: image -> hidden (ReLU) -> 2-D."""

    def __init__(self, in_dim: int, hidden: int = 64, out_dim: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, x):
        return self.net(x)


def grid_pairs_and_ids(n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    """For an ``n_a x n_b`` grid of views (index ``i * n_b + j``): positive pairs = neighbours one step apart on
    either angle, and a per-view id (every view its own 'scene', so negatives are any other view)."""
    idx = np.arange(n_a * n_b).reshape(n_a, n_b)
    pairs = np.concatenate(
        [np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1), np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1)]
    )
    return pairs, idx.ravel()


# a unit cube's 12 triangles (outward normals by construction order), vertices in [-1, 1]^3
_CUBE_V = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)


_CUBE_F = np.array(
    [
        [0, 1, 3],
        [0, 3, 2],  # x = -1
        [4, 6, 7],
        [4, 7, 5],  # x = +1
        [0, 4, 5],
        [0, 5, 1],  # y = -1
        [2, 3, 7],
        [2, 7, 6],  # y = +1
        [0, 2, 6],
        [0, 6, 4],  # z = -1
        [1, 5, 7],
        [1, 7, 3],  # z = +1
    ]
)


def box(center, half) -> tuple[np.ndarray, np.ndarray]:
    return _CUBE_V * np.asarray(half, float) + np.asarray(center, float), _CUBE_F.copy()


def plane_mesh() -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``V x 3`` and triangles ``F x 3`` of a box-built aeroplane (x: nose direction, y: up, z: span).
    The fin and an off-centre cockpit break the mirror symmetries so that distinct views look distinct."""
    parts = [
        box((0.0, 0.0, 0.0), (1.0, 0.16, 0.16)),  # fuselage
        box((0.1, 0.0, 0.0), (0.28, 0.04, 0.95)),  # wings
        box((-0.85, 0.05, 0.0), (0.14, 0.03, 0.38)),  # tail plane
        box((-0.85, 0.32, 0.0), (0.14, 0.28, 0.03)),  # fin
        box((0.55, 0.2, 0.06), (0.2, 0.07, 0.09)),  # cockpit
    ]
    vs, fs, n = [], [], 0
    for v, f in parts:
        vs.append(v)
        fs.append(f + n)
        n += len(v)
    return np.concatenate(vs), np.concatenate(fs)


def rotation(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    a, e = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    return rx @ ry


def render(azimuth_deg: float, elevation_deg: float, size: int = 96, mesh=None, supersample: int = 2) -> np.ndarray:
    """Grey image ``size x size`` float32 in [0, 1] of the mesh under the two rotations (view along -z)."""
    import cv2

    if size < 8:
        raise ValueError("size must be >= 8")
    v, f = plane_mesh() if mesh is None else mesh
    v = v @ rotation(azimuth_deg, elevation_deg).T
    s = size * supersample
    img = np.zeros((s, s), np.float32)
    tri = v[f]  # F x 3 x 3
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    light = np.array([0.4, 0.6, 0.7])
    light /= np.linalg.norm(light)
    shade = 0.25 + 0.75 * np.abs(normals @ light)
    order = np.argsort(tri[:, :, 2].mean(1))  # far (small z) first, camera at +z
    scale = s / 2.3
    xy = np.stack([tri[:, :, 0] * scale + s / 2, -tri[:, :, 1] * scale + s / 2], -1)
    for i in order:
        cv2.fillConvexPoly(img, np.round(xy[i] * 16).astype(np.int32), float(shade[i]), lineType=cv2.LINE_AA, shift=4)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).clip(0, 1)


def render_grid(n_steps: int = 90, step_deg: float = 1.0, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Images ``n_steps^2 x size x size`` for azimuth, elevation in ``0, step, ..., (n_steps-1)*step`` degrees
    (index ``i * n_steps + j`` = azimuth i, elevation j) and the angles ``n_steps^2 x 2``."""
    mesh = plane_mesh()
    angles = np.array([(i * step_deg, j * step_deg) for i in range(n_steps) for j in range(n_steps)])
    imgs = np.stack([render(a, e, size, mesh) for a, e in angles])
    return imgs, angles


def toy_experiment(p: dict, device, rng: np.random.Generator):
    """Fig. 1: the rendered toy, its 2-D DrLIM embedding, and a check of it: the mean |angle difference| to the
    nearest neighbour in the embedding against random pairs. Returns ``(figure, nn error, random error)``."""
    import matplotlib.pyplot as plt

    n = p["toy_n"]
    t_imgs, t_ang = render_grid(n, p["toy_step_deg"], p["toy_size"])
    T = torch.from_numpy(t_imgs).float().unsqueeze(1)
    T = (T - T.mean()) / T.std()
    t_pairs, t_ids = grid_pairs_and_ids(n, n)
    torch.manual_seed(p["seed"])
    tnet = ToyNet(p["toy_size"] * p["toy_size"], p["toy_hidden"]).to(device)
    t_cfg = TrainCfg(
        steps=p["toy_steps"],
        batch=p["toy_batch"],
        lr=p["lr"],
        margin=p["toy_margin"],
        negatives=p["negatives"],
        seed=p["seed"],
    )
    train_drlim(tnet, list(tnet.parameters()), T, t_ids, t_cfg, device, desc="toy DrLIM", pairs=t_pairs)
    emb = apply_batched(tnet.eval(), T, device=device).numpy()

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, j, lab in ((axes[0], 0, "azimuth (deg)"), (axes[1], 1, "elevation (deg)")):
        sc = ax.scatter(emb[:, 0], emb[:, 1], c=t_ang[:, j], cmap="viridis", s=6)
        fig.colorbar(sc, ax=ax, label=lab)
        ax.set_title(f"2-D DrLIM embedding coloured by {lab.split()[0]}")
    ex = [0, n - 1, (n // 2) * n + n // 2, n * (n - 1), n * n - 1]
    axes[2].imshow(np.concatenate([t_imgs[i] for i in ex], 1), cmap="gray")
    axes[2].set_title("views: " + ", ".join(f"({t_ang[i, 0]:g},{t_ang[i, 1]:g})" for i in ex), fontsize=8)
    axes[2].axis("off")

    d_emb = np.linalg.norm(emb[:, None] - emb[None], axis=2)
    np.fill_diagonal(d_emb, np.inf)
    nn1 = d_emb.argmin(1)
    nn_err = float(np.abs(t_ang[nn1] - t_ang).sum(1).mean())
    rand_err = float(np.abs(t_ang[rng.permutation(len(t_ang))] - t_ang).sum(1).mean())
    return fig, nn_err, rand_err
