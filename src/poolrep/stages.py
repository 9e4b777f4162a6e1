"""The shared (non-notebook) DVC stages: ``prepare`` and ``backbone``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import config, io, paths
from .data import source_of
from .data.cifar import FULL_SIZE, balanced_indices, load_cifar10
from .device import RunLog, git_state

BACKBONE_FILE = "backbone_cifar10.npz"
# The keys of params.yaml's ``backbone`` block, exactly (``config.validate`` refuses any other: no notebook
# parameters cell says what this stage accepts).
BACKBONE_KEYS = ("net", "input_px", "train_per_class", "test_per_class", "batch_size", "seed", "extract_procs")


def prepare() -> None:
    """Decode CIFAR-10 once (cache/cifar10.npz) and record what was decoded (cache/prepare.json)."""
    run = RunLog("prepare", seed=0, profile=config.load().get("profile", "cpu")).start()
    tr, te = load_cifar10("train"), load_cifar10("test")
    run.data("cifar10", source=tr.source, train=len(tr), test=len(te), full=FULL_SIZE)
    io.save_metrics(
        paths.RESULTS / "prepare",
        {"cifar10": {"train": len(tr), "test": len(te), "source": tr.source, "classes": list(tr.classes)}},
        {**run.finish(), "git": git_state()},
    )


def load_backbone_features(profile: str | None = None) -> dict[str, np.ndarray]:
    """The ``backbone`` stage's output: ``{train,test}_{maps,prev_maps,labels,index}`` (maps: the last conv block,
    float16 N x C x h x w; prev_maps: the block before it, for cross-layer pooling; index: into the full CIFAR-10
    split, for showing the images), plus ``net``, ``layer``, ``prev_layer``, ``input_px``.

    In the pipeline the ``backbone`` stage makes ``cache/backbone_cifar10.npz`` first. Without it, a notebook run
    by hand or by nbval uses ``scratch/cache/backbone_cifar10.npz``, building it there on demand with params.yaml's
    ``profile`` (a notebook passes its own, ``smoke`` in its parameters cell; default: params.yaml's), as
    ``load_cifar10`` decodes on demand: a hand run writes under ``scratch/`` only, never into ``cache/`` or the
    git-tracked ``results/``. A scratch cache built for another profile is rebuilt.
    """
    path = paths.CACHE / BACKBONE_FILE
    if not path.exists():
        path = paths.SCRATCH / "cache" / BACKBONE_FILE
        want = config.resolve("backbone", profile=profile)["profile"]
        if not path.exists() or _scratch_profile() != want:
            print(
                f"{paths.CACHE / BACKBONE_FILE} missing: building {path} now for profile {want} "
                "(the backbone stage's work)"
            )
            backbone(profile=want, hand=True)
    z = np.load(path, allow_pickle=False)
    return {k: z[k] for k in z.files}


def _scratch_profile() -> str | None:
    """The profile the scratch backbone cache was built with, None if unknown (an older or unreadable file)."""
    try:
        with np.load(paths.SCRATCH / "cache" / BACKBONE_FILE, allow_pickle=False) as z:
            return str(z["profile"]) if "profile" in z.files else None
    except (OSError, ValueError):
        return None


def backbone_rows(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Class-balanced rows of the cached backbone maps (``balanced_indices``); a clear error naming the fix when the
    cache holds fewer images per class than asked for."""
    have = int(np.bincount(labels).min())
    if per_class > have:
        raise ValueError(
            f"the backbone cache holds {have} images per class, {per_class} asked for: "
            f"rerun the backbone stage with a larger profile or ask for fewer per class"
        )
    return balanced_indices(labels, per_class, seed)


def backbone(profile: str | None = None, hand: bool = False) -> None:
    """ImageNet-pretrained last-conv maps of a class-balanced CIFAR-10 subset, shared by pyramid, entropy, zoo.

    ``extract_procs`` > 1 (``"auto"``: one per visible GPU) re-runs this stage as that many torchrun workers,
    each extracting a shard of the images (see :mod:`poolrep.distributed`); rank 0 writes the cache.
    ``hand``: the on-demand build of a notebook run by hand, in this process, into ``scratch/cache/`` with its
    metrics and run log in ``scratch/backbone/`` (the stage itself writes ``cache/`` and ``results/backbone/``)."""
    from .distributed import group, in_worker, launch, procs

    p = config.resolve("backbone", profile=profile)
    if hand:
        _backbone(p, 0, 1, paths.SCRATCH / "cache" / BACKBONE_FILE, paths.SCRATCH / "backbone")
        return
    n = procs(p["extract_procs"])
    if n > 1 and not in_worker():
        rc = launch(["backbone", *(["--profile", profile] if profile else [])], n)
        if rc != 0:
            raise RuntimeError(f"backbone: the {n} torchrun workers failed (exit {rc}); their output is above")
        return
    with group() as (rank, world):
        _backbone(p, rank, world, paths.CACHE / BACKBONE_FILE, paths.RESULTS / "backbone")


def _backbone(p: dict, rank: int, world: int, cache_file: Path, out_dir: Path) -> None:
    """Extract and write the maps to ``cache_file``, the metrics and run log to ``out_dir`` (rank 0)."""
    from .features import LAST_CONV, PREV_CONV, extract, extractor

    run = RunLog("backbone", seed=p["seed"], profile=p["profile"]).start()
    tr_all, te_all = load_cifar10("train"), load_cifar10("test")
    idx = {
        "train": balanced_indices(tr_all.labels, p["train_per_class"], p["seed"]),
        "test": balanced_indices(te_all.labels, p["test_per_class"], p["seed"]),
    }
    tr, te = tr_all.subset(p["train_per_class"], p["seed"]), te_all.subset(p["test_per_class"], p["seed"])
    run.data("cifar10", source=tr.source, train=len(tr), test=len(te), full=FULL_SIZE)
    run.data(p["net"], source=source_of(p["net"]), note="ImageNet weights via torchvision's weights API")
    layer, prev = LAST_CONV[p["net"]], PREV_CONV[p["net"]]
    fx, mean, std = extractor(p["net"], [prev, layer])
    out = {}
    with run.timed("extract"):
        for name, split in (("train", tr), ("test", te)):
            maps = extract(
                fx, mean, std, split.images, p["input_px"], p["batch_size"], run.torch_device, desc=f"{p['net']} {name}"
            )
            if rank == 0:
                out[f"{name}_maps"], out[f"{name}_prev_maps"] = maps[layer], maps[prev]
                out[f"{name}_labels"], out[f"{name}_index"] = split.labels, idx[name]
    if rank != 0:  # the other workers only extract their shards; rank 0 writes
        return
    io.save_npz(
        cache_file,
        **out,
        net=np.array(p["net"]),
        layer=np.array(layer),
        prev_layer=np.array(prev),
        input_px=np.array(p["input_px"]),
        profile=np.array(p["profile"]),
    )
    info = run.finish()
    n = len(tr) + len(te)
    info["images_per_s"] = n / info["timings_s"]["extract"]  # a timing: run.json, not metrics.json
    io.save_metrics(
        out_dir,
        {
            "net": p["net"],
            "layer": layer,
            "input_px": p["input_px"],
            "map_shape": list(out["train_maps"].shape[1:]),
            "images": n,
            "processes": world,
        },
        {**info, "params": p, "git": git_state()},
    )
