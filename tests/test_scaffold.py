"""``poolrep new``: a sixth paper stage in the uniform shape, in a scratch copy of the repository (never this one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from poolrep import paths, scaffold


def _copy(dst: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=paths.ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\n")
    for f in filter(None, files):
        if f.split("/")[0] in ("results", "cache", "data", "scratch"):
            continue
        src = paths.ROOT / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)
    return dst


def _env(root: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(root / "src"), "POOLREP_ROOT": str(root), "DVC_NO_ANALYTICS": "1"}


def test_refuses_bad_and_taken_names(tmp_path):
    root = _copy(tmp_path / "repo")
    for bad in ("Newpaper", "1paper", "new-paper", "", "a b"):
        with pytest.raises(scaffold.ScaffoldError, match="no valid stage name"):
            scaffold.new(bad, "T", "S", root=root)
    for taken in ("autopool", "crosslayer", "zoo", "report", "data"):
        with pytest.raises(scaffold.ScaffoldError, match="exists already"):
            scaffold.new(taken, "T", "S", root=root)
    assert not (root / "src" / "poolrep" / "papers" / "Newpaper").exists()


def test_new_stage_has_the_paper_shape(tmp_path):
    root = _copy(tmp_path / "repo")
    scaffold.new("sixth", "A sixth paper", "https://example.org/sixth.pdf", "Doe, Roe (2024)", root=root)
    pkg = root / "src" / "poolrep" / "papers" / "sixth"
    assert {p.stem for p in pkg.glob("*.py")} == set(scaffold.MODULES)
    dvc = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    st = dvc["sixth"]
    assert st["cmd"] == "poolrep run sixth" and "notebooks/sixth.ipynb" in st["deps"]
    assert "src/poolrep/papers/sixth/experiment.py" in st["deps"]  # written by stage_deps --write
    assert {next(iter(o)) for o in st["outs"]} == {f"results/sixth/{o}" for o in scaffold.OUTS}
    assert "results/sixth/claims.json" in dvc["report"]["deps"]
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert set(params["sixth"]["smoke"]) <= set(params["sixth"])
    nb = json.loads((root / "notebooks" / "sixth.ipynb").read_text())
    assert any("parameters" in c["metadata"].get("tags", []) for c in nb["cells"])
    env = _env(root)
    r = subprocess.run(
        [sys.executable, "tools/stage_deps.py", "--check"], cwd=root, env=env, capture_output=True, text=True
    )
    assert "sixth" not in r.stdout, r.stdout
    code = "from poolrep import papers_index as P, config; print(P.PAPERS['sixth'].citation); print(config.resolve('sixth', profile='smoke'))"
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "Doe, Roe (2024)" in r.stdout, r.stderr
    # its parameters are checked like every stage's (its model: papers/sixth/params.py, which poolrep.schema takes
    # in), and the tests that hold for every stage hold for it: one model per params block, the notebook's defaults
    # equal the smoke values, dvc.yaml lists what it imports; schema.py itself is untouched (every stage depends on it:
    # adding a paper reruns no other stage)
    assert (root / "src" / "poolrep" / "schema.py").read_text() == (paths.ROOT / "src/poolrep/schema.py").read_text()
    code = "from poolrep import schema; print(schema.MODELS['sixth'].__module__)"
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert r.stdout.strip() == "poolrep.papers.sixth.params", r.stderr
    tests = ["tests/test_schema.py", "tests/test_config.py", "tests/test_stage_deps.py", "tests/test_sixth.py"]
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-m", "not slow", *tests],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-3000:]
    assert "test_an_unknown_key_is_refused_with_the_keys_the_stage_accepts[sixth] PASSED" in r.stdout
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["sixth"]["grids"] = [2, 0]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    r = subprocess.run(
        [sys.executable, "-m", "poolrep.cli", "params", "sixth"], cwd=root, env=env, capture_output=True, text=True
    )
    assert r.returncode == 2 and "sixth.grids = [2, 0] (profile cpu) (item [1] = 0)" in r.stderr, r.stderr
    with pytest.raises(scaffold.ScaffoldError, match="exists already"):
        scaffold.new("sixth", "again", "S", root=root)


@pytest.mark.slow
def test_new_stage_runs_on_smoke(tmp_path):
    from poolrep.data import available

    if not available("cifar10-jpeg"):
        pytest.skip("no real data: set POOLREP_DATA_MIRROR (e.g. ../shared/datasets)")
    root = _copy(tmp_path / "repo")
    scaffold.new("sixth", "A sixth paper", "https://example.org/sixth.pdf", root=root)
    (root / ".dvc" / "config.local").write_text("[core]\n    no_scm = true\n")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["profile"] = "smoke"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "dvc.lock").unlink(missing_ok=True)
    bindir = Path(sys.executable).parent
    env = {**_env(root), "MPLBACKEND": "Agg", "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run([str(bindir / "dvc"), "repro", "sixth"], cwd=root, env=env, capture_output=True, text=True)
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
    claims = json.loads((root / "results" / "sixth" / "claims.json").read_text())
    assert [c["id"] for c in claims] == ["finer_grid_beats_coarse", "example_not_testable"]
    assert (root / "results" / "sixth" / "figures" / "claims.png").is_file()
    r = subprocess.run([str(bindir / "poolrep"), "report"], cwd=root, env=env, capture_output=True, text=True)
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
    md = (root / "results" / "report" / "report.md").read_text()
    html = (root / "results" / "report" / "index.html").read_text()
    for text in (md, html):
        assert "A sixth paper" in text and "finer_grid_beats_coarse" in text
    assert "finer_grid_beats_coarse" in (root / "results" / "claims.md").read_text()


def test_any_title_and_all_or_nothing(tmp_path, monkeypatch):
    root = _copy(tmp_path / "repo")
    before = {f: (root / f).read_text() for f in ("params.yaml", "dvc.yaml", "src/poolrep/papers_index.py")}
    monkeypatch.setattr(scaffold.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(OSError("stage_deps died")))
    with pytest.raises(OSError, match="stage_deps died"):
        scaffold.new("seventh", "T", "S", root=root)
    assert {f: (root / f).read_text() for f in before} == before  # put back: the name is free again
    assert not (root / "src" / "poolrep" / "papers" / "seventh").exists()
    assert not (root / "tests" / "test_seventh.py").exists() and not (root / "notebooks" / "seventh.ipynb").exists()
    monkeypatch.undo()
    title = 'The paper\'s "own" title \\ with odd characters'
    scaffold.new("seventh", title, 'https://example.org/?q="x"', "O'Neil, Ng (2024)", root=root)
    code = "from poolrep import papers_index as P; p = P.PAPERS['seventh']; print(p.title); print(p.citation)"
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=_env(root), capture_output=True, text=True)
    assert r.stdout.splitlines() == [title, "O'Neil, Ng (2024)"], r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "src/poolrep/papers/seventh", "tests/test_seventh.py"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
