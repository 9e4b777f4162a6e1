"""A torchrun worker for tests/test_distributed.py: extract a tiny conv net's maps of 7 images inside a gloo group.

Every rank writes how many images its own forward passes saw (count<rank>.txt); rank 0 writes the gathered maps
(maps.npz) and checks that the others got nothing back."""

import sys
from pathlib import Path

import numpy as np
import torch

from poolrep.distributed import group
from poolrep.features import extract


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = torch.nn.Conv2d(4, 5, 3, stride=2, padding=1)
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        a = torch.relu(self.c1(x))
        return {"a": a, "b": self.c2(a)}


def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(7, 8, 8, 3), dtype=np.uint8)


def net() -> Net:
    torch.manual_seed(0)
    return Net().eval()


if __name__ == "__main__":
    out = Path(sys.argv[1])
    fx = net()
    mean, std = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    with group() as (rank, world):
        maps = extract(fx, mean, std, images(), 8, batch_size=2, device="cpu", dtype=torch.float32)
        (out / f"count{rank}.txt").write_text(f"{fx.seen} {world}")
        if rank == 0:
            np.savez(out / "maps.npz", **maps)
        elif maps != {}:
            raise SystemExit(f"rank {rank} got {list(maps)} back; only rank 0 should")
