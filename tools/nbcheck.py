"""Refresh a notebook's checked outputs: ``python tools/nbcheck.py notebooks/NAME.ipynb [...]``.

Runs the notebook with its own defaults (the smoke profile) through papermill on the ``poolrep`` kernel, then
writes it back with outputs kept only in cells that contain ``# NBVAL_CHECK_OUTPUT`` (what nbval --nbval-lax
compares) and every other output and execution count stripped, so the committed notebook stays small and diffs
stay readable.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
import papermill as pm

MARK = "# NBVAL_CHECK_OUTPUT"


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
        c.execution_count = None
        c.outputs = [o for o in outputs.get(c.source, []) if o.get("output_type") != "display_data"] if MARK in c.source else []
        for o in c.outputs:
            if "execution_count" in o:
                o["execution_count"] = None
        c.metadata.pop("papermill", None)
        c.metadata.pop("execution", None)
    src.metadata["kernelspec"] = {"name": "poolrep", "display_name": "Python (poolrep)", "language": "python"}
    nbformat.write(src, path)
    print(f"refreshed {path}")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        refresh(Path(p))
