"""Read DVC experiments back into a table, so a notebook can show the sweep that ran as ``dvc exp run --queue``.

``experiments(stage)`` calls ``dvc exp show --json`` and flattens, for every experiment (and the workspace), the
stage's parameters and the values of its ``results/<stage>/metrics.json``. With no experiments (or no dvc), it
returns an empty table; the notebook then says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from . import paths


def _dvc() -> str | None:
    local = Path(sys.executable).with_name("dvc")
    return str(local) if local.exists() else shutil.which("dvc")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif not isinstance(v, list):
            out[key] = v
    return out


def parse_exp_show(doc: list, stage: str) -> pd.DataFrame:
    """Rows of ``dvc exp show --json`` output (DVC 3 layout) for one stage: name, kind (workspace, commit or
    experiment), rev, profile, params, metrics."""
    rows = []
    metrics_file = f"results/{stage}/metrics.json"

    def visit(entry, name, kind):
        data = (entry.get("data") or {}) if isinstance(entry, dict) else {}
        params = (data.get("params") or {}).get("params.yaml", {}).get("data", {})
        metrics = (data.get("metrics") or {}).get(metrics_file, {}).get("data", {})
        if stage not in params and not metrics:
            return
        row = {
            "experiment": name or entry.get("name") or entry.get("rev", "")[:7],
            "kind": kind,
            "rev": entry.get("rev", ""),
        }
        # the profile that made the metrics (their run log), else the one params.yaml selects
        row["profile"] = (metrics.get("run") or {}).get("profile") or params.get("profile")
        row.update(
            {
                f"param.{k}": v
                for k, v in _flatten(
                    {x: y for x, y in params.get(stage, {}).items() if x not in ("smoke", "cpu", "paper")}
                ).items()
            }
        )
        row.update({f"metric.{k}": v for k, v in _flatten({k: v for k, v in metrics.items() if k != "run"}).items()})
        rows.append(row)

    for commit in doc:
        ws = commit.get("rev") == "workspace"
        visit(commit, "workspace" if ws else commit.get("name"), "workspace" if ws else "commit")
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                visit(rev, exp.get("name") or rev.get("name"), "experiment")
    return pd.DataFrame(rows)


def experiments(stage: str, timeout: float = 120) -> pd.DataFrame:
    """The stage's rows of ``dvc exp show --json`` (see :func:`parse_exp_show`). Where dvc cannot be asked (not
    installed, or the repository is locked while ``dvc repro`` runs), the table is empty and ``.attrs["why"]``
    says why, so a notebook can print the reason instead of an empty table."""
    dvc = _dvc()
    if dvc is None:
        return _empty("dvc is not installed in this environment")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    r = subprocess.run(
        [dvc, "exp", "show", "--json"], cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if r.returncode != 0 or not r.stdout.strip():
        return _empty(f"`dvc exp show` failed (exit {r.returncode}): {(r.stderr or r.stdout).strip()[-300:]}")
    df = parse_exp_show(json.loads(r.stdout), stage)
    if df.empty:
        return _empty(f"no experiment or commit has parameters or metrics for {stage!r}")
    return df


def _empty(why: str) -> pd.DataFrame:
    df = pd.DataFrame()
    df.attrs["why"] = why
    return df


def varying(df: pd.DataFrame, prefix: str) -> list[str]:
    """Columns starting with ``prefix`` (``"param."`` or ``"metric."``) whose value differs between rows:
    the swept parameters, and the metrics the sweep moved."""
    cols = [c for c in df.columns if c.startswith(prefix)]
    return [c for c in cols if df[c].astype(str).nunique(dropna=False) > 1]
