"""Bring a registered file into ``data/``: already there, else copied from the mirror, else downloaded.

The mirror is a folder with the same layout as ``data/``, named by the one setting ``POOLREP_DATA_MIRROR``
(this machine: ``../shared/datasets``). Every copy or download goes to a temporary file in ``data/``, is checked
against the registry's checksum, and only then is moved into place: nothing partial is ever left behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from .. import paths
from ..io import atomic_path
from .registry import File, get

MIRROR_ENV = "POOLREP_DATA_MIRROR"


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


def verify(path: Path, f: File) -> None:
    """Raise DataError if ``path`` does not match ``f``'s checksum (no checksum known: nothing to check)."""
    for algo, want in (("sha256", f.sha256), ("md5", f.md5)):
        if want:
            got = _hash(path, algo)
            if not got.startswith(want.lower()):
                raise DataError(
                    f"{path}: {algo} {got[:16]}... does not match the expected {want[:16]}... "
                    f"(corrupt or truncated). Delete it and run `poolrep fetch` again"
                    + (f", or check the copy in ${MIRROR_ENV}" if mirror_dir() else "")
                )


_verified: set[tuple[str, int, float]] = set()


def ensure_file(f: File, download: bool = True) -> Path:
    """Path of ``f`` in ``data/``, fetching it if needed. Verified once per process (size+mtime memo)."""
    dest = data_dir() / f.relpath
    if dest.exists():
        st = dest.stat()
        key = (str(dest), st.st_size, st.st_mtime)
        if key not in _verified:
            verify(dest, f)
            _verified.add(key)
        return dest
    mirror = mirror_dir()
    if mirror is not None and (mirror / f.relpath).exists():
        src = mirror / f.relpath
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
            verify(tmp, f)
        return dest
    if download and f.url:
        try:
            with atomic_path(dest) as tmp:
                _download(f.url, tmp)
                verify(tmp, f)
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
    return "\n".join(lines)


def _download(url: str, dest: Path, timeout: float = 60.0) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as r, open(dest, "wb") as out:
        total = int(r.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=Path(url).name, leave=False) as bar:
            for chunk in iter(lambda: r.read(1 << 20), b""):
                out.write(chunk)
                bar.update(len(chunk))


def safe_extractall(tar, dest: str | Path) -> None:
    """``tar.extractall(dest)`` that refuses members escaping ``dest`` (absolute paths, ``..``, links out).

    Python >= 3.11.4 has the ``filter="data"`` extraction filter; older 3.11 builds (Debian's 3.11.2) do not, so
    there the same check is made by hand before extracting.
    """
    import tarfile

    dest = Path(dest)
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for m in tar.getmembers():
        target = (root / m.name).resolve()
        if m.issym() or m.islnk():
            link = (target.parent / m.linkname).resolve()
            if not link.is_relative_to(root):
                raise DataError(f"archive member {m.name} links outside {dest}: refusing to extract")
        if not target.is_relative_to(root) or m.isdev():
            raise DataError(f"archive member {m.name} would be written outside {dest}: refusing to extract")
    tar.extractall(dest)


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
