"""Pipeline integrity under faults (issue 15): no unchecked pickle is ever loaded, archives unpack all or nothing
and never outside their folder, a notebook run by hand writes only under scratch/, and the CLI's help names only
flags that exist. The issue's other tests sit beside their subjects: checksums recorded at first fetch and the
mirror's error in test_data.py (its HTTP server), parameter checks in test_config.py, ``poolrep run`` in
test_runner.py."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from poolrep import config, paths, stages
from poolrep.data import DataError, File, registry


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class Planted:
    """A pickle that, when loaded, writes ``marker``: what a planted file would do instead."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for folders and links), to compare before and after."""
    out = {}
    for p in sorted(folder.rglob("*")):
        out[str(p.relative_to(folder))] = p.read_bytes() if p.is_file() and not p.is_symlink() else None
    return out


# ---------- 1. pickles: weights and the official CIFAR-10 archive are verified before unpickling ----------


@pytest.fixture
def weights_fixture(isolated_data, tmp_path, monkeypatch):
    """A MobileNetV2 state dict as the registry's file in data/ (checksum of its own), and an empty torch hub."""
    import torch
    import torchvision.models as tvm

    data, _ = isolated_data
    torch.manual_seed(0)
    state = tvm.mobilenet_v2(weights=None).state_dict()
    rel = "weights/mobilenet_v2-b0353104.pth"  # torchvision's file name: load_backbone checks it
    path = data / rel
    path.parent.mkdir()
    torch.save(state, path)
    f = File(rel, None, sha256=sha256(path.read_bytes()))
    monkeypatch.setitem(registry.REGISTRY, "mobilenet_v2", registry.Dataset("mobilenet_v2", "fixture", (f,)))
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))
    return path, state, hub


def test_planted_pickle_in_torch_hub_never_runs(weights_fixture, tmp_path):
    import torch

    from poolrep.data.weights import load_backbone

    path, state, hub = weights_fixture
    marker = tmp_path / "pwned"
    plant = hub / "checkpoints" / path.name  # where torchvision's weights API loads from, unchecked
    plant.parent.mkdir(parents=True)
    payload = pickle.dumps(Planted(marker))
    plant.write_bytes(payload + b" " * (path.stat().st_size - len(payload)))  # same size as the real file
    assert plant.stat().st_size == path.stat().st_size
    planted_bytes = plant.read_bytes()
    try:
        model, weights = load_backbone("mobilenet_v2")
    finally:
        assert not marker.exists(), "the planted pickle ran"
    # the weights are those of the verified data/ file, and the hub folder was neither read nor changed
    got = model.state_dict()
    assert set(got) == set(state)
    assert all(torch.equal(got[k], state[k]) for k in state)
    assert weights.url.endswith(path.name) and not model.training
    assert plant.read_bytes() == planted_bytes and sorted(p.name for p in hub.rglob("*")) == ["checkpoints", path.name]


