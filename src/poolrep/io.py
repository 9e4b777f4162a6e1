"""Atomic writes of a stage's products: tables (CSV + Markdown), figures (PNG) and metrics (JSON).

Every file is written to a temporary name in the same folder and moved into place with ``os.replace``, so a
crash never leaves half a file. ``poolrep run`` adds stage-level atomicity on top: a notebook writes into a
staging folder that replaces ``results/<paper>/`` only when the whole notebook succeeded.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600; give the file the permissions a plain open() would have
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


NPZ_DATE = (1980, 1, 1, 0, 0, 0)  # the zip format's earliest date: a fixed stamp, so equal arrays give equal bytes


def save_npz(path: str | os.PathLike, **arrays) -> Path:
    """``np.savez`` written atomically and byte-for-byte repeatably: ``np.savez`` stamps each member with the
    current time, so two runs that compute identical arrays wrote different files, and DVC (which hashes the
    bytes) reran every downstream stage after a cache was rebuilt. Members are stored uncompressed, as by
    ``np.savez``, in the order given; ``np.load`` reads the result as any ``.npz``."""
    import zipfile

    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=NPZ_DATE)
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, Path):
        return str(x)
    return x


def save_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n")


def save_metrics(out_dir: str | os.PathLike, metrics: dict, run: dict | None = None) -> None:
    """``<out_dir>/metrics.json``: the stage's numbers for machines (``dvc metrics show/diff``, ``dvc exp show``),
    the same for every rerun that computes the same numbers. Keys become slugs (:func:`machine_metrics`); the
    stage's ``claims`` go to ``<out_dir>/claims.json`` (the ledger the report reads); with ``run``
    (``RunLog.finish()``), ``<out_dir>/run.json`` records how this run was made (device, versions, data sources,
    parameters, git commit, start time, wall times). metrics.json keeps only the run's identity under ``run``
    (stage, profile, seed), so DVC experiments can tell profiles apart; everything that changes from one rerun to
    the next lives in run.json. Display names live in the tables and the report, never in metrics.json."""
    doc = dict(metrics)
    claims = doc.pop("claims", None)
    if run is not None:
        doc["run"] = {k: run.get(k) for k in RUN_IDENTITY}
    doc = machine_metrics(doc)  # a key clash raises here, before any file is written
    if run is not None:
        save_json(Path(out_dir) / "run.json", run)
    if claims is not None:
        save_json(Path(out_dir) / "claims.json", claims)
    save_json(Path(out_dir) / "metrics.json", doc)  # returns nothing: a notebook's last line shows no path


SLUG_RE = re.compile(r"^[a-z0-9_]+$")
_INTERVAL_RE = re.compile(r"^\[\s*(-?[0-9.eE+-]+)\s*,\s*(-?[0-9.eE+-]+)\s*\]$")


def slug(name: Any) -> str:
    """A metrics key for machines: ``"SP 1x1+2x2 full"`` -> ``sp_1x1_plus_2x2_full``, ``"lambda=0.3"`` ->
    ``lambda_0_3``, ``"cifar10_probe_acc 95% CI"`` -> ``cifar10_probe_acc_ci``. Lower case, ``[a-z0-9_]``
    only; the same name always gives the same slug."""
    s = str(name).strip()
    s = re.sub(r"\s*95\s*%\s*CI$", "_ci", s)
    s = s.replace("+", "_plus_").replace("%", "_pct_").lower()
    s = re.sub(r"[^a-z0-9]+", "_", s).strip("_")
    if not s:
        raise ValueError(f"metrics key {name!r} has no letters or digits to make a slug of")
    return s


def _interval(v: Any) -> dict | None:
    """``"[0.298, 0.317]"`` or ``[0.298, 0.317]`` -> ``{"lo": 0.298, "hi": 0.317}``; None if ``v`` is not one."""
    if isinstance(v, str) and (m := _INTERVAL_RE.match(v.strip())):
        try:
            return {"lo": float(m.group(1)), "hi": float(m.group(2))}
        except ValueError:
            return None
    if (
        isinstance(v, (list, tuple))
        and len(v) == 2
        and all(isinstance(x, (int, float, np.number)) or x is None for x in v)
    ):
        return {"lo": v[0], "hi": v[1]}
    return None


def machine_metrics(doc: Any, where: str = "") -> Any:
    """``doc`` for machines: every key a slug (:func:`slug`), every interval two numbers ``lo``/``hi`` (a string
    ``"[a, b]"`` anywhere, or a two-number list under a key ending in ``ci``), every list of records a mapping by
    position. Two keys of one mapping that give the same slug are an error naming both."""
    if isinstance(doc, dict):
        out: dict = {}
        names: dict = {}
        for k, v in doc.items():
            s = slug(k)
            if s in out:
                raise ValueError(
                    f"metrics keys {names[s]!r} and {k!r}{' under ' + where if where else ''} give "
                    f"the same slug {s!r}: rename one"
                )
            names[s] = k
            iv = _interval(v) if (isinstance(v, str) or s == "ci" or s.endswith("_ci")) else None
            out[s] = iv if iv is not None else machine_metrics(v, f"{where}.{s}" if where else s)
        return out
    if isinstance(doc, (list, tuple)) and doc and all(isinstance(v, dict) for v in doc):
        return {str(i): machine_metrics(v, f"{where}.{i}") for i, v in enumerate(doc)}
    if isinstance(doc, str) and (iv := _interval(doc)) is not None:
        return iv
    return doc


RUN_IDENTITY = ("stage", "profile", "seed")


def save_table(
    df: pd.DataFrame,
    out_dir: str | os.PathLike,
    name: str,
    title: str = "",
    note: str = "",
    floatfmt: str = ".4g",
) -> pd.DataFrame:
    """``tables/<name>.csv`` and ``tables/<name>.md`` (title, table, note). Returns ``df`` for display."""
    tdir = Path(out_dir) / "tables"
    with atomic_path(tdir / f"{name}.csv") as tmp:
        df.to_csv(tmp, index=False)
    md = []
    if title:
        md += [f"### {title}", ""]
    # a number the paper does not give (NaN/None) is an empty cell, not "nan"
    md.append(df.astype(object).where(df.notna(), None).to_markdown(index=False, floatfmt=floatfmt, missingval=""))
    if note:
        md += ["", note]
    write_text(tdir / f"{name}.md", "\n".join(md) + "\n")
    return df


def save_figure(fig, out_dir: str | os.PathLike, name: str, dpi: int = 120) -> Path:
    """``figures/<name>.png``, written atomically."""
    path = Path(out_dir) / "figures" / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return path


def paper_vs_ours(rows: list[dict], key: str = "method") -> pd.DataFrame:
    """A comparison table: each row has ``key``, ``paper`` (may be None: not reported) and ``ours``.

    Adds ``diff = ours - paper`` where both exist. Numbers of the paper are typed in from the paper (they are
    the reference); ours are always computed by the caller.
    """
    df = pd.DataFrame(rows)
    for col in ("paper", "ours"):
        if col not in df:
            raise ValueError(f"paper_vs_ours: every row needs {col!r}; got columns {list(df.columns)}")
    df["paper"] = pd.to_numeric(df["paper"], errors="coerce")
    df["ours"] = pd.to_numeric(df["ours"], errors="coerce")
    df["diff"] = df["ours"] - df["paper"]
    cols = [key] + [c for c in df.columns if c not in (key, "paper", "ours", "diff")] + ["paper", "ours", "diff"]
    return df[cols]
