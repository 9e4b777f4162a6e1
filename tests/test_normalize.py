"""The shared normalisations (poolrep.normalize): ZCA whitening (papers 000 and 001) and L2 normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poolrep.normalize import ZCA, l2_normalize
from poolrep.papers.autopool import contrast_normalize


def test_zca_whitens_numpy_images_and_keeps_their_shape():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(4000, 5)) @ rng.normal(size=(5, 5))).reshape(4000, 5, 1, 1)
    zca = ZCA(eps=1e-6).fit(x)
    z = zca.transform(x.astype(np.float32))
    assert isinstance(z, np.ndarray) and z.shape == x.shape and z.dtype == np.float32
    np.testing.assert_allclose(np.cov(z.reshape(4000, 5).T), np.eye(5), atol=2e-3)
    np.testing.assert_allclose(zca.W, zca.W.T, atol=1e-5)  # ZCA rotates back: W is symmetric
    with pytest.raises(ValueError, match="fitted on 5-d"):
        zca.transform(np.zeros((2, 4), np.float32))
    with pytest.raises(RuntimeError, match="before fit"):
        ZCA(0.1)(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="at least two"):
        ZCA(0.1).fit(np.zeros((1, 4)))


def test_zca_on_contrast_normalised_torch_patches():
    p = np.random.default_rng(0).uniform(0, 255, (500, 12)).astype(np.float32)
    n = contrast_normalize(p, 10.0)
    z = ZCA(eps=1e-6).fit(n)
    w = z(n)
    assert torch.is_tensor(w) and w.dtype == torch.float32
    # identity covariance on the non-null subspace (contrast normalisation removes one direction)
    ev = torch.linalg.eigvalsh(torch.cov(w.double().T))
    assert torch.allclose(ev[1:], torch.ones(11, dtype=torch.float64), atol=1e-2)
    assert ev[0] < 1e-3
    with pytest.raises(ValueError, match="fitted on 12"):
        z(torch.ones(3, 5))


def test_l2_normalize_torch_and_numpy_agree_and_keep_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [-1.0, 0.0]], np.float32)
    a, b = l2_normalize(x), l2_normalize(torch.from_numpy(x))
    assert isinstance(a, np.ndarray) and torch.is_tensor(b)
    np.testing.assert_array_equal(a, b.numpy())
    np.testing.assert_allclose(a, [[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]])
