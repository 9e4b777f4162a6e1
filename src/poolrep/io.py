"""Atomic writes of a stage's products: tables (CSV + Markdown), figures (PNG) and metrics (JSON).

Every file is written to a temporary name in the same folder and moved into place with ``os.replace``, so a
crash never leaves half a file. ``poolrep run`` adds stage-level atomicity on top: a notebook writes into a
staging folder that replaces ``results/<paper>/`` only when the whole notebook succeeded.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

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
    """``<out_dir>/metrics.json``: the stage's numbers (and claims), the same for every rerun that computes the same
    numbers; with ``run`` (``RunLog.finish()``), also ``<out_dir>/run.json``: how this run was made (device,
    versions, data sources, parameters, git commit, start time, wall times). metrics.json keeps only the run's
    identity under ``run`` (stage, profile, seed), so DVC experiments can tell profiles apart; everything that
    changes from one rerun to the next lives in run.json."""
    doc = dict(metrics)
    if run is not None:
        doc["run"] = {k: run.get(k) for k in RUN_IDENTITY}
        save_json(Path(out_dir) / "run.json", run)
    save_json(Path(out_dir) / "metrics.json", doc)  # returns nothing: a notebook's last line shows no path


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
