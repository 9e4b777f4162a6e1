"""The data layer on small fixtures made here: both CIFAR-10 layouts, corrupt and missing files, the mirror,
downloads from a local HTTP server and a file URL, checksums, videos and the pairs set."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from poolrep import paths
from poolrep.data import DataError, File, cifar, ensure_file, fetch, registry, video
from poolrep.data.fetch import MIRROR_ENV, verify

# ---------- fixtures: tiny archives in the official layouts ----------


def make_official_archive(path: Path, n_per_batch: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A cifar-10-python.tar.gz with the official member names and pickle layout (rows of 3072 bytes, CHW)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    with tarfile.open(path, "w:gz") as tar:

        def add(name, obj):
            b = pickle.dumps(obj)
            ti = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            ti.size = len(b)
            tar.addfile(ti, io.BytesIO(b))

        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            x = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
            y = rng.integers(0, 10, n_per_batch).tolist()
            add(name, {b"data": x, b"labels": y})
            xs.append(x)
            ys.append(y)
        add("batches.meta", {b"label_names": [c.encode() for c in cifar.CLASSES]})
    return np.concatenate(xs), np.concatenate(ys)


def make_folder_tree(root: Path, classes=("cat", "dog"), n=3, ext=".png", seed=0) -> dict:
    rng = np.random.default_rng(seed)
    imgs = {}
    for split in ("train", "test"):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(a).save(d / f"{i:04d}{ext}")
                imgs[(split, c, i)] = a
    return imgs


def verified(path: Path) -> File:
    """A registry entry for a fixture archive, with its checksum (``read_official`` unpickles only verified files)."""
    return File(relpath=path.name, url=None, sha256=hashlib.sha256(path.read_bytes()).hexdigest())


# ---------- CIFAR-10, official layout ----------


def test_official_archive_decodes_rows_as_chw(tmp_path):
    arc = tmp_path / "cifar-10-python.tar.gz"
    x, y = make_official_archive(arc)
    splits = cifar.read_official(arc, expected=verified(arc))
    tr, te = splits["train"], splits["test"]
    assert tr.images.shape == (30, 32, 32, 3) and te.images.shape == (6, 32, 32, 3)
    assert tr.images.dtype == np.uint8 and tr.labels.dtype == np.int64
    # pixel (r=1, c=2) of channel g of image 0 is byte 1024 + 1*32 + 2 of its row
    assert tr.images[0, 1, 2, 1] == x[0, 1024 + 32 + 2]
    np.testing.assert_array_equal(tr.labels, y[:30])
    np.testing.assert_array_equal(te.labels, y[30:])
    assert tr.classes == cifar.CLASSES


def test_official_archive_corrupt_and_incomplete(tmp_path):
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(b"not a tarball at all")
    with pytest.raises(DataError, match="not a readable CIFAR-10"):
        cifar.read_official(bad, expected=verified(bad))
    part = tmp_path / "part.tar.gz"
    with tarfile.open(part, "w:gz") as tar:
        b = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]})
        ti = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        ti.size = len(b)
        tar.addfile(ti, io.BytesIO(b))
    with pytest.raises(DataError, match="missing data_batch_2"):
        cifar.read_official(part, expected=verified(part))


# ---------- CIFAR-10, image-folder layout (directory and tar) ----------


@pytest.mark.parametrize("as_tar", [False, True])
def test_folder_tree_directory_and_tar(tmp_path, as_tar):
    root = tmp_path / "cifar10-jpeg"
    imgs = make_folder_tree(root)
    src = root
    if as_tar:
        src = tmp_path / "tree.tar.gz"
        with tarfile.open(src, "w:gz") as tar:
            tar.add(root, arcname="cifar10-jpeg")
    splits = cifar.read_folder(src)
    tr = splits["train"]
    assert tr.classes == ("cat", "dog")
    assert len(tr) == 6 and list(tr.labels) == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(tr.images[4], imgs[("train", "dog", 1)])  # PNG is lossless


def test_folder_tree_errors(tmp_path):
    root = tmp_path / "t"
    make_folder_tree(root)
    Image.new("RGB", (40, 32)).save(root / "train" / "cat" / "9999.png")
    with pytest.raises(DataError, match="expected 32x32"):
        cifar.read_folder(root)
    (tmp_path / "e" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no images under train"):
        cifar.read_folder(tmp_path / "e")
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match="not a readable image-folder archive"):
        cifar.read_folder(junk)


def test_load_cifar10_caches_first_decode(isolated_data, monkeypatch):
    data, cache = isolated_data
    arc = data / "cifar-10-python.tar.gz"
    make_official_archive(arc)
    f = File("cifar-10-python.tar.gz", None, md5=hashlib.md5(arc.read_bytes()).hexdigest())
    monkeypatch.setitem(registry.REGISTRY, "cifar10", registry.Dataset("cifar10", "fixture", (f,)))
    tr = cifar.load_cifar10("train")
    assert (cache / cifar.CACHE_FILE).exists() and tr.source.startswith("official")
    calls = []
    monkeypatch.setattr(cifar, "read_official", lambda p: calls.append(p))
    tr2 = cifar.load_cifar10("train")  # from the cache: no second decode
    assert calls == [] and np.array_equal(tr.images, tr2.images)
    with pytest.raises(ValueError, match="split must be"):
        cifar.load_cifar10("val")


def test_balanced_subset():
    labels = np.repeat(np.arange(3), 10)
    idx = cifar.balanced_indices(labels, 4, seed=1)
    assert np.bincount(labels[idx]).tolist() == [4, 4, 4]
    assert np.array_equal(idx, cifar.balanced_indices(labels, 4, seed=1))
    with pytest.raises(ValueError, match="only 10 exist"):
        cifar.balanced_indices(labels, 11)


# ---------- fetch: data/, mirror, download, checksums, errors ----------


def _file_for(content: bytes, relpath: str, url: str | None = None) -> File:
    return File(relpath, url, sha256=hashlib.sha256(content).hexdigest())


def test_missing_everywhere_names_file_url_and_setting(isolated_data):
    f = _file_for(b"x", "sub/thing.bin", url=None)
    with pytest.raises(DataError) as e:
        ensure_file(f)
    msg = str(e.value)
    assert "sub/thing.bin" in msg and MIRROR_ENV in msg and "no public download URL" in msg


def test_mirror_copy_is_verified(isolated_data, tmp_path, monkeypatch):
    data, _ = isolated_data
    mirror = tmp_path / "mirror"
    (mirror / "sub").mkdir(parents=True)
    (mirror / "sub" / "a.bin").write_bytes(b"hello")
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    good = _file_for(b"hello", "sub/a.bin")
    assert ensure_file(good).read_bytes() == b"hello"
    (mirror / "sub" / "b.bin").write_bytes(b"tampered")
    bad = File("sub/b.bin", None, sha256=hashlib.sha256(b"original").hexdigest())
    with pytest.raises(DataError, match="does not match"):
        ensure_file(bad)
    assert not (data / "sub" / "b.bin").exists()
    assert list((data / "sub").glob("*partial*")) == []  # nothing half-written


def test_corrupt_file_in_data_is_reported(isolated_data):
    data, _ = isolated_data
    (data / "c.bin").write_bytes(b"truncat")
    with pytest.raises(DataError, match="Delete it and run `poolrep fetch` again"):
        ensure_file(_file_for(b"truncated", "c.bin"))


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


def test_download_from_local_http_server(isolated_data, http_server):
    data, _ = isolated_data
    root, base = http_server
    (root / "w.bin").write_bytes(b"weights" * 1000)
    f = _file_for(b"weights" * 1000, "weights/w.bin", url=base + "w.bin")
    assert ensure_file(f).read_bytes() == b"weights" * 1000
    # a 404 is one clear error naming the URL, and leaves nothing behind
    g = _file_for(b"zzz", "weights/missing.bin", url=base + "missing.bin")
    with pytest.raises(DataError, match="download failed") as e:
        ensure_file(g)
    assert base + "missing.bin" in str(e.value)
    assert sorted(p.name for p in (data / "weights").iterdir()) == ["w.bin"]


def test_download_checksum_mismatch_leaves_no_file(isolated_data, http_server):
    data, _ = isolated_data
    root, base = http_server
    (root / "x.bin").write_bytes(b"served")
    f = File("x.bin", base + "x.bin", md5=hashlib.md5(b"expected").hexdigest())
    with pytest.raises(DataError, match="md5"):
        ensure_file(f)
    assert list(data.iterdir()) == []


def test_download_from_file_url(isolated_data, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    f = _file_for(b"abc", "from_file.bin", url=src.as_uri())
    assert ensure_file(f).read_bytes() == b"abc"


def test_first_fetch_records_a_checksum_that_later_copies_must_match(isolated_data, http_server, tmp_path, monkeypatch):
    data, _ = isolated_data
    www, base = http_server
    (www / "jpg1.tar.gz").write_bytes(b"the official bytes")
    mirror = tmp_path / "mirror"
    (mirror / "oxford5k").mkdir(parents=True)
    (mirror / "oxford5k" / "gt.tgz").write_bytes(b"the mirror's bytes")
    hol = File("holidays/jpg1.tar.gz", base + "jpg1.tar.gz")
    gt = File("oxford5k/gt.tgz", base + "gt.tgz")  # not served: must come from the mirror
    monkeypatch.setitem(registry.REGISTRY, "holidays", registry.Dataset("holidays", "fixture", (hol,)))
    monkeypatch.setitem(registry.REGISTRY, "oxford5k", registry.Dataset("oxford5k", "fixture", (gt,)))
    fetch("holidays")
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    fetch("oxford5k")
    want = hashlib.sha256(b"the official bytes").hexdigest()
    rec = json.loads((data / "checksums.json").read_text())
    assert rec == {
        "holidays/jpg1.tar.gz": {"sha256": want, "source": base + "jpg1.tar.gz"},
        "oxford5k/gt.tgz": {
            "sha256": hashlib.sha256(b"the mirror's bytes").hexdigest(),
            "source": "mirror " + os.path.relpath(mirror / "oxford5k" / "gt.tgz", paths.ROOT),
        },
    }
    # a later corrupt copy in data/ is caught, naming the file and the recorded checksum
    dest = data / "holidays" / "jpg1.tar.gz"
    dest.write_bytes(b"the official bytes, truncated or changed")
    with pytest.raises(DataError, match="does not match") as e:
        ensure_file(hol)
    assert str(dest) in str(e.value) and want in str(e.value) and "checksums.json" in str(e.value)
    # a later download that serves other bytes is refused too, and leaves nothing in data/
    dest.unlink()
    (www / "jpg1.tar.gz").write_bytes(b"other bytes upstream")
    with pytest.raises(DataError, match="does not match") as e:
        ensure_file(hol)
    assert want in str(e.value) and not dest.exists()
    assert sorted(p.name for p in (data / "holidays").iterdir()) == []
    assert json.loads((data / "checksums.json").read_text()) == rec  # the record is not rewritten


def test_corrupt_mirror_copy_error_names_the_mirror_file(isolated_data, tmp_path, monkeypatch):
    data, _ = isolated_data
    mirror = tmp_path / "mirror"
    (mirror / "sub").mkdir(parents=True)
    (mirror / "sub" / "b.bin").write_bytes(b"tampered")
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    with pytest.raises(DataError) as e:
        ensure_file(File("sub/b.bin", None, sha256=hashlib.sha256(b"original").hexdigest()))
    msg = str(e.value)
    assert msg.startswith(f"{mirror / 'sub' / 'b.bin'}: sha256 ")
    assert f"replace {mirror / 'sub' / 'b.bin'} with a good copy" in msg and "partial" not in msg
    assert not (data / "sub" / "b.bin").exists()


def test_sha256_prefix_as_torchvision_names_files(tmp_path):
    p = tmp_path / "w.pth"
    p.write_bytes(b"w")
    full = hashlib.sha256(b"w").hexdigest()
    verify(p, File("w.pth", None, sha256=full[:8]))
    with pytest.raises(
        DataError,
        match=r"w\.pth: sha256 " + full[:16] + r"\.\.\. does not match the expected "
        r"00000000\.\.\. \(corrupt or truncated\)",
    ):
        verify(p, File("w.pth", None, sha256="00000000"))


def test_fetch_unknown_name():
    with pytest.raises(KeyError, match="unknown data set 'nope'"):
        fetch("nope")


def test_registry_entries_are_complete():
    assert registry.get("cifar10").files[0].md5 == "c58f30108f718f92721af3b95e74349a"
    for name, ds in registry.REGISTRY.items():
        assert ds.files, name
        for f in ds.files:
            assert f.url or ds.offline, f"{name}:{f.relpath} has neither URL nor mirror copy"
            if ds.offline:
                assert f.sha256 or f.md5, f"{name}:{f.relpath} is in the mirror but has no checksum"


# ---------- videos and pairs ----------


def test_read_frames_and_scene_cuts(tmp_path):
    import cv2

    path = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(12):
        w.write(np.full((24, 32, 3), 20 if i < 5 else 230, np.uint8))
    w.release()
    fr = video.read_frames(path)
    assert fr.shape == (12, 24, 32, 3) and fr.dtype == np.uint8
    assert video.read_frames(path, size=(16, 12), gray=True, step=2).shape == (6, 12, 16)
    assert video.cut_scenes(fr, threshold=50, min_len=2, max_len=40) == [(0, 5), (5, 12)]
    assert video.cut_scenes(fr, threshold=50, min_len=2, max_len=4) == [(0, 4), (5, 9), (9, 12)]
    with pytest.raises(DataError, match="not found"):
        video.read_frames(tmp_path / "none.avi")
    (tmp_path / "bad.avi").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"OpenCV cannot open .*bad\.avi \(corrupt file or missing codec\)"):
        video.read_frames(tmp_path / "bad.avi")


def test_pairs_loader_on_fixture(isolated_data, monkeypatch):
    from poolrep.data import pairs

    data, _ = isolated_data
    (data / "pairs").mkdir()
    files = []
    for n in ["a1.png", "a2.png", "d.png"]:
        Image.new("RGB", (64, 40), (10, 20, 30)).save(data / "pairs" / n)
        files.append(File(f"pairs/{n}", None))
    (data / "pairs" / "groups.json").write_text(
        json.dumps({"groups": [["a1.png", "a2.png"]], "distractors": ["d.png"]})
    )
    files.append(File("pairs/groups.json", None))
    monkeypatch.setitem(registry.REGISTRY, "pairs", registry.Dataset("pairs", "fixture", tuple(files)))
    s = pairs.load_pairs(max_side=32)
    assert s.names == ["a1.png", "a2.png", "d.png"] and s.groups == [[0, 1]]
    assert max(s.images[0].shape[:2]) == 32


@pytest.mark.parametrize("with_filter", [True, False])
def test_safe_unpack_refuses_escaping_members(tmp_path, monkeypatch, with_filter):
    from poolrep.data.fetch import safe_unpack

    if not with_filter:  # Python < 3.11.4 (Debian's 3.11.2) has no extraction filter; the unpacking must not care
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    good = tmp_path / "good.tar"
    with tarfile.open(good, "w") as tar:
        b = b"ok"
        ti = tarfile.TarInfo("top/a.txt")
        ti.size = len(b)
        tar.addfile(ti, io.BytesIO(b))
    assert safe_unpack(good, tmp_path / "out") == tmp_path / "out"
    assert (tmp_path / "out" / "top" / "a.txt").read_bytes() == b"ok"
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        ti = tarfile.TarInfo("../escaped.txt")
        ti.size = 1
        tar.addfile(ti, io.BytesIO(b"x"))
    with pytest.raises(DataError, match="'..' component"):
        safe_unpack(evil, tmp_path / "out2")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out2").exists()


# ---------- the pipeline's data stage: manifests, the official path without a mirror ----------


def _serve(root: Path, base: str, relpath: str, content: bytes) -> File:
    (root / Path(relpath).name).write_bytes(content)
    return File(relpath, base + Path(relpath).name, sha256=hashlib.sha256(content).hexdigest())


def test_data_stage_without_mirror_downloads_the_official_sources(isolated_data, http_server, monkeypatch, capsys):
    """A user with internet and no mirror: CIFAR-10 from the official pickles, the clips and weights from their URLs
    (a local HTTP server stands in for the official hosts), one manifest per data set naming what was used."""
    from poolrep.data import manifest
    from poolrep.data.registry import REGISTRY, Dataset

    data, _ = isolated_data
    root, base = http_server
    arc = root / "cifar-10-python.tar.gz"
    x, y = make_official_archive(arc)
    off = File("cifar-10-python.tar.gz", base + arc.name, md5=hashlib.md5(arc.read_bytes()).hexdigest())
    clip = _serve(root, base, "videos/clip.avi", b"not really a video")
    wts = _serve(root, base, "weights/net.pth", b"not really weights")
    pairs = _serve(root, base, "pairs/a.jpg", b"jpeg bytes")
    jpeg = File("cifar10-jpeg.tar.gz", None, sha256="0" * 64)  # the mirror-only copy: not at hand here
    for name, files in (
        ("cifar10", (off,)),
        ("cifar10-jpeg", (jpeg,)),
        ("videos", (clip,)),
        ("mobilenet_v2", (wts,)),
        ("pairs", (pairs,)),
    ):
        monkeypatch.setitem(REGISTRY, name, Dataset(name, f"fixture {name}", files, "test"))
    assert manifest.cifar10_dataset() == "cifar10"
    from poolrep import cli

    assert cli.main(["data"]) == 0  # what the pipeline's data stage runs
    said = capsys.readouterr().out.splitlines()
    assert (
        said[0] == "manifests/cifar10.json: cifar10" and said[4] == "manifests/holidays.json: not read by this profile"
    )
    written = manifest.write_manifests()
    assert [p.name for p in written] == [
        "cifar10.json",
        "videos.json",
        "pairs.json",
        "mobilenet_v2.json",
        "holidays.json",
        "oxford5k.json",
        "alexnet.json",
        "cub200.json",
    ]
    # the paper path's data sets: the cpu profile does not read them, and says so
    assert json.loads((data.parent / "manifests" / "holidays.json").read_text())["used"] is False
    doc = json.loads((data.parent / "manifests" / "cifar10.json").read_text())
    assert doc["registry_entry"] == "cifar10" and doc["files"] == {arc.name: f"md5:{off.md5}"}
    assert json.loads((data.parent / "manifests" / "videos.json").read_text())["files"] == {
        "videos/clip.avi": f"sha256:{clip.sha256}"
    }
    assert (data / "videos" / "clip.avi").read_bytes() == b"not really a video"
    tr = cifar.load_cifar10("train")  # auto: the official layout, decoded from the downloaded archive
    assert tr.images.shape == (30, 32, 32, 3) and tr.labels.tolist() == y[:30].tolist()
    assert np.array_equal(tr.images[0], x[0].reshape(3, 32, 32).transpose(1, 2, 0))
    # a second run rewrites nothing (same bytes, same mtime): DVC reruns nothing downstream
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in written}
    manifest.write_manifests()
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in written} == before


def test_data_stage_prefers_the_mirror_jpeg_copy_when_no_official_one_is_at_hand(isolated_data, tmp_path, monkeypatch):
    from poolrep.data import manifest
    from poolrep.data.registry import REGISTRY, Dataset

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "cifar10-jpeg.tar.gz").write_bytes(b"jpeg tree")
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    jpeg = _file_for(b"jpeg tree", "cifar10-jpeg.tar.gz")
    monkeypatch.setitem(REGISTRY, "cifar10-jpeg", Dataset("cifar10-jpeg", "fixture", (jpeg,), "test"))
    monkeypatch.setitem(
        REGISTRY,
        "cifar10",
        Dataset("cifar10", "fixture", (File("cifar-10-python.tar.gz", "http://127.0.0.1:9/x", md5="0" * 32),), "test"),
    )
    assert manifest.cifar10_dataset() == "cifar10-jpeg"
    assert manifest.manifest("cifar10")["registry_entry"] == "cifar10-jpeg"


def test_data_stage_fetches_the_paper_path_only_where_the_profile_reads_it(isolated_data, http_server, monkeypatch):
    from poolrep import config
    from poolrep.data import manifest
    from poolrep.data.registry import REGISTRY, Dataset

    data, _ = isolated_data
    root, base = http_server
    w = _serve(root, base, "weights/alexnet.pth", b"alexnet bytes")
    monkeypatch.setitem(REGISTRY, "alexnet", Dataset("alexnet", "fixture", (w,), "test"))
    doc = config.load()
    doc = {
        **doc,
        "profile": "paper",
        "pyramid": {**doc["pyramid"], "paper": {"net": "alexnet", "datasets": ["pairs"]}},
        "crosslayer": {**doc["crosslayer"], "paper": {**doc["crosslayer"]["paper"], "cub_archive": "/x/cub.tgz"}},
    }
    monkeypatch.setattr(config, "load", lambda path=None: doc)
    use = manifest.paper_path_use()
    assert use == {"holidays": None, "oxford5k": None, "alexnet": "pyramid.net", "cub200": "local:/x/cub.tgz"}
    for n, why in use.items():
        if why is None:
            continue
        m = manifest.manifest(n) if not why.startswith("local:") else None
        if n == "alexnet":
            assert m["files"] == {"weights/alexnet.pth": f"sha256:{w.sha256}"}
            assert (data / "weights" / "alexnet.pth").read_bytes() == b"alexnet bytes"


def test_data_stage_missing_file_is_one_line_and_writes_no_manifest(isolated_data, monkeypatch, capsys):
    """No copy anywhere and an unreachable host: `poolrep data` fails with one line naming the file, the URL and
    the mirror setting, before any manifest is written."""
    from poolrep import cli
    from poolrep.data.registry import REGISTRY, Dataset

    data, _ = isolated_data
    gone = File("cifar-10-python.tar.gz", "http://127.0.0.1:9/gone.tar.gz", md5="1" * 32)  # port 9: nothing listens
    monkeypatch.setitem(REGISTRY, "cifar10", Dataset("cifar10", "fixture", (gone,), "test"))
    monkeypatch.setitem(REGISTRY, "cifar10-jpeg", Dataset("cifar10-jpeg", "fixture", (File("j.tar.gz", None),), "t"))
    assert cli.main(["data"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("poolrep data: error:") and "'cifar-10-python.tar.gz'" in err
    assert "http://127.0.0.1:9/gone.tar.gz" in err and "download failed" in err
    assert MIRROR_ENV in err
    assert not (data.parent / "manifests").exists()
