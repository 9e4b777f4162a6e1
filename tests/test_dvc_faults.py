"""Faults of a real ``dvc repro`` in a copy of this repository (issue 15): a missing input stops the run before
any output is touched, and an interrupt (SIGINT to dvc's process group) leaves the previous results as they were.

Slow (a clone, dvc's start-up, a stage that runs): marked ``slow``; ``make test`` runs them."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from poolrep import paths

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _copy_repo(dest: Path) -> Path:
    """A git clone of this repository with the working tree's files (tracked, and new ones git does not ignore)
    laid over it, so uncommitted edits are what is tested; no data/, cache/ or DVC cache. Profile smoke."""
    subprocess.run(["git", "clone", "-q", str(paths.ROOT), str(dest)], check=True)

    def ls(root, *extra):
        out = subprocess.run(["git", "ls-files", "-z", *extra], cwd=root, capture_output=True, check=True).stdout
        return set(filter(None, out.decode().split("\0")))

    tracked = ls(paths.ROOT, "--cached", "--others", "--exclude-standard")  # and new files not yet committed
    for rel in ls(dest) - tracked:  # removed from the index since the last commit
        (dest / rel).unlink()
    for rel in tracked:
        src = paths.ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
        elif (dest / rel).exists():
            (dest / rel).unlink()
    text = (dest / "params.yaml").read_text().replace("\nprofile: cpu\n", "\nprofile: smoke\n")
    (dest / "params.yaml").write_text(text)
    return dest


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("POOLREP_DATA_MIRROR", "POOLREP_DATA_DIR")}
    env.update(PATH=f"{BIN}:{env.get('PATH', '')}", DVC_NO_ANALYTICS="1", PYTHONUNBUFFERED="1", **extra)
    return env


def test_missing_data_stops_dvc_before_any_output_is_touched(tmp_path):
    """No data/ at all (a clone that neither pulled nor fetched): the data stage, which DVC runs before it verifies
    data.dvc, stops the run with the project's one line (the file, its URL, the mirror); no output is touched and
    data.dvc is not rewritten."""
    repo = _copy_repo(tmp_path / "repo")
    before, lock, dvcfile = _tree(repo / "results"), (repo / "dvc.lock").read_bytes(), (repo / "data.dvc").read_bytes()
    r = subprocess.run(
        [str(BIN / "dvc"), "repro"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(POOLREP_OFFLINE="1"),
    )  # no mirror, no data/, no downloads
    out = r.stdout + r.stderr
    assert r.returncode != 0
    line = next(x for x in out.splitlines() if x.startswith("poolrep data: error:"))
    assert "cifar-10-python.tar.gz" in line and "https://www.cs.toronto.edu/" in line and "POOLREP_DATA_MIRROR" in line
    assert "Running stage 'prepare'" not in out
    assert _tree(repo / "results") == before and (repo / "dvc.lock").read_bytes() == lock
    assert (repo / "data.dvc").read_bytes() == dvcfile


def test_one_missing_file_stops_dvc_with_one_line_naming_it(tmp_path):
    """data/ present but one file gone: the data stage stops the run with the project's one line (the file, its
    URL, the mirror), before any stage has touched an output."""
    mirror = os.environ.get("POOLREP_DATA_MIRROR") or str(paths.ROOT.parent / "shared" / "datasets")
    if not Path(mirror).is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI: the data mirror {mirror} is missing")
        pytest.skip("no data mirror (set POOLREP_DATA_MIRROR)")
    repo = _copy_repo(tmp_path / "repo")
    r = subprocess.run(
        [str(BIN / "poolrep"), "fetch", "--all-offline"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(POOLREP_DATA_MIRROR=mirror, POOLREP_ROOT=str(repo)),
    )
    assert r.returncode == 0, r.stderr
    (repo / "data" / "videos" / "tree.avi").unlink()
    before, lock = _tree(repo / "results"), (repo / "dvc.lock").read_bytes()
    r = subprocess.run(
        [str(BIN / "dvc"), "repro"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(POOLREP_OFFLINE="1", POOLREP_ROOT=str(repo)),
    )  # no mirror, no downloads
    out = r.stdout + r.stderr
    assert r.returncode != 0
    line = next(x for x in out.splitlines() if x.startswith("poolrep data: error:"))
    assert "tree.avi" in line and "POOLREP_DATA_MIRROR" in line, line
    assert "Running stage 'prepare'" not in out
    assert _tree(repo / "results") == before and (repo / "dvc.lock").read_bytes() == lock
    assert (repo / "data.dvc").read_bytes() == (paths.ROOT / "data.dvc").read_bytes()  # not re-recorded


def test_interrupted_dvc_repro_leaves_the_previous_results(tmp_path):
    repo = _copy_repo(tmp_path / "repo")
    mirror = os.environ.get("POOLREP_DATA_MIRROR") or str(paths.ROOT.parent / "shared" / "datasets")
    if not Path(mirror).is_dir():
        pytest.skip("needs the data mirror (../shared/datasets or $POOLREP_DATA_MIRROR)")
    env = _env(POOLREP_DATA_MIRROR=mirror)
    subprocess.run(
        [str(BIN / "dvc"), "repro", "prepare"], cwd=repo, env=env, check=True, capture_output=True, timeout=600
    )  # the upstream stages first, so that only autopool is running when interrupted
    before, lock = _tree(repo / "results"), (repo / "dvc.lock").read_bytes()
    log = open(tmp_path / "dvc.log", "w+")
    proc = subprocess.Popen(
        [str(BIN / "dvc"), "repro", "autopool"],
        cwd=repo,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        # a shell's background job inherits SIGINT ignored; a terminal's dvc has the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.time() + 400
        while "Running stage 'autopool'" not in (tmp_path / "dvc.log").read_text():
            assert proc.poll() is None, (tmp_path / "dvc.log").read_text()[-3000:]
            assert time.time() < deadline, "autopool never started"
            time.sleep(0.5)
        # inside the notebook: papermill has written the staging copy with its first cell executed (no fixed sleep,
        # which raced the stage's own speed: too short on a slow host, past the end of the notebook on a fast one)
        staged = repo / "results" / ".staging" / "autopool" / "notebook.ipynb"
        while not (staged.exists() and '"execution_count": 1' in staged.read_text(errors="replace")):
            assert proc.poll() is None, (
                "autopool finished before it could be interrupted: " + (tmp_path / "dvc.log").read_text()[-3000:]
            )
            assert time.time() < deadline, "autopool's notebook never started executing"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground process group
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    after = _tree(repo / "results")
    # the runner keeps the failed notebook and its (empty) lock file in the git-ignored .failed/ and .staging/
    assert {k for k in after if k.startswith(".")} <= {".failed/autopool.ipynb", ".staging/autopool.lock"}
    # every result byte-identical, the git-tracked metrics of the interrupted stage included
    assert {k: v for k, v in after.items() if not k.startswith(".")} == before
    assert (repo / "dvc.lock").read_bytes() == lock
    assert not [p for p in (repo / "results" / ".staging").glob("*") if p.name != "autopool.lock"]
