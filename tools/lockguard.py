"""Guard ``dvc.lock`` against a kill during DVC's own write of it: ``python tools/lockguard.py [--root DIR]``.

DVC rewrites ``dvc.lock`` in place after each stage (not through a temporary file), so a SIGKILL at that instant
leaves it truncated, and every later ``dvc`` command then stops on it ("required key not provided"): the fault soak
(``tools/fault_soak.py``) found this. ``make repro`` runs this guard before ``dvc repro``:

- ``dvc.lock`` valid (DVC's own lock-file schema): a copy is kept as ``.dvc/tmp/dvc.lock.good`` (git-ignored),
  written atomically;
- ``dvc.lock`` broken: it is replaced by that last good copy, else by the committed one (``git show HEAD:dvc.lock``),
  else removed. An older lock is safe: every stage whose outputs or dependencies differ from what it records is
  seen as changed, so the next ``dvc repro`` reruns exactly those, and no result is ever taken from the broken file.

One line says what was done; the exit status is 0 unless the folder has no ``dvc.yaml``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOOD = Path(".dvc") / "tmp" / "dvc.lock.good"


HASH_KEYS = ("md5", "etag", "checksum")  # an entry DVC wrote whole carries one of them


def problem(text: str) -> str | None:
    """Why ``text`` is not a valid dvc.lock (None: it is): YAML that parses to DVC's lock-file schema, ends with the
    newline DVC writes last, and every dependency and output entry carries its hash. The schema alone passes a lock
    cut inside an entry (``- path: src/poo`` is valid YAML and valid schema: the CI run of 32ba388 cut one there). A
    lock cut exactly between two whole entries passes every check, and is still safe: the entries it lacks make
    their stage differ from dvc.yaml, so dvc reruns that stage."""
    import yaml
    from dvc.schema import COMPILED_LOCKFILE_SCHEMA

    if not text.endswith("\n"):
        return "cut short (no final newline)"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return f"not YAML ({type(e).__name__})"
    if not isinstance(data, dict):
        return "not a mapping"
    try:
        COMPILED_LOCKFILE_SCHEMA(data)
    except Exception as e:  # voluptuous' Invalid and its subclasses
        return f"not DVC's lock-file schema ({e})"
    for name, stage in (data.get("stages") or {}).items():
        for kind in ("deps", "outs"):
            for entry in (stage or {}).get(kind) or []:
                if not any(k in entry for k in HASH_KEYS):
                    return f"cut short ({name}: {kind} entry {entry.get('path')!r} has no hash)"
    return None


def _write(path: Path, text: str) -> None:
    from poolrep.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _committed(root: Path) -> str | None:
    r = subprocess.run(["git", "show", "HEAD:dvc.lock"], cwd=root, capture_output=True, text=True)
    return r.stdout if r.returncode == 0 and problem(r.stdout) is None else None


def guard(root: Path) -> str:
    """Check ``root/dvc.lock``; keep a good copy or restore one. Returns the line it prints."""
    lock, good = root / "dvc.lock", root / GOOD
    if not lock.exists():
        return "lockguard: no dvc.lock (a first run)"
    text = lock.read_text(errors="replace")  # read once: dvc may rewrite it between two reads
    bad = problem(text)
    if bad is None:
        _write(good, text)
        return "lockguard: dvc.lock valid; kept as .dvc/tmp/dvc.lock.good"
    if good.exists() and problem(good.read_text()) is None:
        _write(lock, good.read_text())
        return f"lockguard: dvc.lock was broken ({bad}): restored the last good copy; dvc reruns what changed since"
    committed = _committed(root)
    if committed is not None:
        _write(lock, committed)
        return f"lockguard: dvc.lock was broken ({bad}): restored the committed one; dvc reruns what changed since"
    lock.unlink()
    return f"lockguard: dvc.lock was broken ({bad}) and no good copy exists: removed; dvc reruns every stage"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT)
    a = ap.parse_args(argv)
    if not (a.root / "dvc.yaml").exists():
        print(f"lockguard: no dvc.yaml in {a.root}", file=sys.stderr)
        return 2
    print(guard(a.root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
