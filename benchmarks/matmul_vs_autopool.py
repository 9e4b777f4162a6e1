"""Auto-pooling training throughput (achieved GFLOP/s) next to a plain matrix product, measured in the same run.

Target (issue 8): auto-pooling training at >= 50 % of the matrix-product rate on the same machine.

- matmul: ``A @ B`` with A, B float32 ``n x n`` (2 n^3 flops), plus the same rate at the shape auto-pooling's
  gradient uses (``B x D`` times ``D x K``), on the device ``poolrep.device.pick()`` chooses.
- auto-pooling: ``poolrep.pooling.autopool.train_autopool`` (projected Adam on the analytic gradient, 22 B K D
  flops per batch of B pairs, counted by the module itself; its ``TrainLog.gflops`` excludes the time spent making
  features). Inputs are real CIFAR-10 test images (pixels / 255, D = 3072, non-negative), paired with the same
  image shifted by one pixel (a stand-in for "temporally adjacent"; the rate of dense products does not depend
  on the values). K and the batch sizes are options; defaults are the paper's K = 400 and batches of 256 and
  1024 pairs (the rate depends strongly on the batch: the per-step Adam update and projection over the K x D
  matrix are memory-bound and are amortised over more pairs). 4096 pairs per repeat. The trainer reuses its
  K x D gradient and 5B x D work buffers and steps with torch's fused Adam: fresh K x D temporaries each step
  (page faults) had held the stage's setting at 33 % of the matmul rate.
- the stage's own setting, read from params.yaml (``autopool`` block, cpu profile): K = ``ks[0]``, B =
  ``batch_pairs``, D = ``hidden * (33 - patch)^2`` (the conv features' size, 72,900 for the paper's 100 units);
  the inputs are the same real pixels tiled up to D (only the shapes matter for the rate), ``--stage-steps``
  steps per repeat.
- Repeats are interleaved (matmul, auto-pooling, matmul, ...) and the best of each is compared, because other
  processes share the cores; medians are printed too.

If ``poolrep.pooling.autopool`` is not importable the auto-pooling row says "not available".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import best_and_median, machine, table, timed, verdict  # noqa: E402

TARGET = 0.50


def _sync(dev: torch.device):
    return (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)


def matmul_rate(m: int, k: int, n: int, dev: torch.device, iters: int) -> float:
    """GFLOP/s of ``(m x k) @ (k x n)`` float32, ``iters`` products timed together after one warm-up."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(m, k, generator=g).to(dev)
    b = torch.rand(k, n, generator=g).to(dev)
    a @ b  # warm-up
    t = timed(lambda: [a @ b for _ in range(iters)], _sync(dev))
    return 2.0 * m * k * n * iters / t / 1e9


def autopool_hook():
    """The auto-pooling trainer, or (None, why) when the module is not there yet."""
    try:
        from poolrep.pooling import autopool
    except ImportError as e:  # the module is optional for this script
        return None, f"not available (poolrep.pooling.autopool: {e})"
    for name in ("train_autopool", "init_P"):
        if not hasattr(autopool, name):
            return None, f"not available (poolrep.pooling.autopool has no {name})"
    return autopool, ""


