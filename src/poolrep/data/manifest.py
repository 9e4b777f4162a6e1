"""The pipeline's ``data`` stage: fetch what the stages read, and write one manifest per data set.

``poolrep data`` (dvc.yaml's first stage, ``always_changed``) brings every data set the pipeline reads into
``data/`` (from ``data/`` itself, then the mirror ``$POOLREP_DATA_MIRROR``, then the official URL: ``fetch``) and
writes ``manifests/<name>.json``: which registry entry stands for the data set and the checksum of each of its
files. The stages depend on these manifests, not on the files, so

- a missing file stops the pipeline here, with the project's one-line error naming the file, its URL and the
  mirror, before any stage has touched an output (DVC never sees a missing dependency of a later stage);
- CIFAR-10 comes from the official ``cifar-10-python.tar.gz`` when it is in ``data/`` or the mirror or when no
  copy of the mirror's JPEG re-encoding is at hand (a user with internet and no mirror), and from the mirror's
  JPEG tree otherwise; the manifest names which, so a switch reruns the stages that read it;
- a manifest's content is the same on every machine that has the same files, so rerunning this stage reruns
  nothing downstream.
"""

from __future__ import annotations

import json
from pathlib import Path

from .fetch import DataError, available, data_dir, ensure_file, recorded
from .registry import get

# the data sets the pipeline reads, by the name its manifest has; "cifar10" is whichever CIFAR-10 copy is used
PIPELINE = ("cifar10", "videos", "pairs", "mobilenet_v2")
# the data sets only a profile's paper path reads (not offline here); their manifest says whether this profile reads
# them, so switching to the paper profile reruns the stages that do, and a missing one stops the run here
PAPER_PATH = ("holidays", "oxford5k", "alexnet", "cub200")


def paper_path_use(profile: str | None = None) -> dict[str, str | None]:
    """For each of :data:`PAPER_PATH`: why the profile's parameters read it (None: they do not), or the local path
    the parameters name instead of the registry's copy (``local:<path>``)."""
    from .. import config

    pyr, cl = config.resolve("pyramid", profile=profile), config.resolve("crosslayer", profile=profile)
    use: dict[str, str | None] = {n: None for n in PAPER_PATH}
    if "holidays" in pyr["datasets"] or "holidays_rotated" in pyr["datasets"]:
        use["holidays"] = f"local:{pyr['holidays_root']}" if pyr["holidays_root"] else "pyramid.datasets"
    if "oxford5k" in pyr["datasets"]:
        use["oxford5k"] = f"local:{pyr['oxford_root']}" if pyr["oxford_root"] else "pyramid.datasets"
    for stage, q, key in (("pyramid", pyr, "net"), ("crosslayer", cl, "backbone")):
        if q[key] == "alexnet" and use["alexnet"] is None:
            use["alexnet"] = f"local:{q['weights_file']}" if q["weights_file"] else f"{stage}.{key}"
    if cl["dataset"] == "cub200":
        use["cub200"] = f"local:{cl['cub_archive']}" if cl["cub_archive"] else "crosslayer.dataset"
    return use


def cifar10_dataset() -> str:
    """The registry entry CIFAR-10 is read from: the official pickles if a copy is at hand (``data/`` or the
    mirror), else the mirror's JPEG re-encoding if that is at hand, else the official archive (downloaded)."""
    if available("cifar10"):
        return "cifar10"
    if available("cifar10-jpeg"):
        return "cifar10-jpeg"
    return "cifar10"


def manifest_dir() -> Path:
    """``manifests/`` beside ``data/`` (git-tracked, small): not inside ``data/``, which ``data.dvc`` tracks whole."""
    return data_dir().parent / "manifests"


def manifest(name: str, download: bool = True) -> dict:
    """Fetch data set ``name`` (of :data:`PIPELINE` or :data:`PAPER_PATH`) and return its manifest (raises
    ``DataError``)."""
    entry = cifar10_dataset() if name == "cifar10" else name
    ds = get(entry)
    files = {}
    for f in ds.files:
        ensure_file(f, download=download)
        rec = recorded(f.relpath)
        checksum = (
            f"sha256:{f.sha256}"
            if f.sha256
            else f"md5:{f.md5}"
            if f.md5
            else f"sha256:{rec['sha256']}"
            if rec
            else None
        )
        if checksum is None:
            raise DataError(
                f"{f.relpath}: no checksum in the registry and none recorded at its first fetch; "
                f"delete it and run `poolrep fetch {entry}` again"
            )
        files[f.relpath] = checksum
    return {"data_set": name, "registry_entry": entry, "description": ds.description, "files": files}


OFFLINE_ENV = "POOLREP_OFFLINE"  # set to 1: never download (an air-gapped machine, or a test)


def write_manifests(names=PIPELINE, download: bool | None = None) -> list[Path]:
    """Fetch every data set in ``names`` first (so a missing one fails before any manifest changes), then write
    their manifests atomically; a manifest whose content is unchanged keeps its bytes. ``download``: default
    yes, unless ``$POOLREP_OFFLINE`` is 1."""
    import os

    from ..io import save_json

    if download is None:
        download = os.environ.get(OFFLINE_ENV, "") not in ("1", "true", "yes")
    if tuple(names) == PIPELINE:  # the pipeline's first stage: every stage's parameters, before any data is read
        from .. import config

        config.check_all()

    docs = {n: manifest(n, download) for n in names}
    if tuple(names) == PIPELINE:  # the pipeline: also the paper path's data sets, fetched only where used
        for n, why in paper_path_use().items():
            if why is None:
                docs[n] = {"data_set": n, "used": False, "why": "the active profile's parameters do not read it"}
            elif why.startswith("local:"):
                docs[n] = {
                    "data_set": n,
                    "used": True,
                    "local_path": why[6:],
                    "why": "a local copy named by the parameters (not checked against the registry)",
                }
            else:
                docs[n] = {**manifest(n, download), "used": True, "why": why}
    out = []
    for n, doc in docs.items():
        p = manifest_dir() / f"{n}.json"
        if not p.exists() or json.loads(p.read_text()) != doc:
            save_json(p, doc)
        out.append(p)
    return out