def test_weights_failing_their_checksum_are_refused_on_every_load(weights_fixture):
    from poolrep.data.weights import load_backbone

    path, _, _ = weights_fixture
    load_backbone("mobilenet_v2")  # verified and loaded
    # the same file changed in place with its size and mtime kept: a (path, size, mtime) memo would not notice
    st = path.stat()
    b = bytearray(path.read_bytes())
    b[len(b) // 2] ^= 0xFF
    path.write_bytes(bytes(b))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    with pytest.raises(DataError, match="does not match") as e:
        load_backbone("mobilenet_v2")
    assert str(path) in str(e.value)


def _pickle_archive(path: Path, obj) -> None:
    with tarfile.open(path, "w:gz") as tar:
        b = pickle.dumps(obj)
        ti = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        ti.size = len(b)
        tar.addfile(ti, io.BytesIO(b))


def test_read_official_unpickles_only_a_verified_archive(tmp_path):
    from poolrep.data import cifar

    marker = tmp_path / "pwned"
    arc = tmp_path / "cifar-10-python.tar.gz"
    _pickle_archive(arc, Planted(marker))
    # no `expected`: checked against the registry's official CIFAR-10 md5, which it does not match
    with pytest.raises(DataError, match="md5 .* does not match") as e:
        cifar.read_official(arc)
    assert str(arc) in str(e.value) and not marker.exists()
    # a caller's checksum that does not match, or an entry without any checksum, is refused the same way
    with pytest.raises(DataError, match="sha256 .* does not match"):
        cifar.read_official(arc, expected=File(arc.name, None, sha256="0" * 64))
    with pytest.raises(DataError, match="no checksum to verify it against"):
        cifar.read_official(arc, expected=File(arc.name, None))
    assert not marker.exists()
    # with the matching checksum it is opened (and this fixture then runs its pickle: it was trusted)
    with pytest.raises(DataError, match="missing data_batch_2"):
        cifar.read_official(arc, expected=File(arc.name, None, sha256=sha256(arc.read_bytes())))
    assert marker.read_text() == "code ran"


# ---------- 2. archives: only files and folders, inside the destination, all or nothing ----------


def make_tar(path: Path, members: list[tuple[str, str, object]], mode: str = "w") -> Path:
    """A tar archive of (name, kind, arg): file (arg: bytes), dir, sym / lnk (arg: link name), fifo, chr."""
    with tarfile.open(path, mode) as tar:
        for name, kind, arg in members:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                ti.size = len(arg)
                tar.addfile(ti, io.BytesIO(arg))
                continue
            ti.type = {
                "dir": tarfile.DIRTYPE,
                "sym": tarfile.SYMTYPE,
                "lnk": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
                "chr": tarfile.CHRTYPE,
            }[kind]
            ti.mode = 0o755 if kind == "dir" else 0o644
            if kind in ("sym", "lnk"):
                ti.linkname = arg
            tar.addfile(ti)
    return path


EVIL = {
    # s -> . ; s/s/esc -> ../.. (checked before s exists: looks inside) ; esc/evil.txt lands two folders up
    "symlink_chain": ([("s", "sym", "."), ("s/s/esc", "sym", "../.."), ("esc/evil.txt", "file", b"evil")], "s"),
    # a hardlink to a file outside (tar resolves its target from the archive root), then a write through it
    "hardlink_out": ([("d", "dir", None), ("d/h", "lnk", "../outside.txt"), ("d/h", "file", b"overwritten")], "d/h"),
    "absolute": ([("ABS", "file", b"evil")], "ABS"),
    "dotdot": ([("a", "dir", None), ("a/../../evil.txt", "file", b"evil")], "a/../../evil.txt"),
    "fifo": ([("f", "fifo", None)], "f"),
    "device": ([("c", "chr", None)], "c"),
}


@pytest.mark.parametrize("with_filter", [True, False], ids=["data_filter", "no_data_filter"])
@pytest.mark.parametrize("case", sorted(EVIL))
def test_escaping_archives_are_refused_and_leave_nothing(tmp_path, monkeypatch, case, with_filter):
    from poolrep.data.cub import unpack

    if not with_filter:  # Python < 3.11.4 (Debian's 3.11.2): no tarfile.data_filter
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    members, bad = EVIL[case]
    work = tmp_path / "x" / "y"
    work.mkdir(parents=True)
    (work / "outside.txt").write_text("secret")
    absolute = str(tmp_path / "abs_evil.txt")
    members = [(absolute if n == "ABS" else n, k, a) for n, k, a in members]
    bad = absolute if bad == "ABS" else bad
    archive = make_tar(tmp_path / f"{case}.tar", [("top", "dir", None), ("top/ok.txt", "file", b"ok"), *members])
    before = snapshot(tmp_path)
    with pytest.raises(DataError) as e:
        unpack(archive, work / "out")
    assert str(archive) in str(e.value) and repr(bad) in str(e.value)
    assert snapshot(tmp_path) == before  # nothing written anywhere: no destination, no partial folder, no escape


@pytest.mark.parametrize("with_filter", [True, False], ids=["data_filter", "no_data_filter"])
def test_good_archive_unpacks_files_and_folders(tmp_path, monkeypatch, with_filter):
    from poolrep.data.cub import unpack

    if not with_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    archive = make_tar(
        tmp_path / "ok.tar.gz",
        [
            ("CUB_200_2011", "dir", None),
            ("./CUB_200_2011/images.txt", "file", b"1 a/b.jpg\n"),
            ("CUB_200_2011/images/a/b.jpg", "file", b"jpeg"),
            ("CUB_200_2011/empty", "dir", None),
        ],
        mode="w:gz",
    )
    root = unpack(archive, tmp_path / "out")
    assert root == tmp_path / "out" / "CUB_200_2011"
    assert snapshot(tmp_path / "out") == {
        "CUB_200_2011": None,
        "CUB_200_2011/empty": None,
        "CUB_200_2011/images": None,
        "CUB_200_2011/images.txt": b"1 a/b.jpg\n",
        "CUB_200_2011/images/a": None,
        "CUB_200_2011/images/a/b.jpg": b"jpeg",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.tar.gz", "out"]  # no partial folder left


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _holidays_archives(data: Path, monkeypatch) -> list[Path]:
    """The three Holidays archives in data/holidays/, big enough (incompressible) that half of one is truncated."""
    rng = np.random.default_rng(0)
    (data / "holidays").mkdir()
    arcs = [
        make_tar(
            data / "holidays" / "jpg1.tar.gz",
            [("jpg", "dir", None)] + [(f"jpg/1000{i:02d}.jpg", "file", rng.bytes(4000)) for i in range(3)],
            mode="w:gz",
        ),
        make_tar(
            data / "holidays" / "jpg2.tar.gz",
            [("jpg", "dir", None)] + [(f"jpg/1001{i:02d}.jpg", "file", rng.bytes(4000)) for i in range(3)],
            mode="w:gz",
        ),
        make_tar(
            data / "holidays" / "eval_holidays.tgz",
            [
                (
                    "eval_holidays/holidays_images.dat",
                    "file",
                    b"100000.jpg\n100001.jpg\n100002.jpg\n100100.jpg\n100101.jpg\n100102.jpg\n",
                )
            ],
            mode="w:gz",
        ),
    ]
    files = tuple(File(f"holidays/{a.name}", None) for a in arcs)
    monkeypatch.setitem(registry.REGISTRY, "holidays", registry.Dataset("holidays", "fixture", files))
    return arcs


def test_holidays_unpack_is_all_or_nothing(isolated_data, monkeypatch):
    from poolrep.data import holidays

    data, cache = isolated_data
    arcs = _holidays_archives(data, monkeypatch)
    good = arcs[1].read_bytes()
    _truncate(arcs[1])
    with pytest.raises(DataError) as e:
        holidays.prepare()
    assert str(arcs[1]) in str(e.value) and "not a readable archive" in str(e.value)
    assert list(cache.iterdir()) == []  # no cache/holidays/ (which a later call would take as complete)
    # interrupted half-way (Ctrl-C, or killed): nothing either
    arcs[1].write_bytes(good)
    calls = []
    real = shutil.copyfileobj

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(shutil, "copyfileobj", interrupted)
    with pytest.raises(KeyboardInterrupt):
        holidays.prepare()
    assert list(cache.iterdir()) == []
    monkeypatch.setattr(shutil, "copyfileobj", real)
    dest = holidays.prepare()
    assert sorted(p.name for p in (dest / "jpg").iterdir()) == [f"100{g}0{i}.jpg" for g in (0, 1) for i in range(3)]
    assert (dest / "eval_holidays" / "holidays_images.dat").read_text().split()[3] == "100100.jpg"
    assert sorted(p.name for p in cache.iterdir()) == ["holidays"]


def test_oxford_truncated_archive_is_retried_not_taken_as_complete(isolated_data, monkeypatch):
    from poolrep.data import oxford

    data, cache = isolated_data
    rng = np.random.default_rng(1)
    (data / "oxford5k").mkdir()
    names = [f"all_souls_{i:06d}.jpg" for i in range(4)]
    images = make_tar(
        data / "oxford5k" / "oxbuild_images.tgz", [(n, "file", rng.bytes(5000)) for n in names], mode="w:gz"
    )
    gt = make_tar(
        data / "oxford5k" / "gt_files_170407.tgz",
        [("all_souls_1_query.txt", "file", b"oxc1_all_souls_000000 1 2 3 4\n")],
        mode="w:gz",
    )
    files = tuple(File(f"oxford5k/{a.name}", None) for a in (images, gt))
    monkeypatch.setitem(registry.REGISTRY, "oxford5k", registry.Dataset("oxford5k", "fixture", files))
    good = images.read_bytes()
    _truncate(images)
    with pytest.raises(DataError) as e:
        oxford.prepare()
    assert str(images) in str(e.value)
    assert not (cache / "oxford5k" / "images").exists()
    assert not [p for p in (cache / "oxford5k").iterdir() if p.name.startswith("images")]  # no partial folder
    images.write_bytes(good)  # fetched again: the next call unpacks it whole
    img, gtdir = oxford.prepare()
    assert sorted(p.name for p in img.iterdir()) == names
    assert (gtdir / "all_souls_1_query.txt").read_bytes() == b"oxc1_all_souls_000000 1 2 3 4\n"


# ---------- 3b. a notebook run by hand builds the backbone cache under scratch/ only ----------


@pytest.fixture
def tiny_backbone(tmp_path, monkeypatch):
    """paths.CACHE/RESULTS/SCRATCH in tmp, a smoke backbone block, and a tiny builder: 3 classes x 4 images of
    fake CIFAR-10 and a fake extractor (no real features); returns (cache, results, scratch, extract calls)."""
    import time

    import poolrep.features as features
    from poolrep.data.cifar import Split

    cache, results, scratch = tmp_path / "cache", tmp_path / "results", tmp_path / "scratch"
    for name, p in (("CACHE", cache), ("RESULTS", results), ("SCRATCH", scratch)):
        monkeypatch.setattr(paths, name, p)
    doc = {
        "profile": "smoke",
        "backbone": {
            "net": "mobilenet_v2",
            "input_px": 8,
            "train_per_class": 2,
            "test_per_class": 1,
            "batch_size": 4,
            "seed": 0,
            "extract_procs": 1,
        },
    }
    monkeypatch.setattr(config, "load", lambda path=None: doc)
    labels = np.repeat(np.arange(3), 4)
    monkeypatch.setattr(
        stages,
        "load_cifar10",
        lambda split: Split(np.zeros((12, 32, 32, 3), np.uint8), labels, ("a", "b", "c"), f"fixture {split}"),
    )
    monkeypatch.setattr(stages, "source_of", lambda name: "fixture")
    monkeypatch.setattr(stages, "git_state", lambda: {"commit": "test"})
    monkeypatch.setattr(features, "extractor", lambda net, layers: (None, None, None))
    calls = []

    def fake_extract(fx, mean, std, images, px, batch, device, desc=""):
        calls.append(len(images))
        time.sleep(0.01)  # the stage divides by the extraction's (rounded) duration
        return {
            layer: np.full((len(images), 2, 1, 1), v, np.float16)
            for layer, v in (("features.17", 1), ("features.18", 2))
        }

    monkeypatch.setattr(features, "extract", fake_extract)
    return cache, results, scratch, calls


def test_hand_run_builds_backbone_cache_under_scratch_only(tiny_backbone):
    cache, results, scratch, calls = tiny_backbone
    f = stages.load_backbone_features()
    assert calls == [6, 3]  # 2 + 1 per class, built once
    assert f["train_maps"].shape == (6, 2, 1, 1) and float(f["train_maps"].max()) == 2.0
    assert f["train_labels"].tolist() == [0, 0, 1, 1, 2, 2] and str(f["net"]) == "mobilenet_v2"
    assert (scratch / "cache" / stages.BACKBONE_FILE).exists()
    assert json.loads((scratch / "backbone" / "metrics.json").read_text())["images"] == 9
    assert json.loads((scratch / "backbone" / "run.json").read_text())["params"]["train_per_class"] == 2
    assert not cache.exists() and not results.exists()  # nothing in cache/ or the git-tracked results/
    # the second call reads scratch/cache/
    assert stages.load_backbone_features()["test_labels"].tolist() == [0, 1, 2] and calls == [6, 3]
    # the pipeline's file, when present, wins over scratch/
    cache.mkdir()
    np.savez(cache / stages.BACKBONE_FILE, train_labels=np.array([7]))
    assert stages.load_backbone_features()["train_labels"].tolist() == [7] and calls == [6, 3]


def test_hand_run_rebuilds_scratch_cache_for_another_profile(tiny_backbone):
    cache, results, scratch, calls = tiny_backbone
    config.load()["backbone"]["paper"] = {"train_per_class": 3}  # the fixture's doc: a bigger profile
    stages.load_backbone_features("smoke")
    assert calls == [6, 3]
    stages.load_backbone_features("smoke")  # same profile: read, not rebuilt
    assert calls == [6, 3]
    f = stages.load_backbone_features("paper")  # another profile: rebuilt with its sizes
    assert calls == [6, 3, 9, 3] and f["train_labels"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert str(f["profile"]) == "paper"


def test_backbone_stage_still_writes_cache_and_results(tiny_backbone):
    cache, results, scratch, calls = tiny_backbone
    stages.backbone()
    assert calls == [6, 3]
    z = np.load(cache / stages.BACKBONE_FILE)
    assert z["train_maps"].shape == (6, 2, 1, 1) and z["test_index"].shape == (3,)
    assert json.loads((results / "backbone" / "metrics.json").read_text())["images"] == 9
    assert (results / "backbone" / "run.json").exists() and not scratch.exists()


# ---------- 3g. the help text names only flags and commands that exist ----------


def test_every_flag_and_command_in_the_cli_help_exists():
    from poolrep import cli

    ap = cli.parser()
    subs = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction)).choices
    options = {o for p in (ap, *subs.values()) for a in p._actions for o in a.option_strings}
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", cli.__doc__))
    commands = set(re.findall(r"^\s*poolrep (\w+)", cli.__doc__, re.M))
    assert "--all-offline" in flags and "--profile" in flags
    assert flags <= options, f"named in the help but not accepted: {sorted(flags - options)}"
    assert commands == set(subs), (commands, set(subs))
