"""``dvc repro`` on the smoke profile in a temporary copy of the repository: every stage runs and every stage's
outputs exist and parse. Needs the real data (mirror), like the notebooks."""

from __future__ import annotations

import json
import os
import re
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
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=paths.ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\n")
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
    env = {
        **os.environ,
        "POOLREP_ROOT": str(root),
        "DVC_NO_ANALYTICS": "1",
        "MPLBACKEND": "Agg",
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("POOLREP_DATA_DIR", None)
    run = lambda *cmd: subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)  # noqa: E731
    r = run(str(bindir / "poolrep"), "fetch", "--all-offline")
    assert r.returncode == 0, r.stderr
    r = run(str(bindir / "dvc"), "commit", "-q", "-f", "data.dvc")  # as `make repro` does: data/ into the cache
    assert r.returncode == 0, r.stderr
    # the mirror's files are the ones data.dvc records (the same bytes on every machine with this mirror)
    md5 = lambda f: yaml.safe_load(f.read_text())["outs"][0]["md5"]  # noqa: E731
    assert md5(root / "data.dvc") == md5(paths.ROOT / "data.dvc")
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
            assert not bad_metric_keys(m), (name, bad_metric_keys(m)[:5])  # metrics for machines: slugs only
            if name != "zoo":  # every paper stage writes its ledger rows beside its metrics
                assert isinstance(json.loads((root / "results" / name / "claims.json").read_text()), list)
    # up to date afterwards: only the data stage, which runs every time by design (always_changed), is listed
    r = run(str(bindir / "dvc"), "status")
    changed = [x for x in r.stdout.splitlines() if "changed" in x and "always changed" not in x]
    assert r.returncode == 0 and not changed, r.stdout

    # a second machine (issue 35): `dvc push` to a remote, then a second copy with the code, params, dvc.lock and
    # the git-tracked results, no data/ and no cache/: `dvc pull` restores both, and `dvc repro` reruns nothing
    # (the data stage runs by design, checksums only, and finds everything; no mirror, no downloads)
    remote = tmp_path / "remote"
    r = run(str(bindir / "dvc"), "remote", "add", "--local", "-d", "test", str(remote))
    assert r.returncode == 0, r.stderr
    r = run(str(bindir / "dvc"), "push")
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    second = tmp_path / "second"
    _copy_tree(second)
    for rel in ("params.yaml", "dvc.lock", "data.dvc", ".dvc/config.local"):
        shutil.copy2(root / rel, second / rel)
    shutil.copytree(root / "results", second / "results")
    shutil.copytree(root / "manifests", second / "manifests", dirs_exist_ok=True)
    env2 = {**env, "POOLREP_ROOT": str(second), "POOLREP_OFFLINE": "1"}
    env2.pop("POOLREP_DATA_MIRROR", None)
    run2 = lambda *cmd: subprocess.run(cmd, cwd=second, env=env2, capture_output=True, text=True)  # noqa: E731
    r = run2(str(bindir / "dvc"), "pull")
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    for rel in ("data/cifar10-jpeg.tar.gz", "data/videos/vtest.avi", "cache/cifar10.npz", "cache/backbone_cifar10.npz"):
        assert (second / rel).read_bytes() == (root / rel).read_bytes(), rel
    r = run2(str(bindir / "dvc"), "repro")
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
    ran = re.findall(r"Running stage '([^']+)'", r.stdout)
    assert ran == ["data"], r.stdout[-4000:]


def bad_metric_keys(doc, where: str = "") -> list[str]:
    """Every key of a metrics document that is not a slug (``^[a-z0-9_]+$``), with its path."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            path = f"{where}.{k}" if where else k
            if not re.fullmatch(r"[a-z0-9_]+", k):
                out.append(path)
            out += bad_metric_keys(v, path)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += bad_metric_keys(v, f"{where}[{i}]")
    return out


def test_committed_metrics_keys_are_slugs():
    """Every key of every committed metrics.json is a short slug (issue 35): ``dvc metrics show --keys`` and
    ``dvc exp show -M`` can select it; display names live in the tables. No claims in metrics.json (claims.json)."""
    from poolrep import paths

    files = sorted((paths.ROOT / "results").glob("*/metrics.json"))
    assert len(files) >= 7
    for f in files:
        m = json.loads(f.read_text())
        assert not bad_metric_keys(m), (f, bad_metric_keys(m)[:5])
        assert "claims" not in m, f
