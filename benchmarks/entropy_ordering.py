"""Does the entropy stage's CIFAR ResNet ordering (entropy pooling minus GAP) hold as training gets longer? A probe on
a validation split of the CIFAR-10 *training* images (never the test set), the evidence that the stage's verdicts
are, or are not, an artefact of where the training stops.

Every pooling of ``--poolings`` x every seed of ``params.yaml`` ``entropy.seeds`` is trained by the stage's own recipe
(``poolrep.papers.entropy.fit_cifar``; the ``cpu`` profile's images per class, widths, stem stride, batch, learning
rate, label smoothing, weight decay) for each schedule length E of ``--epochs`` (a full warm-up + cosine schedule per
E, as the stage runs it), and scored on the validation images. Per E it prints each pooling's validation accuracy
(mean over seeds), its difference to GAP with a 95 % interval over seeds x validation images, paired by seed and
image (``poolrep.claims.seed_interval``, as the stage's claims are), and GAP's gain over the previous E (paired
the same way): a plateau is a gain whose interval holds 0. It trains in this process with all torch threads (the
stage: ``train_procs`` one-thread processes), so its single runs differ from the stage's in float summation order.

    python benchmarks/entropy_ordering.py                  # gap vs entropy_linear at E/2, E, 2E (E: the cpu profile's epochs)
    python benchmarks/entropy_ordering.py --epochs 12 24 48 --poolings gap attention entropy_linear
        # the 2026-12-02 run (18 min alone), when the cpu profile used 500 images per class
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import machine, table  # noqa: E402
from entropy_recipe import split  # noqa: E402

from poolrep import config  # noqa: E402
from poolrep.claims import seed_interval  # noqa: E402
from poolrep.data.cifar import load_cifar10  # noqa: E402
from poolrep.metrics.classification import correct  # noqa: E402
from poolrep.papers import entropy as cnn  # noqa: E402


def fmt(est) -> str:
    return f"{est.value:+.1f} [{est.lo:+.1f}, {est.hi:+.1f}]"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--epochs",
        nargs="+",
        type=int,
        help="schedule lengths E (default: half, once and twice the cpu profile's epochs)",
    )
    ap.add_argument(
        "--poolings",
        nargs="+",
        default=["gap", "entropy_linear"],
        help="CIFAR ResNet poolings (gap is always included: the reference)",
    )
    ap.add_argument("--val-per-class", type=int, default=200)
    args = ap.parse_args(argv)
    p = config.resolve("entropy", profile="cpu")
    args.epochs = args.epochs or [p["epochs"] // 2, p["epochs"], 2 * p["epochs"]]
    unknown = sorted(set(args.poolings) - set(cnn.POOLINGS))
    if unknown or min(args.epochs) < 1:
        ap.error(f"unknown poolings {unknown} (choose from {', '.join(cnn.POOLINGS)}) or epochs < 1")
    poolings = ["gap"] + [q for q in dict.fromkeys(args.poolings) if q != "gap"]
    (x, y), (xv, yv) = split(load_cifar10("train"), p["cifar_train_per_class"], args.val_per_class, p["seed"])
    print("machine:", machine())
    print(
        f"{len(y)} training / {len(yv)} validation images (from the training set), "
        f"{cnn.resnet_phrase(p['widths'], p['blocks'], p['stem_stride'])}, seeds {p['seeds']}",
        flush=True,
    )
    hits, secs = {}, {}
    for e in sorted(set(args.epochs)):
        for q in poolings:
            per_seed = []
            for s in p["seeds"]:
                t0 = time.perf_counter()
                net, _ = cnn.fit_cifar(q, s, x, y, epochs=e, **cnn.cifar_recipe(p))
                secs.setdefault((e, q), []).append(time.perf_counter() - t0)
                per_seed.append(correct(net, xv, yv))
                print(
                    f"  E={e:3d} {q:16s} seed {s}: {100 * per_seed[-1].mean():.2f} % ({secs[(e, q)][-1]:.0f} s)",
                    flush=True,
                )
            hits[(e, q)] = np.stack(per_seed, axis=1)  # validation images x seeds
    rows, prev = [], None
    for e in sorted(set(args.epochs)):
        row = [e] + [f"{100 * hits[(e, q)].mean():.1f}" for q in poolings]
        row += [fmt(seed_interval(hits[(e, q)], hits[(e, "gap")], seed=0, scale=100)) for q in poolings[1:]]
        row.append("" if prev is None else fmt(seed_interval(hits[(e, "gap")], hits[(prev, "gap")], seed=0, scale=100)))
        row.append(f"{np.mean([t for q in poolings for t in secs[(e, q)]]):.0f}")
        rows.append(row)
        prev = e
    headers = (
        ["E"]
        + [f"{q} val %" for q in poolings]
        + [f"{q} - gap, 95% CI" for q in poolings[1:]]
        + ["gap gain vs previous E, 95% CI", "s / run"]
    )
    print(
        table(
            rows,
            headers,
            title=f"Entropy stage, CIFAR ResNet: orderings vs schedule length (validation split, "
            f"mean over {len(p['seeds'])} seeds)",
        )
    )


if __name__ == "__main__":
    main()
