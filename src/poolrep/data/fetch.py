"""Bring a registered file into ``data/``: already there, else copied from the mirror, else downloaded.

The mirror is a folder with the same layout as ``data/``, named by the one setting ``POOLREP_DATA_MIRROR``
(this machine: ``../shared/datasets``). Every copy or download goes to a temporary file in ``data/``, is checked
against the registry's checksum, and only then is moved into place: nothing partial is ever left behind.

A registry file without a checksum (Holidays, Oxford5K: their hosts publish none) gets one at its first fetch:
its sha256 is recorded in ``data/checksums.json`` with where it came from, and every later copy is checked
against it, so a corrupt or swapped copy is caught as it would be for a registered checksum.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm

from .. import paths
from ..io import atomic_path, save_json
from .registry import File, get

MIRROR_ENV = "POOLREP_DATA_MIRROR"
CHECKSUMS = "checksums.json"


class DataError(RuntimeError):
    """Data missing or corrupt; the message names the file and the fix."""


def mirror_dir() -> Path | None:
    m = os.environ.get(MIRROR_ENV)
    return Path(m).expanduser().resolve() if m else None


def data_dir() -> Path:
    return Path(os.environ.get("POOLREP_DATA_DIR", paths.DATA))


def _hash(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_FIX = "Delete it and run `poolrep fetch` again"


def verify(path: Path, f: File, name: str | Path | None = None, fix: str | None = None, origin: str = "") -> None:
    """Raise DataError if ``path`` does not match ``f``'s checksum (no checksum known: nothing to check).

    ``name``: what the message calls the file when ``path`` is a temporary copy (the mirror file, the URL);
    ``fix``: what to do about it; ``origin``: where the expected checksum comes from (then shown in full)."""
    for algo, want in (("sha256", f.sha256), ("md5", f.md5)):
        if want:
            got = _hash(path, algo)
            if not got.startswith(want.lower()):
                shown = f"the {want} {origin}" if origin else f"the expected {want[:16]}..."
                if fix is None:
                    fix = _FIX + (f", or check the copy in ${MIRROR_ENV}" if mirror_dir() else "")
                raise DataError(
                    f"{name or path}: {algo} {got[:16]}... does not match {shown} (corrupt or truncated). {fix}"
                )


# ---------- checksums recorded at first fetch (files the registry has no checksum for) ----------


def _checksums_path() -> Path:
    return data_dir() / CHECKSUMS


def recorded(relpath: str) -> dict | None:
    """``{"sha256", "source"}`` recorded for ``relpath`` at its first fetch, or None."""
    p = _checksums_path()
    if not p.exists():
        return None
    try:
        doc = json.loads(p.read_text())
    except ValueError as e:
        raise DataError(f"{p}: not valid JSON ({e}); delete it and run `poolrep fetch` again") from e
    return doc.get(relpath)


@contextmanager
def _checksums_lock() -> Iterator[None]:
    """Two fetches in parallel must not lose each other's record (read-modify-write of one JSON file). The lock is
    on the data/ folder itself, so no lock file joins the DVC-tracked data/."""
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _record(relpath: str, sha256: str, source: str) -> None:
    with _checksums_lock():
        p = _checksums_path()
        doc = json.loads(p.read_text()) if p.exists() else {}
        old = doc.get(relpath, {}).get("sha256")
        if old and old != sha256:  # another process fetched it first, from a source that served other bytes
            raise DataError(
                f"{source}: sha256 {sha256[:16]}... differs from the {old} recorded for {relpath} in "
                f"{p} meanwhile; delete the file and the record, then `poolrep fetch` again"
            )
        doc[relpath] = {"sha256": sha256, "source": source}
        save_json(p, doc)  # atomic: a temporary file moved into place


def _expected(f: File) -> tuple[File, str]:
    """``f`` with the checksum to check against: the registry's, else the one recorded at first fetch (and a note
    saying so for messages), else none."""
    if f.sha256 or f.md5:
        return f, ""
    rec = recorded(f.relpath)
    if rec is None:
        return f, ""
    return dataclasses.replace(f, sha256=rec["sha256"]), (
        f"recorded in {_checksums_path()} at its first fetch (from {rec.get('source', 'unknown')})"
    )


def _place(f: File, dest: Path, src: Path | None) -> None:
    """Copy the mirror file ``src`` (or download ``f.url`` if None) to ``dest`` through a checked temporary file;
    a file without any checksum gets its sha256 recorded."""
    want, origin = _expected(f)
    with atomic_path(dest) as tmp:
        if src is not None:
            shutil.copyfile(src, tmp)
            verify(
                tmp,
                want,
                name=src,
                origin=origin,
                fix=f"The mirror copy is bad: replace {src} with a good copy (${MIRROR_ENV}), "
                f"then run `poolrep fetch` again",
            )
            source = f"mirror {shown_path(src)}"
        else:
            _download(f.url, tmp)
            verify(
                tmp,
                want,
                name=f.url,
                origin=origin,
                fix="The download is corrupt or the file changed at its source; try again later",
            )
            source = f.url
        if not (want.sha256 or want.md5):
            _record(f.relpath, _hash(tmp, "sha256"), source)


_verified: set[tuple[str, int, float]] = set()


def ensure_file(f: File, download: bool = True, memo: bool = True) -> Path:
    """Path of ``f`` in ``data/``, fetching it if needed. Verified once per process (size+mtime memo), or on
    every call with ``memo=False`` (files that are loaded as code-bearing pickles)."""
    dest = data_dir() / f.relpath
    if dest.exists():
        st = dest.stat()
        key = (str(dest), st.st_size, st.st_mtime)
        if not memo or key not in _verified:
            want, origin = _expected(f)
            verify(dest, want, origin=origin)
            _verified.add(key)
        return dest
    mirror = mirror_dir()
    if mirror is not None and (mirror / f.relpath).exists():
        _place(f, dest, mirror / f.relpath)
        return dest
    if download and f.url:
        try:
            _place(f, dest, None)
        except DataError:
            raise
        except Exception as e:  # network errors of any kind: one clear message
            raise DataError(_missing_msg(f, mirror, reason=f"download failed: {e}")) from e
        return dest
    raise DataError(_missing_msg(f, mirror))


def _missing_msg(f: File, mirror: Path | None, reason: str = "") -> str:
    lines = [f"data file {f.relpath!r} not found in {data_dir()}."]
    if mirror is None:
        lines.append(f"No mirror set: point {MIRROR_ENV} at a folder that holds it (this machine: ../shared/datasets).")
    else:
        lines.append(f"Not in the mirror {MIRROR_ENV}={mirror} either.")
    if f.url:
        lines.append(f"Official source: {f.url}" + (f" ({reason})" if reason else ""))
    else:
        lines.append("It has no public download URL: only a mirror copy exists.")
    lines.append(f"Fix: put the file at {data_dir() / f.relpath}, or set {MIRROR_ENV}, then `poolrep fetch`.")
    return " ".join(lines)  # one line: the CLI prints it after "poolrep <verb>: error:"


def _download(url: str, dest: Path, timeout: float = 60.0) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as r, open(dest, "wb") as out:
        total = int(r.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=Path(url).name, leave=False) as bar:
            for chunk in iter(lambda: r.read(1 << 20), b""):
                out.write(chunk)
                bar.update(len(chunk))


# ---------- archives ----------


def safe_unpack(archives: str | Path | Sequence[str | Path], dest: str | Path) -> Path:
    """Unpack one or more tar archives into the folder ``dest``, all or nothing; returns ``dest``.

    If ``dest`` exists it is complete: everything is unpacked into a temporary folder beside it
    (``<dest>.partial-XXXX``) that is renamed to ``dest`` only when every member is out, so a failure or an
    interruption never leaves a half-unpacked ``dest``. Only regular files and folders are unpacked, by hand
    (never ``tar.extractall``, whose guards differ between Python 3.11 builds): a link, device or FIFO, an
    absolute name or a ``..`` component is refused with a DataError naming the archive and the member, and
    every file is written at a path checked to lie inside the temporary folder."""
    archives = [Path(archives)] if isinstance(archives, (str, os.PathLike)) else [Path(a) for a in archives]
    dest = Path(dest)
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{dest.name}.partial-", dir=dest.parent))
    try:
        for archive in archives:
            _unpack_one(archive, tmp)
        umask = os.umask(0)  # mkdtemp makes 0700; give the folder the permissions a plain mkdir would have
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():  # not a concurrent unpack that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _unpack_one(archive: Path, root: Path) -> None:
    top = root.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for m in tar:
                parts = _member_parts(archive, m)
                if not parts:
                    continue
                target = top.joinpath(*parts)
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    _inside(archive, m, target.resolve(), top)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                _inside(archive, m, target.parent.resolve(), top)
                if target.is_symlink() or target.is_dir():
                    raise DataError(f"{archive}: member {m.name!r} would replace a folder or link; refusing to unpack")
                src = tar.extractfile(m)
                with src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except DataError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise DataError(
            f"{archive}: not a readable archive, or it cannot be unpacked into {root.parent} ({e}); "
            f"delete it and fetch again"
        ) from e


def _member_parts(archive: Path, m: tarfile.TarInfo) -> list[str]:
    """The member's path components; a DataError for anything but a regular file or folder at a relative path
    without ``..``."""
    if not (m.isreg() or m.isdir()):
        kind = (
            "a symlink"
            if m.issym()
            else "a hardlink"
            if m.islnk()
            else "a device"
            if m.isdev()
            else "a FIFO"
            if m.isfifo()
            else f"of type {m.type!r}"
        )
        raise DataError(
            f"{archive}: member {m.name!r} is {kind}; only regular files and folders are unpacked, refusing to unpack"
        )
    name = m.name
    if name.startswith("/"):
        raise DataError(f"{archive}: member {name!r} has an absolute path; refusing to unpack")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DataError(f"{archive}: member {name!r} has a '..' component; refusing to unpack")
    return parts


def _inside(archive: Path, m: tarfile.TarInfo, resolved: Path, top: Path) -> None:
    if not resolved.is_relative_to(top):
        raise DataError(f"{archive}: member {m.name!r} would be written outside the destination; refusing to unpack")


def fetch(name: str, download: bool = True) -> Path:
    """All files of data set ``name`` in ``data/``; returns the folder that holds them (``data/``)."""
    for f in get(name).files:
        ensure_file(f, download=download)
    return data_dir()


def shown_path(p: Path | None) -> str:
    """A path as run logs show it: relative to the repository (``../shared/datasets``), never this machine's
    absolute path."""
    if p is None:
        return ""
    return os.path.relpath(p, paths.ROOT)


def source_of(name: str) -> str:
    """Where ``name`` comes from, for run logs: 'data/' if all files are already there, else mirror or url."""
    ds = get(name)
    if all((data_dir() / f.relpath).exists() for f in ds.files):
        return "data/ (fetched earlier" + (f"; mirror {shown_path(mirror_dir())}" if mirror_dir() else "") + ")"
    m = mirror_dir()
    if m and all((m / f.relpath).exists() for f in ds.files):
        return f"mirror {shown_path(m)}"
    return "official URL"


def available(name: str) -> bool:
    """True if every file of ``name`` is in data/ or the mirror (no network needed)."""
    ds = get(name)
    m = mirror_dir()
    return all((data_dir() / f.relpath).exists() or (m is not None and (m / f.relpath).exists()) for f in ds.files)
