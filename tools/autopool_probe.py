"""Which optimiser and schedule train auto-pooling's P: ``python tools/autopool_probe.py [--quick]``.

Issue 18 asks to choose the default by what trains, judged on the objective itself: a sum-pooling grid with the
same K is a feasible P, so a trained P must reach a lower held-out cost (optimally scaled, see
``poolrep.pooling.autopool.heldout_cost``) than the grid. This script trains P on the conv features of the stage
(colour SAE on CIFAR-10 patches, 27 x 27 maps) from frame pairs of the mirror's clips (time spans 0-80 %), measures
the cost on held-out pairs (80-100 %), and prints one table row per (start, optimiser, learning rate): P = 0, the
grid, and the cost after each epoch. It uses only the package; its output decides params.yaml's ``autopool``
optimiser block (and is quoted in the README's note on it).
"""

from __future__ import annotations

import argparse
import time

import torch


def main(argv=None) -> int:
    from poolrep.data.cifar import load_cifar10
    from poolrep.data.framepairs import load_clips, sample_pairs
    from poolrep.data.video import clips
    from poolrep.papers import autopool as A
    from poolrep.pooling.autopool import heldout_cost, train_autopool
    from poolrep.pooling.spatial import grid_for, grid_matrix

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer pairs and configurations")
    ap.add_argument("--K", type=int, default=400)
    ap.add_argument("--lam", type=float, default=1.0)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--sae-iters", type=int, default=300)
    ap.add_argument("--pairs", type=int, default=1000, help="training pairs")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--momentum-after", type=int, default=2)
    ap.add_argument(
        "--configs",
        default=None,
        help="start:optimiser:lr,... (e.g. onehot:momentum:0.001,dense:adam:1); default: a sweep",
    )
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    n_train, n_held, epochs = (300, 100, 2) if a.quick else (a.pairs, 200, a.epochs)
    tr = load_cifar10("train")
    t0 = time.perf_counter()
    patches = A.sample_patches(tr.images, 20000, 6, 0)
    model, hist = A.train_patch_model(patches, 6, 3, a.hidden, 0.035, 5.0, 0.003, 100 if a.quick else a.sae_iters)
    print(f"SAE: {a.hidden} units, cost {hist[0]:.3g} -> {hist[-1]:.3g} in {time.perf_counter() - t0:.0f} s")
    frames = load_clips(clips(), scale=0.5, max_frames=300)
    names = [c.name for c in clips()]
    train = sample_pairs(frames, n_train, 32, 0, 40.0, names, span=(0.0, 0.8))
    held = sample_pairs(frames, n_held, 32, 1, 40.0, names, span=(0.8, 1.0))
    C, H, W = A.conv_features(tr.images[:1], model).shape[1:]
    D = C * H * W

    held_feats = A.feature_batches(held, model, 100)

    def held_batches():
        return held_feats

    zero = heldout_cost(torch.zeros(a.K, D), held_batches(), a.lam)["scaled"]
    grid = heldout_cost(grid_matrix(grid_for(a.K, C), C, H, W), held_batches(), a.lam)["scaled"]
    print(
        f"K={a.K}, D={D}, lambda={a.lam}: held-out cost per pair, optimally scaled: P = 0 {zero:.1f}, "
        f"grid {grid_for(a.K, C)} {grid:.1f}"
    )
    configs = (
        [("onehot", "momentum", lr) for lr in (1e-3, 1e-2, 1e-1, 1.0)]
        + [("dense", "adam", lr) for lr in (0.3, 1.0, 3.0)]
        + [("onehot", "sgd", 1e-1)]
    )
    if a.quick:
        configs = configs[:3]
    if a.configs:
        configs = [(c.split(":")[0], c.split(":")[1], float(c.split(":")[2])) for c in a.configs.split(",")]
    print("| start | optimiser | lr | held-out cost: start, after each epoch | below grid? | s |")
    print("|---|---|---|---|---|---|")
    for init, opt, lr in configs:
        t0 = time.perf_counter()
        m, log = train_autopool(
            A.pair_batches(train, model, 100, "cpu", 0),
            a.K,
            D,
            a.lam,
            epochs,
            lr,
            opt,
            0,
            init=init,
            momentum_after=a.momentum_after,
            progress=False,
            heldout=held_batches,
        )
        curve = ", ".join(f"{c:.1f}" for c in log.heldout)
        print(
            f"| {init} | {opt} | {lr:g} | {curve} | {'yes' if log.heldout[-1] < grid else 'no'} | "
            f"{time.perf_counter() - t0:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
