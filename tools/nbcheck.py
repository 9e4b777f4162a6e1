"""Refresh a notebook's checked outputs: ``python tools/nbcheck.py notebooks/NAME.ipynb [...]``.

``--sync-params`` first rewrites the notebook's ``parameters`` cell from params.yaml's smoke profile (the one
place parameters are defined; tests/test_config.py checks the two agree), ``--renumber`` only renumbers.

Runs the notebook with its own defaults (the smoke profile) through papermill on the ``poolrep`` kernel, then
writes it back with outputs kept only in cells that contain ``# NBVAL_CHECK_OUTPUT`` (what nbval --nbval-lax
compares; those cells are numbered 1, 2, ... since nbval rejects an unrun cell with outputs) and every other output
and execution count stripped, so the committed notebook stays small and diffs
stay readable.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
import papermill as pm

MARK = "# NBVAL_CHECK_OUTPUT"


def number_checked(nb) -> None:
    """Give the cells that keep outputs an execution count (nbval refuses an 'unrun' cell with outputs)."""
    n = 0
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        if c.get("outputs"):
            n += 1
            c.execution_count = n
            for o in c.outputs:
                if "execution_count" in o:
                    o["execution_count"] = n
        else:
            c.execution_count = None


KERNELSPEC = {"name": "poolrep", "display_name": "Python (poolrep)", "language": "python"}


def sync_params(path: Path) -> None:
    """The ``parameters`` cell := the stage's smoke values from params.yaml (plus ``out_dir = None``)."""
    from poolrep import config

    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    params = config.resolve(path.stem, profile="smoke")
    cell.source = "\n".join(f"{k} = {v!r}" for k, v in params.items()) + "\nout_dir = None"
    nb.metadata["kernelspec"] = KERNELSPEC  # jupytext round trips drop it
    nbformat.write(nb, path)


def refresh(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        pm.execute_notebook(str(path), str(out), kernel_name="poolrep", cwd=str(path.parent), progress_bar=True)
        ran = nbformat.read(out, as_version=4)
    src = nbformat.read(path, as_version=4)
    # papermill may inject a cell; match the source's cells by their text
    outputs = {c.source: c.get("outputs", []) for c in ran.cells if c.cell_type == "code"}
    for c in src.cells:
        if c.cell_type != "code":
            continue
        c.outputs = (
            [o for o in outputs.get(c.source, []) if o.get("output_type") != "display_data"] if MARK in c.source else []
        )
        c.metadata.pop("papermill", None)
        c.metadata.pop("execution", None)
    number_checked(src)
    src.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(src, path)
    print(f"refreshed {path}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--renumber":  # fix execution counts only, without running
        for p in args[1:]:
            nb = nbformat.read(p, as_version=4)
            number_checked(nb)
            nbformat.write(nb, p)
            print(f"renumbered {p}")
    elif args and args[0] == "--sync-params":
        for p in args[1:]:
            sync_params(Path(p))
            print(f"parameters of {p} := params.yaml's smoke profile")
    else:
        for p in args:
            refresh(Path(p))
