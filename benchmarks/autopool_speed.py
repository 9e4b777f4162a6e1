"""Auto-pooling's training step against this machine's 1-thread GEMM rate, measured in the same call: the
``autopool`` stage's own speed table (``poolrep.papers.autopool.speed.speed_table``, the step the training repeats)
for a profile's sizes, K and batches from params.yaml, without running the stage.

The stage writes the same table (``results/autopool/tables/speed.md``) from inside its run; this script gives it on
demand (e.g. on another host, or another profile). Target (issue 43): the step at >= 70 % of the GEMM rate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu", help="params.yaml profile whose sizes, K and batches are timed")
    ap.add_argument("--repeats", type=int, default=3, help="timed steps per row (median)")
    args = ap.parse_args(argv)

    from poolrep import bench, config
    from poolrep.papers import autopool

    p = config.resolve("autopool", profile=args.profile)
    sizes = autopool.scales(p)
    # the conv features' shape: hidden maps of (side - patch + 1)^2, what map_shape gives without building the SAE
    shapes = {sc.name: (p["hidden"], sc.side - p["patch"] + 1, sc.side - p["patch"] + 1) for sc in sizes}
    table = autopool.speed_table(shapes, sizes, p, repeats=args.repeats)
    print(f"machine: {machine()}")
    print(bench.display(table).drop(columns=["of 1-thread conv"]).to_markdown(index=False))
    print(f"\n1-thread GEMM {table.attrs['rates']['gemm_gflops']:.0f} GFLOP/s, measured in this call; target >= 70 %")


if __name__ == "__main__":
    main()
