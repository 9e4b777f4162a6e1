"""How far from a plateau is the entropy stage's CIFAR ResNet recipe, and what does an epoch cost? A probe on a
validation split of the CIFAR-10 *training* images (never the test set), the evidence behind ``params.yaml``
``entropy.stem_stride`` / ``epochs`` / ``cifar_train_per_class``.

For each setting and each pooling of ``--poolings`` (default: the stage's ``control_poolings``, GAP and entropy, since
the stage's control retrains exactly these): the ResNet (``poolrep.papers.entropy.fit_cifar``, the stage's recipe:
batch, lr, label smoothing, weight decay from params.yaml) trained E and 2E epochs from the same seed, its validation
accuracy after each, and the 2E - E gain with a 95 % bootstrap interval paired over the validation images
(``poolrep.claims.paired_bootstrap``): a plateau is a gain whose interval holds 0, for every pooling.

    python benchmarks/entropy_recipe.py                      # the 2026-12-02 probes' settings, both poolings (~20 min alone)
    python benchmarks/entropy_recipe.py --setting 500 15 2   # per class, epochs, stem stride
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import machine, table  # noqa: E402

from poolrep import config  # noqa: E402
from poolrep.claims import paired_bootstrap  # noqa: E402
from poolrep.data.cifar import balanced_indices, load_cifar10  # noqa: E402
from poolrep.metrics.classification import correct  # noqa: E402
from poolrep.papers import entropy as cnn  # noqa: E402

# (images per class, epochs E, stem stride): the 2026-12-02 probes' settings (params.yaml entropy gives their results;
# the first six probed GAP alone, the last GAP and entropy, and (200, 80) was rerun for entropy)
SETTINGS = [(500, 15, 2), (300, 20, 2), (200, 30, 2), (200, 80, 2), (100, 50, 2), (100, 100, 2), (100, 160, 2)]


def split(train, per_class: int, val_per_class: int, seed: int):
    """The stage's class-balanced training subset (same draw as ``Split.subset``) and a validation set of
    ``val_per_class`` per class from the other training images."""
    idx = balanced_indices(train.labels, per_class, seed)
    rest = np.setdiff1d(np.arange(len(train.labels)), idx)
    val = rest[balanced_indices(train.labels[rest], val_per_class, seed + 100)]
    as_t = lambda i: (cnn.images_to_tensor(train.images[i]), torch.from_numpy(train.labels[i]))  # noqa: E731
    return as_t(idx), as_t(val)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--setting",
        nargs=3,
        type=int,
        action="append",
        metavar=("PER_CLASS", "EPOCHS", "STEM_STRIDE"),
        help="a setting to probe (repeatable); default: the 2026-12-02 probes' seven",
    )
    ap.add_argument("--val-per-class", type=int, default=200)
    ap.add_argument("--poolings", nargs="+", help="CIFAR ResNet poolings (default: the stage's control_poolings)")
    args = ap.parse_args(argv)
    p = config.resolve("entropy", profile="cpu")
    poolings = args.poolings or p["control_poolings"]
    unknown = sorted(set(poolings) - set(cnn.POOLINGS))
    if unknown:
        ap.error(f"unknown poolings {unknown} (choose from {', '.join(cnn.POOLINGS)})")
    train = load_cifar10("train")
    print("machine:", machine())
    rows = []
    for per_class, epochs, stride in args.setting or SETTINGS:
        (x, y), (xv, yv) = split(train, per_class, args.val_per_class, p["seed"])
        for pooling in poolings:
            hits, times = [], []
            for e in (epochs, 2 * epochs):
                t0 = time.perf_counter()
                net, _ = cnn.fit_cifar(
                    pooling, p["seeds"][0], x, y, epochs=e, **{**cnn.cifar_recipe(p), "stem_stride": stride}
                )
                times.append((time.perf_counter() - t0) / e)
                hits.append(correct(net, xv, yv))
            gain = paired_bootstrap(hits[1][:, None], hits[0][:, None], seed=0, scale=100, what="validation images")
            rows.append(
                [
                    per_class,
                    stride,
                    pooling,
                    epochs,
                    f"{100 * hits[0].mean():.1f}",
                    2 * epochs,
                    f"{100 * hits[1].mean():.1f}",
                    f"{gain.value:+.1f} [{gain.lo:+.1f}, {gain.hi:+.1f}]",
                    f"{np.mean(times):.2f}",
                ]
            )
            print(rows[-1], flush=True)
    print(
        table(
            rows,
            [
                "train/class",
                "stem stride",
                "pooling",
                "E",
                "val % at E",
                "2E",
                "val % at 2E",
                "gain, 95% CI",
                "s / epoch",
            ],
            title="Entropy stage, CIFAR ResNet: distance to a plateau (validation split)",
        )
    )


if __name__ == "__main__":
    main()
