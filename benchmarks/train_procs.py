"""How many of the entropy stage's CIFAR ResNets per second: one process with all torch threads, or ``poolrep.workers``'
spawned 1-thread processes? The evidence behind ``params.yaml`` ``entropy.train_procs``.

The same jobs each way (``--jobs`` ResNets of GAP and entropy alternately, seeds 0, 1, ..., ``--epochs`` epochs each),
the stage's recipe and training subset from params.yaml (``cpu`` profile), test accuracy after every
``eval_every``-th epoch as in the stage. Prints the wall time per model-epoch and its ratio to the 1-process row
(interleaved repeats, best of each: the machine's load moves absolute times, the printed ``machine:`` line gives it).

    python benchmarks/train_procs.py                    # 4 jobs x 4 epochs, procs 1 and 2, best of 2 (~1.5 min)
    python benchmarks/train_procs.py --procs 1 2 4 --repeats 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from _common import machine, table  # noqa: E402

from poolrep import config, workers  # noqa: E402
from poolrep.data.cifar import load_cifar10  # noqa: E402
from poolrep.papers import entropy as cnn  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    p = config.resolve("entropy", profile="cpu")
    tr = load_cifar10("train").subset(p["cifar_train_per_class"], p["seed"])
    te = load_cifar10("test").subset(p["cifar_test_per_class"], p["seed"])
    data = (
        cnn.images_to_tensor(tr.images),
        torch.from_numpy(tr.labels),
        cnn.images_to_tensor(te.images),
        torch.from_numpy(te.labels),
    )
    recipe = dict(cnn.cifar_recipe(p), device="cpu", eval_every=p["eval_every"])
    jobs = [(("gap", "entropy_linear")[i % 2], i // 2, args.epochs) for i in range(args.jobs)]
    print("machine:", machine())
    print(f"{len(jobs)} jobs x {args.epochs} epochs of {len(tr)} images, recipe {recipe}")
    best = {n: float("inf") for n in args.procs}
    for _ in range(args.repeats):
        for n in args.procs:
            t0 = time.perf_counter()
            workers.run(cnn.fit_cifar_job, jobs, n, init=cnn.cifar_job_data, init_args=(*data, recipe))
            best[n] = min(best[n], (time.perf_counter() - t0) / (len(jobs) * args.epochs))
    ref = best[args.procs[0]]
    rows = [[n, torch.get_num_threads() if n == 1 else 1, f"{best[n]:.3f}", f"{ref / best[n]:.2f}"] for n in args.procs]
    print(
        table(
            rows,
            ["processes", "torch threads each", "s / model-epoch (best)", f"models/s vs {args.procs[0]} process"],
            title="Entropy stage, CIFAR ResNets: processes x threads (spawn start-up included)",
        )
    )


if __name__ == "__main__":
    main()
