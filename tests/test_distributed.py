"""Multi-process feature extraction (torchrun + torch.distributed, gloo): shards, gathering, the stage launcher.

The two-process test is real: torchrun starts two CPU workers that join a gloo group, exactly as on a multi-GPU
machine except for the device."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from poolrep import distributed
from poolrep.distributed import procs, shard, torchrun_command

SCRIPT = Path(__file__).parent / "scripts" / "dist_extract.py"


@pytest.mark.parametrize("n,world", [(7, 2), (10, 3), (2, 4), (0, 3), (5, 1)])
def test_shards_are_contiguous_disjoint_balanced_and_cover_everything(n, world):
    parts = [shard(n, r, world) for r in range(world)]
    covered = [i for s in parts for i in range(n)[s]]
    assert covered == list(range(n))
    sizes = [len(range(n)[s]) for s in parts]
    assert max(sizes) - min(sizes) <= 1


def test_shard_and_procs_reject_bad_input():
    with pytest.raises(ValueError, match="bad shard"):
        shard(5, 2, 2)
    with pytest.raises(ValueError, match="extract_procs"):
        procs(0)
    with pytest.raises(ValueError, match="extract_procs"):
        procs("all")
    assert procs(3) == 3
    assert procs("auto") == max(1, torch.cuda.device_count())


def test_torchrun_command_uses_torchs_launcher():
    cmd = torchrun_command(["backbone", "--profile", "smoke"], 4)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc-per-node=4" in cmd and cmd[-4:] == ["poolrep.cli", "backbone", "--profile", "smoke"]


@pytest.mark.timeout(300)
def test_two_gloo_workers_extract_one_shard_each_and_rank0_gets_everything(tmp_path):
    from poolrep.features import extract

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import dist_extract as w
    finally:
        sys.path.remove(str(SCRIPT.parent))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=2",
            str(SCRIPT),
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    # each worker ran its forward passes on its own shard only: 4 + 3 images, not 7 + 7
    assert (tmp_path / "count0.txt").read_text() == "4 2"
    assert (tmp_path / "count1.txt").read_text() == "3 2"
    got = np.load(tmp_path / "maps.npz")
    ref = extract(
        w.net(), torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1), w.images(), 8, batch_size=2, dtype=torch.float32
    )
    assert sorted(got.files) == ["a", "b"]
    assert got["a"].shape == (7, 4, 8, 8) and got["b"].shape == (7, 5, 4, 4)
    for k in ("a", "b"):
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-6)  # same images, same order


def test_backbone_stage_relaunches_itself_under_torchrun(monkeypatch):
    from poolrep import config, stages

    calls = []
    monkeypatch.setattr(config, "resolve", lambda stage, profile=None: {"extract_procs": 2})
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(distributed, "launch", lambda args, n: calls.append((list(args), n)) or 0)
    stages.backbone(profile="smoke")
    assert calls == [(["backbone", "--profile", "smoke"], 2)]
    monkeypatch.setattr(distributed, "launch", lambda args, n: 1)
    with pytest.raises(RuntimeError, match="2 torchrun workers failed"):
        stages.backbone()
