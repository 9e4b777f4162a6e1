"""Feature-extraction throughput (images/s) of ``poolrep.features.extract`` next to the bare backbone forward.

Target (issue 8): extraction at >= 80 % of the bare forward on the same machine, measured in the same run.

- bare forward: torchvision MobileNetV2 ``features`` (ImageNet weights from the mirror) on a pre-made, already
  resized and normalised float tensor, in ``torch.inference_mode``, batch by batch: the network alone.
- extraction: ``poolrep.features.extract`` on the uint8 images (what the stages call): it adds the uint8 -> float
  conversion, the antialiased resize from 32 to ``size`` px, the normalisation, the hook of
  ``create_feature_extractor`` and the float16 copy back to numpy.
- Real CIFAR-10 test images (``poolrep.data.cifar.load_cifar10``), the backbone stage's size and batch from
  params.yaml (cpu profile: 192 px, batch 64). Repeats are interleaved and the best of each is compared (other
  processes share the cores); medians are printed too. Both paths' last-conv maps are checked to agree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import best_and_median, machine, table, timed, verdict  # noqa: E402

TARGET = 0.80


def main(argv=None) -> int:
    from poolrep import config
    from poolrep.data.cifar import load_cifar10
    from poolrep.data.weights import load_backbone
    from poolrep.device import pick
    from poolrep.features import LAST_CONV, extract, extractor, to_input

    p = config.resolve("backbone", profile="cpu")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=256, help="images per repeat (default 256)")
    ap.add_argument("--size", type=int, default=p["size"], help=f"input side (default: backbone's {p['size']})")
    ap.add_argument("--batch", type=int, default=p["batch_size"])
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args(argv)
    net_name = p["net"]
    if net_name != "mobilenet_v2":
        print(f"note: params.yaml backbone.net is {net_name}; this benchmark measures mobilenet_v2")
        net_name = "mobilenet_v2"

    dev = pick("auto")
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    print(f"machine: {machine()}")
    split = load_cifar10("test")
    images = split.images[: a.n]
    layer = LAST_CONV[net_name]
    fx, mean, std = extractor(net_name, [layer])
    model, _ = load_backbone(net_name)
    bare = model.features.eval().to(dev)
    x = to_input(images, a.size, mean, std).to(dev)  # pre-made: resized + normalised once, outside the timing

    @torch.inference_mode()
    def forward():
        return torch.cat([bare(x[s : s + a.batch]) for s in range(0, len(x), a.batch)])

    def extraction():
        return extract(fx, mean, std, images, a.size, a.batch, dev, desc="bench")[layer]

    # warm-up, and the check that both paths compute the same maps
    ref = forward()[: a.batch].float().cpu().numpy()
    got = extract(fx, mean, std, images[: a.batch], a.size, a.batch, dev, desc="bench")[layer].astype(np.float32)
    err = float(np.abs(ref - got).max() / max(np.abs(ref).max(), 1e-12))
    assert err < 1e-2, f"extract() and the bare forward disagree: max relative error {err:.3g}"

    fw, ex = [], []
    for _ in range(a.repeats):
        fw.append(a.n / timed(forward, sync))
        ex.append(a.n / timed(extraction, sync))
    fw_best, fw_med = best_and_median(fw)
    ex_best, ex_med = best_and_median(ex)
    ratio = ex_best / fw_best
    rows = [
        [
            f"bare forward: mobilenet_v2.features on a pre-made {a.size}px tensor",
            f"{fw_best:.1f}",
            f"{fw_med:.1f}",
            "100%",
            "reference",
        ],
        [
            f"poolrep.features.extract ({layer}) from uint8 CIFAR-10",
            f"{ex_best:.1f}",
            f"{ex_med:.1f}",
            f"{ratio:.0%}",
            verdict(ratio, TARGET),
        ],
    ]
    print(
        table(
            rows,
            ["what", "images/s (best)", "images/s (median)", "vs bare (best)", "target"],
            title=f"Feature extraction vs bare forward ({a.n} real CIFAR-10 test images, batch {a.batch}, "
            f"{a.repeats} interleaved repeats, {dev}; maps agree to {err:.1e} relative)",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