def pairs(n: int, D: int = 3072) -> tuple[torch.Tensor, torch.Tensor]:
    """Real CIFAR-10 test images as non-negative vectors (3072 pixels / 255, tiled up to ``D`` when larger),
    and their 1-pixel horizontal shifts."""
    from poolrep.data.cifar import load_cifar10

    imgs = load_cifar10("test").images[:n].astype(np.float32) / 255.0  # N x 32 x 32 x 3
    shifted = np.roll(imgs, 1, axis=2)
    xa, xb = imgs.reshape(n, -1), shifted.reshape(n, -1)
    if D != xa.shape[1]:
        reps = -(-D // xa.shape[1])
        xa, xb = np.tile(xa, (1, reps))[:, :D], np.tile(xb, (1, reps))[:, :D]
    return torch.from_numpy(np.ascontiguousarray(xa)), torch.from_numpy(np.ascontiguousarray(xb))


def stage_setting() -> tuple[int, int, int] | None:
    """(K, B, D) of the autopool stage's cpu profile, or None when params.yaml does not say."""
    from poolrep import config

    try:
        p = config.resolve("autopool", profile="cpu")
        return int(p["ks"][0]), int(p["batch_pairs"]), int(p["hidden"]) * (33 - int(p["patch"])) ** 2
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def autopool_rate(ap, xa: torch.Tensor, xb: torch.Tensor, K: int, batch: int, dev: torch.device) -> float:
    D = xa.shape[1]
    xa, xb = xa.to(dev), xb.to(dev)
    P0 = ap.init_P(K, D, torch.cat([xa[:batch], xb[:batch]]), seed=0, device=dev)

    def batches(_epoch):
        for s in range(0, len(xa) - batch + 1, batch):
            yield xa[s : s + batch], xb[s : s + batch]

    _, log = ap.train_autopool(
        batches, K, D, lam=1.0, epochs=1, lr=1e-3, optimizer="adam", seed=0, device=dev, P0=P0, progress=False
    )
    return log.gflops


def main(argv=None) -> int:
    ap_ = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap_.add_argument("--n", type=int, default=1024, help="side of the square matmul (default 1024)")
    ap_.add_argument("--K", type=int, default=400, help="pooled units (default: the paper's 400)")
    ap_.add_argument("--batch", type=int, nargs="+", default=[256, 1024], help="pairs per gradient step")
    ap_.add_argument("--pairs", type=int, default=4096, help="pairs per auto-pooling repeat (real CIFAR-10 test)")
    ap_.add_argument("--stage-steps", type=int, default=8, help="steps per repeat at the stage's setting")
    ap_.add_argument("--repeats", type=int, default=3)
    a = ap_.parse_args(argv)

    from poolrep.device import pick

    dev = pick("auto")
    torch.manual_seed(0)
    print(f"machine: {machine()}")
    ap, why = autopool_hook()
    xa = xb = None
    if ap is not None:
        xa, xb = pairs(max(a.pairs, max(a.batch)))
        autopool_rate(ap, xa[: 2 * a.batch[0]], xb[: 2 * a.batch[0]], a.K, a.batch[0], dev)  # warm-up
    D = 3072
    mm: list[float] = []
    mm_shape: dict[int, list[float]] = {b: [] for b in a.batch}
    apr: dict[int, list[float]] = {b: [] for b in a.batch}
    for _ in range(a.repeats):
        mm.append(matmul_rate(a.n, a.n, a.n, dev, iters=max(2, int(4e9 / (2 * a.n**3)))))
        for b in a.batch:
            mm_shape[b].append(matmul_rate(b, D, a.K, dev, iters=max(2, int(2e9 / (2 * b * D * a.K)))))
            if ap is not None:
                apr[b].append(autopool_rate(ap, xa, xb, a.K, b, dev))
    setting = stage_setting() if ap is not None else None
    st_rates: list[float] = []
    st_mm: list[float] = []
    if setting is not None:
        sK, sB, sD = setting
        del xa, xb
        ya, yb = pairs(sB * a.stage_steps, sD)
        autopool_rate(ap, ya[: 2 * sB], yb[: 2 * sB], sK, sB, dev)  # warm-up
        for _ in range(a.repeats):
            mm.append(matmul_rate(a.n, a.n, a.n, dev, iters=max(2, int(4e9 / (2 * a.n**3)))))
            st_mm.append(matmul_rate(sB, sD, sK, dev, iters=max(2, int(2e9 / (2 * sB * sD * sK)))))
            st_rates.append(autopool_rate(ap, ya, yb, sK, sB, dev))
        del ya, yb
    mm_best, mm_med = best_and_median(mm)
    rows = [[f"matmul {a.n}x{a.n} @ {a.n}x{a.n} (float32)", f"{mm_best:.1f}", f"{mm_med:.1f}", "100%", "reference"]]
    for b in a.batch:
        sh_best, sh_med = best_and_median(mm_shape[b])
        rows.append(
            [
                f"matmul {b}x{D} @ {D}x{a.K} (auto-pooling's shape)",
                f"{sh_best:.1f}",
                f"{sh_med:.1f}",
                f"{sh_best / mm_best:.0%}",
                "for context",
            ]
        )
    for b in a.batch:
        if ap is None:
            rows.append([f"auto-pooling training (B={b})", why, "", "", "n/a"])
            continue
        ap_best, ap_med = best_and_median(apr[b])
        ratio = ap_best / mm_best
        rows.append(
            [
                f"auto-pooling training (K={a.K}, D={D}, B={b}, {max(a.pairs, max(a.batch)) // b} steps, Adam)",
                f"{ap_best:.1f}",
                f"{ap_med:.1f}",
                f"{ratio:.0%}",
                verdict(ratio, TARGET),
            ]
        )
    if setting is not None:
        sK, sB, sD = setting
        b_, m_ = best_and_median(st_mm)
        rows.append(
            [
                f"matmul {sB}x{sD} @ {sD}x{sK} (the stage's shape)",
                f"{b_:.1f}",
                f"{m_:.1f}",
                f"{b_ / mm_best:.0%}",
                "for context",
            ]
        )
        b_, m_ = best_and_median(st_rates)
        rows.append(
            [
                f"auto-pooling training, the stage's cpu setting (K={sK}, D={sD}, B={sB}, {a.stage_steps} steps, Adam)",
                f"{b_:.1f}",
                f"{m_:.1f}",
                f"{b_ / mm_best:.0%}",
                verdict(b_ / mm_best, TARGET),
            ]
        )
    elif ap is not None:
        rows.append(
            [
                "auto-pooling training, the stage's cpu setting",
                "not available (params.yaml autopool lacks ks/batch_pairs/hidden/patch)",
                "",
                "",
                "n/a",
            ]
        )
    print(
        table(
            rows,
            ["what", "GFLOP/s (best)", "GFLOP/s (median)", "vs matmul (best)", "target"],
            title=f"Auto-pooling vs matrix product ({a.repeats} interleaved repeats, {dev})",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
