"""``dvc repro`` on the smoke profile in a temporary copy of the repository: every stage runs and every stage's
outputs exist and parse. Needs the real data (mirror), like the notebooks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from PIL import Image

from poolrep import paths
from poolrep.data import available


def _copy_tree(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=paths.ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\n")
    for f in filter(None, files):
        if f.split("/")[0] in ("results", "cache", "data", "scratch"):  # outputs and inputs: the copy makes its own
            continue
        src = paths.ROOT / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)


@pytest.mark.slow
def test_dvc_repro_smoke(tmp_path):
    if not all(available(n) for n in ("cifar10-jpeg", "videos", "pairs", "mobilenet_v2")):
        pytest.skip("no real data: set POOLREP_DATA_MIRROR (e.g. ../shared/datasets)")
    root = tmp_path / "repo"
    _copy_tree(root)
    (root / ".dvc" / "config.local").write_text("[core]\n    no_scm = true\n")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["profile"] = "smoke"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for p in ("dvc.lock",):
        (root / p).unlink(missing_ok=True)
    bindir = Path(sys.executable).parent
    # dvc runs each stage's `poolrep ...` through the shell: the environment's tools must be on PATH, as
    # `make` arranges for a user (the venv need not be activated).
    env = {**os.environ, "POOLREP_ROOT": str(root), "DVC_NO_ANALYTICS": "1", "MPLBACKEND": "Agg",
           "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("POOLREP_DATA_DIR", None)
    run = lambda *cmd: subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)  # noqa: E731
    r = run(str(bindir / "poolrep"), "fetch", "--all-offline")
    assert r.returncode == 0, r.stderr
    r = run(str(bindir / "dvc"), "repro")
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])

    dvc = yaml.safe_load((root / "dvc.yaml").read_text())
    stages = dvc["stages"]
    for name, st in stages.items():
        for entry in st.get("outs", []) + st.get("metrics", []):
            out = root / (entry if isinstance(entry, str) else next(iter(entry)))
            assert out.exists(), f"stage {name}: {out} missing"
            files = [out] if out.is_file() else [p for p in out.rglob("*") if p.is_file()]
            assert files, f"stage {name}: {out} is empty"
            for f in files:
                if f.suffix == ".json":
                    json.loads(f.read_text())
                elif f.suffix == ".csv":
                    assert len(pd.read_csv(f)) > 0, f
                elif f.suffix == ".png":
                    assert Image.open(f).size[0] > 0
                elif f.suffix == ".ipynb":
                    nb = nbformat.read(f, as_version=4)
                    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
                    assert not errors, f
        if "cmd" in st and st["cmd"].startswith("poolrep run"):
            m = json.loads((root / "results" / name / "metrics.json").read_text())
            assert m["run"]["profile"] == "smoke" and m["run"]["stage"] == name
    # up to date afterwards: only the data stage, which runs every time by design (always_changed), is listed
    r = run(str(bindir / "dvc"), "status")
    changed = [l for l in r.stdout.splitlines() if "changed" in l and "always changed" not in l]
    assert r.returncode == 0 and not changed, r.stdout
