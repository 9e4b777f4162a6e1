"""Where the project's folders are.

The repository root is the folder that holds ``dvc.yaml`` and ``src/poolrep``: ``POOLREP_ROOT`` if set, else the
nearest such folder above the working directory (so DVC experiments in temporary copies use their copy), else
the checkout this file was installed from (editable install). Notebooks
run from ``notebooks/`` (JupyterLab, papermill and nbval alike), so nothing here depends on the cwd.
"""

from __future__ import annotations

import os
from pathlib import Path


def _find_root() -> Path:
    env = os.environ.get("POOLREP_ROOT")
    if env:
        return Path(env).resolve()
    # The working directory first: `dvc exp run --queue/--temp` runs stages in a temporary copy of the repo, and
    # papermill/nbval run notebooks from notebooks/; both must read and write that copy, not the installed one.
    cwd = Path.cwd().resolve()
    for p in (cwd, *cwd.parents):
        if (p / "dvc.yaml").exists() and (p / "src" / "poolrep").is_dir():
            return p
    here = Path(__file__).resolve().parents[2]
    if (here / "dvc.yaml").exists():
        return here
    raise RuntimeError("cannot find the poolrep repository root (a folder with dvc.yaml); set POOLREP_ROOT to it")


ROOT = _find_root()
DATA = ROOT / "data"  # raw inputs, fetched by the data stage (poolrep data); never in git
CACHE = ROOT / "cache"  # decoded arrays and features (DVC stage outputs or on-demand caches)
RESULTS = ROOT / "results"  # one folder per paper stage
SCRATCH = ROOT / "scratch"  # where notebooks write when run by hand or by nbval (git-ignored)
NOTEBOOKS = ROOT / "notebooks"


def out_dir(paper: str, given: str | os.PathLike | None = None) -> Path:
    """The folder a notebook writes its tables, figures and metrics into.

    papermill (``poolrep run``) passes ``given``; a notebook opened by hand or run by nbval passes ``None`` and
    writes to ``scratch/<paper>`` so it never touches the DVC-tracked ``results/``.
    """
    p = Path(given) if given else SCRATCH / paper
    p.mkdir(parents=True, exist_ok=True)
    return p
