"""How far does P get on fresh streamed pairs? ``python tools/autopool_stream_probe.py [--side 16] [--pairs 100000]``.

Issue 31: the stage's P saw 1,500 stored pairs six times and ended above the same-K sum-pooling grid on its own
objective (held-out cost). This probe streams fresh pairs (:class:`poolrep.data.framepairs.PairStream`, every
usable frame of each clip's first 80 %), trains P with the stage's recipe and prints P's held-out cost (optimally
scaled, 400 pairs of the last 20 %) every ``--every`` pairs against the grids', with the seconds spent on features
and on P. ``--side 16`` is the scaled-down replicate: every image (frame patch and CIFAR image) area-resized from
32x32 to 16x16 before the same 6x6 SAE, so D = 100 x 11 x 11. Its output sizes the stage's ``cpu`` profile.
"""

from __future__ import annotations

import argparse
import time

import torch


def main(argv=None) -> int:
    from poolrep.data.cifar import load_cifar10
    from poolrep.data.framepairs import PairStream, load_clips
    from poolrep.data.video import clips
    from poolrep.papers import autopool as A
    from poolrep.pooling.autopool import heldout_cost, train_autopool
    from poolrep.pooling.spatial import grid_for, grid_matrix

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--K", type=int, default=400)
    ap.add_argument("--lam", type=float, default=8.0)
    ap.add_argument("--side", type=int, default=32)
    ap.add_argument("--pairs", type=int, default=100000)
    ap.add_argument("--every", type=int, default=10000)
    ap.add_argument("--lr", type=float, default=1.0)
    ap.add_argument("--sae-iters", type=int, default=400)
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    tr = load_cifar10("train")
    t0 = time.perf_counter()
    patches = A.sample_patches(tr.images, 50000, 6, 0)
    model, hist = A.train_patch_model(patches, 6, 3, 100, 0.035, 5.0, 0.003, a.sae_iters)
    print(f"SAE: cost {hist[0]:.3g} -> {hist[-1]:.3g} in {time.perf_counter() - t0:.0f} s", flush=True)
    frames = load_clips(clips(), scale=0.5)
    train = PairStream(frames, 32, 40.0, (0.0, 0.8), seed=0)
    held_pairs = next(train.respan((0.8, 1.0), seed=1).batches(400, 400))

    def feats(x):
        return A.conv_features(A.resize_images(x, a.side), model).flatten(1)

    held = [(feats(held_pairs.a[s : s + 100]), feats(held_pairs.b[s : s + 100])) for s in range(0, 400, 100)]
    C, H, W = A.conv_features(A.resize_images(tr.images[:1], a.side), model).shape[1:]
    D = C * H * W
    costs = {g: heldout_cost(grid_matrix(g, C, H, W), held, a.lam)["scaled"] for g in (1, 2, 3)}
    print(
        f"side {a.side}, D={D}, K={a.K}, lambda={a.lam}: grids "
        + ", ".join(f"{g}x{g} {c:.2f}" for g, c in costs.items())
    )
    print(
        f"same-K grid {grid_for(a.K, C)}: {heldout_cost(grid_matrix(grid_for(a.K, C), C, H, W), held, a.lam)['scaled']:.2f}"
    )
    chunks = a.pairs // a.every

    def batches(epoch):
        for b in train.batches(a.every, 100, epoch):
            yield feats(b.a), feats(b.b)

    t0 = time.perf_counter()
    m, log = train_autopool(batches, a.K, D, a.lam, chunks, a.lr, "adam", 0, progress=False, heldout=lambda: held)
    for i, c in enumerate(log.heldout):
        print(f"pairs {i * a.every:>7,}: held-out {c:.2f}")
    print(
        f"{time.perf_counter() - t0:.0f} s (features {log.feature_seconds:.0f} s, P {log.seconds:.0f} s, "
        f"{log.gflops:.0f} GFLOP/s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
