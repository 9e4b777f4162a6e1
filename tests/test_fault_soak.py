"""The randomized fault soak (``tools/fault_soak.py``, issue 48): its helpers (fast), and three kills of a real
``dvc repro -f`` on the smoke profile in a scratch copy (slow: the pipeline runs several times)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from poolrep import paths

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import fault_soak as soak  # noqa: E402


def test_kills_are_reproducible_by_seed_and_inside_the_duration():
    a, b = soak.draw_kills(20, 300.0, seed=7), soak.draw_kills(20, 300.0, seed=7)
    assert a == b and len(a) == 20
    assert soak.draw_kills(20, 300.0, seed=8) != a
    assert all(0.0 <= t <= 300.0 and s in ("SIGKILL", "SIGTERM", "SIGINT") for t, s in a)
    assert len({s for _, s in soak.draw_kills(60, 300.0, seed=0)}) == 3  # every signal drawn


def test_json_checker_finds_a_truncated_file(tmp_path):
    (tmp_path / "results" / "zoo").mkdir(parents=True)
    (tmp_path / "manifests").mkdir()
    good = json.dumps({"a": {"lo": 1.0, "hi": 2.0}, "b": [1, 2, 3]})
    (tmp_path / "results" / "zoo" / "metrics.json").write_text(good)
    (tmp_path / "results" / "zoo" / "run.json").write_text(good)
    (tmp_path / "manifests" / "videos.json").write_text(good)
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages:\n  zoo:\n    cmd: poolrep run zoo\n")
    assert soak.json_problems(tmp_path) == []
    (tmp_path / "results" / "zoo" / "run.json").write_text(good[:-7])  # cut short, as by a kill mid-write
    (tmp_path / "manifests" / "videos.json").write_text("")
    bad = soak.json_problems(tmp_path)
    assert [b.split(" ")[0] for b in bad] == ["results/zoo/run.json", "manifests/videos.json"], bad


def test_litter_finds_atomic_temp_files_outside_the_runners_folders(tmp_path):
    for rel in (
        "results/report/.index.html.k2j3h4.partial.html",  # io.atomic_path's name for results/report/index.html
        "cache/.cifar10.npz.x8y9.partial.npz",
        "results/.staging/autopool/tables/.t.csv.ab12.partial.csv",  # the runner's: removed on its next run
        "results/.failed/autopool.ipynb",
        "results/report/index.html",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert soak.litter(tmp_path) == [
        "cache/.cifar10.npz.x8y9.partial.npz",
        "results/report/.index.html.k2j3h4.partial.html",
    ]
    assert soak.runner_leftovers(tmp_path) == [".staging/autopool", ".failed/autopool.ipynb"]


def test_comparison_finds_one_changed_byte(tmp_path):
    (tmp_path / "results" / "zoo" / "tables").mkdir(parents=True)
    (tmp_path / "results" / "zoo" / "tables" / "zoo.csv").write_bytes(b"a,b\n1,2\n")
    (tmp_path / "results" / "zoo" / "metrics.json").write_bytes(b'{"acc": 0.5}')
    outs = ["results/zoo/tables", "results/zoo/metrics.json", "results/zoo/run.json"]
    before = soak.snapshot(tmp_path, outs)
    assert before["results/zoo/run.json"] is None  # a missing output is recorded as such
    assert soak.compare(before, soak.snapshot(tmp_path, outs)) == {}
    (tmp_path / "results" / "zoo" / "metrics.json").write_bytes(b'{"acc": 0.6}')
    (tmp_path / "results" / "zoo" / "tables" / "zoo.csv").unlink()
    (tmp_path / "results" / "zoo" / "tables" / "new.csv").write_bytes(b"")
    assert soak.compare(before, soak.snapshot(tmp_path, outs)) == {
        "results/zoo/metrics.json": "changed",
        "results/zoo/tables/new.csv": "new",
        "results/zoo/tables/zoo.csv": "missing",
    }
    stages = {"zoo": outs, "report": ["results/report/index.html"]}
    assert soak.owner("results/zoo/tables/new.csv", stages) == "zoo"
    assert soak.owner("results/zoo/metrics.json", stages) == "zoo"
    assert soak.owner("results/zoo/metrics.jsonx", stages) is None


def test_stage_at_the_kill_from_dvcs_log():
    assert soak.stage_at("Verifying data sources in stage: 'data.dvc'\n") == "start-up"
    log = "Running stage 'data':\n> poolrep data\nUpdating lock file 'dvc.lock'\n\nRunning stage 'prepare':\n"
    assert soak.stage_at(log) == "prepare"
    assert soak.stage_at(log + "> poolrep prepare\nUpdating lock file 'dvc.lock'\n") == "prepare (lock update)"
    assert soak.stages_run(log) == ["data", "prepare"]
    status = {"data": ["always changed"], "zoo": [{"changed outs": {"results/zoo/run.json": "modified"}}]}
    assert soak.changed_stages(status) == ["zoo"]


def test_the_copy_is_smoke_without_outputs_or_lock(tmp_path):
    repo = soak.make_copy(tmp_path / "repo")
    assert re.search(r"(?m)^profile: smoke\b", (repo / "params.yaml").read_text())
    assert not (repo / "dvc.lock").exists() and not (repo / "results").exists() and not (repo / "cache").exists()
    assert (repo / "dvc.yaml").read_bytes() == (paths.ROOT / "dvc.yaml").read_bytes()
    assert (repo / "tools" / "fault_soak.py").exists() and "no_scm = true" in (
        repo / ".dvc" / "config.local"
    ).read_text()


@pytest.mark.slow
def test_three_random_kills_all_recover(tmp_path):
    """Three seeded kills of a smoke ``dvc repro -f``: every row of the table recovers, nothing lost or half-written."""
    mirror = os.environ.get("POOLREP_DATA_MIRROR") or str(paths.ROOT.parent / "shared" / "datasets")
    if not Path(mirror).is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI: the data mirror {mirror} is missing")
        pytest.skip("no data mirror (set POOLREP_DATA_MIRROR)")
    out = tmp_path / "soak.md"
    r = subprocess.run(
        [sys.executable, str(paths.ROOT / "tools" / "fault_soak.py"), "--kills", "3", "--seed", "48"]
        + ["--out", str(out), "--workdir", str(tmp_path), "--mirror", mirror, "--timeout", "1800"],
        capture_output=True,
        text=True,
        timeout=3 * 3600,
    )
    assert out.exists(), (r.stdout[-4000:], r.stderr[-4000:])
    text = out.read_text()
    rows = [x for x in text.splitlines() if re.match(r"\| \d+ \|", x)]
    assert len(rows) == 3, text
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[-1].startswith("OK"), row  # recovery
        assert cells[-2].startswith("none of ours"), row  # none of our outputs half-written (dvc.lock: DVC's own)
        assert "LOST" not in cells[-3], row
    assert "**3 of 3 kills recovered with no lost or half-written output of ours**" in text
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("fault_soak-")]  # the scratch copy is removed


def test_lockguard_restores_a_dvc_lock_that_dvc_left_half_written(tmp_path):
    """The soak's finding: a SIGKILL during DVC's in-place write of dvc.lock truncates it, and every dvc command then
    stops on it. tools/lockguard.py keeps the last valid lock and restores it (else the committed one, else removes
    it): dvc then reruns exactly the stages whose files differ from what that lock records."""
    import lockguard

    shutil.copy(paths.ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    good = (paths.ROOT / "dvc.lock").read_text()
    (tmp_path / "dvc.lock").write_text(good)
    assert lockguard.problem(good) is None
    assert "valid" in lockguard.guard(tmp_path) and (tmp_path / lockguard.GOOD).read_text() == good
    cut = good[: len(good) // 3]
    (tmp_path / "dvc.lock").write_text(cut)  # truncated mid-write, as the soak saw it
    assert lockguard.problem((tmp_path / "dvc.lock").read_text()) is not None
    # every cut of the lock is caught (a cut inside an entry can still be valid YAML and valid schema), except one
    # exactly between two whole entries, which is safe: dvc sees the entries it lacks and reruns their stage
    step = max(1, len(good) // 400)
    missed = [n for n in range(1, len(good), step) if lockguard.problem(good[:n]) is None]
    assert all(good[n - 1] == "\n" for n in missed), [good[max(0, n - 40) : n] for n in missed][:3]
    assert (
        lockguard.problem("stages:\n  prepare:\n    cmd: poolrep prepare\n    deps:\n    - path: src/poo\n") is not None
    )
    assert "restored the last good copy" in lockguard.guard(tmp_path)
    assert (tmp_path / "dvc.lock").read_text() == good
    (tmp_path / lockguard.GOOD).unlink()  # no good copy and no git: removed, so dvc reruns every stage
    (tmp_path / "dvc.lock").write_text(cut)
    assert "removed" in lockguard.guard(tmp_path) and not (tmp_path / "dvc.lock").exists()
    assert lockguard.guard(tmp_path) == "lockguard: no dvc.lock (a first run)"
