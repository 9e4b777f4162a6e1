"""Shared test set-up: headless plotting, no DVC analytics, and an isolated data/ and cache/ per test that asks."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """Point data/ and cache/ at empty temporary folders and unset the mirror; returns (data_dir, cache_dir)."""
    from poolrep import paths

    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    cache.mkdir()
    monkeypatch.setenv("POOLREP_DATA_DIR", str(data))
    monkeypatch.delenv("POOLREP_DATA_MIRROR", raising=False)
    monkeypatch.setattr(paths, "CACHE", cache)
    return data, cache


@pytest.fixture
def one_thread():
    """Tiny tensors: one torch thread avoids oversubscription on a shared machine (and sums in one fixed order)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
