"""Where the project's folders are.

The repository root is the folder that holds ``dvc.yaml``: found from ``POOLREP_ROOT`` if set, else from this
file (editable install, ``src/poolrep/paths.py``), else by walking up from the working directory. Notebooks
run from ``notebooks/`` (JupyterLab, papermill and nbval alike), so nothing here depends on the cwd.
"""

from __future__ import annotations

import os
from pathlib import Path


def _find_root() -> Path:
    env = os.environ.get("POOLREP_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[2]
    if (here / "dvc.yaml").exists():
        return here
    cwd = Path.cwd().resolve()
    for p in (cwd, *cwd.parents):
        if (p / "dvc.yaml").exists():
            return p
    raise RuntimeError(
        "cannot find the poolrep repository root (a folder with dvc.yaml); set POOLREP_ROOT to it"
    )


ROOT = _find_root()
DATA = ROOT / "data"  # raw inputs, tracked by data.dvc
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
