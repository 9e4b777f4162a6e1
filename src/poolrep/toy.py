"""The toy of Figure 1: one 3-D object rendered under two rotation angles.

The paper renders a plane model (not distributed with the paper); we build a small aeroplane-like mesh out of
boxes (fuselage, wings, tail fin, tail plane) and render it ourselves: rotate by ``azimuth`` about the vertical
axis and ``elevation`` about the horizontal one, project orthographically, shade each face flat (Lambert, one
directional light plus ambient) and paint faces back to front (painter's algorithm with OpenCV's polygon fill,
at 2x resolution then area-downsampled for anti-aliasing).
"""

from __future__ import annotations

import numpy as np

# a unit cube's 12 triangles (outward normals by construction order), vertices in [-1, 1]^3
_CUBE_V = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
_CUBE_F = np.array([
    [0, 1, 3], [0, 3, 2],  # x = -1
    [4, 6, 7], [4, 7, 5],  # x = +1
    [0, 4, 5], [0, 5, 1],  # y = -1
    [2, 3, 7], [2, 7, 6],  # y = +1
    [0, 2, 6], [0, 6, 4],  # z = -1
    [1, 5, 7], [1, 7, 3],  # z = +1
])


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
