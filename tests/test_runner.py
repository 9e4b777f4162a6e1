"""``poolrep run``: params reach the notebook, unknown keys fail before running, results are replaced only on
success (a failed run keeps the previous results and the failed notebook for inspection)."""

from __future__ import annotations

import json

import nbformat
import pytest

from poolrep import config, paths, runner


def _notebook(path, body: str):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("n = 1\nfail = False\nprofile = 'smoke'\nout_dir = None")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "poolrep", "display_name": "Python (poolrep)", "language": "python"}
    nbformat.write(nb, path)


BODY = """
import sys
from poolrep import io
assert not fail, "asked to fail"
print("\\r 40%|####      | 2/5 [00:01<00:01, 2.0it/s]", file=sys.stderr)
print("[time] toy step: 1.2 s", file=sys.stderr)
print("a warning that stays", file=sys.stderr)
io.save_metrics(out_dir, {"n": n, "profile": profile}, {"stage": "toy", "profile": profile, "seed": 0,
                                                       "wall_time_s": 0.1})
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _notebook(nbdir / "toy.ipynb", BODY)
    monkeypatch.setattr(paths, "NOTEBOOKS", nbdir)
    doc = {"profile": "cpu", "toy": {"n": 7, "fail": False, "smoke": {"n": 2}}}
    monkeypatch.setattr(config, "load", lambda path=None: doc)
    return tmp_path, doc


def test_run_passes_params_and_swaps_results(project):
    root, doc = project
    final = runner.run("toy", results=root / "results")
    ident = {"stage": "toy", "profile": "cpu", "seed": 0}
    assert json.loads((final / "metrics.json").read_text()) == {"n": 7, "profile": "cpu", "run": ident}
    run = json.loads((final / "run.json").read_text())
    assert (
        run["params"] == {"n": 7, "fail": False, "profile": "cpu"} and run["notebook_s"] > 0 and "commit" in run["git"]
    )
    # the committed notebook carries no timestamps, durations, absolute paths or progress bars; warnings stay
    nb = json.loads((final / "notebook.ipynb").read_text())
    text = json.dumps([nb["metadata"]] + [[c["metadata"], c.get("outputs")] for c in nb["cells"]])
    for volatile in ("start_time", "end_time", "duration", "input_path", "iopub", "[time]", "it/s", str(root)):
        assert volatile not in text, volatile
    assert "a warning that stays" in text
    final = runner.run("toy", profile="smoke", results=root / "results")
    assert json.loads((final / "metrics.json").read_text()) == {
        "n": 2,
        "profile": "smoke",
        "run": {**ident, "profile": "smoke"},
    }
    assert not (root / "results" / ".staging" / "toy").exists()

    doc["toy"]["fail"] = True
    with pytest.raises(Exception, match="asked to fail"):
        runner.run("toy", results=root / "results")
    # previous results untouched; failed notebook kept aside
    assert json.loads((final / "metrics.json").read_text())["n"] == 2
    assert (root / "results" / ".failed" / "toy.ipynb").exists()


def test_unknown_param_fails_before_running(project):
    root, doc = project
    doc["toy"]["lamda"] = 0.5
    with pytest.raises(config.ParamsError, match="unknown parameter\\(s\\) lamda for notebook toy.ipynb"):
        runner.run("toy", results=root / "results")
    assert not (root / "results").exists()


def test_missing_notebook(project):
    with pytest.raises(FileNotFoundError, match="no notebook"):
        runner.notebook_for("nothere")


# ---------- issue 15: pipeline integrity under faults ----------

import fcntl  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from poolrep import device  # noqa: E402


@pytest.fixture
def no_git(monkeypatch):
    """run.json's git state without calling git on the repository (another session may be using its index)."""
    monkeypatch.setattr(device, "git_state", lambda root=None: {"commit": "test"})


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def test_run_keeps_the_dot_files_it_did_not_write(project, no_git):
    root, doc = project
    final = runner.run("toy", results=root / "results")
    (final / ".gitignore").write_text("/big.bin\n")  # git-tracked, not written by the notebook
    (final / ".keep").mkdir()
    (final / ".keep" / "note").write_text("kept")
    (final / "stale.txt").write_text("not a dot-file: dropped as before")
    final = runner.run("toy", profile="smoke", results=root / "results")
    assert (final / ".gitignore").read_text() == "/big.bin\n" and (final / ".keep" / "note").read_text() == "kept"
    assert not (final / "stale.txt").exists()
    assert json.loads((final / "metrics.json").read_text())["n"] == 2  # the new run's own files


def test_a_second_run_of_a_stage_fails_at_once(project, no_git):
    root, doc = project
    lock = root / "results" / ".staging" / "toy.lock"
    staging = root / "results" / ".staging" / "toy"
    staging.mkdir(parents=True)
    (staging / "metrics.json").write_text("the other run's, half written")
    with open(lock, "a") as held:  # another `poolrep run toy` holds the lock
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RuntimeError, match="another run of the stage 'toy' is in progress") as e:
            runner.run("toy", results=root / "results")
        assert str(lock) in str(e.value)
        assert (staging / "metrics.json").read_text() == "the other run's, half written"  # not touched
        assert not (root / "results" / "toy").exists()
    final = runner.run("toy", results=root / "results")  # released: runs
    assert json.loads((final / "metrics.json").read_text())["n"] == 7


def test_out_of_range_param_fails_before_running(project):
    root, doc = project
    doc["toy"]["n"] = -3
    with pytest.raises(config.ParamsError, match=r"toy.n = -3: -3 is out of range; it must be >= 0"):
        runner.run("toy", results=root / "results")
    assert not (root / "results").exists()


def test_cli_run_notebook_error_is_one_line(project, monkeypatch, capsys):
    from poolrep import cli

    root, doc = project
    monkeypatch.setattr(paths, "ROOT", root)
    monkeypatch.setattr(paths, "RESULTS", root / "results")
    doc["toy"]["fail"] = True
    assert cli.main(["run", "toy"]) == 2
    err = capsys.readouterr().err
    line = (
        "poolrep run toy: error in the notebook: AssertionError: asked to fail "
        "(executed notebook kept at results/.failed/toy.ipynb)"
    )
    assert [ln for ln in err.splitlines() if ln.startswith("poolrep")] == [line]
    assert "Traceback" not in err
    assert (root / "results" / ".failed" / "toy.ipynb").exists()


def test_no_swap_once_the_parent_is_gone(project, monkeypatch, no_git):
    root, doc = project
    final = runner.run("toy", results=root / "results")
    before = _snapshot(final)
    gone, clean, real = [], runner.clean, os.getppid()
    # an orphan is re-parented (to init, pid 1): any other pid than the start's will do; pytest itself may already
    # be an orphan (started detached: setsid + nohup), its parent pid 1 from the start
    orphaned = 1 if real != 1 else real + 1
    monkeypatch.setattr(os, "getppid", lambda: orphaned if gone else real)
    # the parent dies while the notebook runs (seen from here: after it, before the swap)
    monkeypatch.setattr(runner, "clean", lambda *a, **k: (gone.append(1), clean(*a, **k))[1])
    doc["toy"]["n"] = 8
    gone_msg = f"the parent process {real} \\(dvc, or what started this run\\) is gone: not swapping"
    with pytest.raises(RuntimeError, match=gone_msg):
        runner.run("toy", results=root / "results")
    assert gone and _snapshot(final) == before
    assert not (root / "results" / ".staging" / "toy").exists()


SLOW_BODY = """
import os, time
from poolrep import io
started = os.environ["POOLREP_TEST_STARTED"]
with open(started + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(started + ".tmp", started)
time.sleep(300)
io.save_metrics(out_dir, {"n": n, "profile": profile}, {"stage": "toy", "profile": profile, "seed": 0})
"""

# what dvc is to `poolrep run`: its parent, which the test kills
PARENT = """
import os, subprocess, sys, time
p = subprocess.Popen([sys.executable, "-m", "poolrep.cli", "run", "toy"])
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(p.pid))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)
"""


def _wait(cond, timeout: float) -> bool:
    """Poll ``cond`` until true or ``timeout`` seconds passed (a generous bound: not a timing test)."""
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.2)
    return bool(cond())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its new parent) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_poolrep_run_dies_with_its_parent(tmp_path, sig):
    proj = tmp_path / "proj"
    (proj / "notebooks").mkdir(parents=True)
    _notebook(proj / "notebooks" / "toy.ipynb", SLOW_BODY)
    (proj / "params.yaml").write_text("profile: cpu\ntoy:\n  n: 7\n  fail: false\n  smoke:\n    n: 2\n")
    prev = proj / "results" / "toy"
    (prev / "figures").mkdir(parents=True)
    (prev / "metrics.json").write_text('{"n": 1}\n')
    (prev / ".gitignore").write_text("/x\n")
    (prev / "figures" / "a.png").write_bytes(b"\x89PNG previous")
    before = _snapshot(prev)
    started, pidfile, log = tmp_path / "started", tmp_path / "runner.pid", tmp_path / "log.txt"
    env = {**os.environ, "POOLREP_ROOT": str(proj), "POOLREP_TEST_STARTED": str(started)}
    runner_pid = kernel_pid = None
    with open(log, "wb") as out:
        parent = subprocess.Popen(
            [sys.executable, "-c", PARENT, str(pidfile)], env=env, cwd=proj, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        assert _wait(lambda: (started.exists() and pidfile.exists()) or parent.poll() is not None, 300)
        assert parent.poll() is None, log.read_text()
        runner_pid, kernel_pid = int(pidfile.read_text()), int(started.read_text())
        assert _alive(runner_pid)  # the notebook is running
        parent.send_signal(sig)
        parent.wait(timeout=60)
        assert _wait(lambda: not _alive(runner_pid), 120), (
            "poolrep run lived on after its parent died:\n" + log.read_text()
        )
        assert _snapshot(prev) == before  # previous results untouched, nothing swapped in
        assert not (proj / "results" / ".staging" / "toy").exists()
        assert "poolrep run toy: terminated by signal 15" in log.read_text()
    finally:
        for pid in (runner_pid, kernel_pid):
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def _executed(tmp_path, name, cell_id, streams):
    """An executed notebook as papermill leaves it: a random id on the injected cell, outputs split by timing."""
    nb = nbformat.v4.new_notebook()
    inj = nbformat.v4.new_code_cell("n = 7")
    inj.id, inj.metadata["tags"] = cell_id, ["injected-parameters"]
    work = nbformat.v4.new_code_cell("train()")
    work.id = "train"  # ids of the notebook's own cells come from the source notebook, the same in every run
    work.outputs = [nbformat.v4.new_output("stream", name=n, text=t) for n, t in streams]
    nb.cells = [inj, work]
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def test_clean_leaves_two_identical_runs_byte_identical(tmp_path):
    a = _executed(
        tmp_path,
        "a.ipynb",
        "b5402318",
        [
            ("stdout", "epoch 1 acc 41.2\n"),
            ("stderr", "zoo auto-pooling epoch 1/5: 1it [00:00, 24.85it/s, cost=27.63]"),
            ("stdout", "epoch 2 acc 47.0\n"),
            ("stderr", "[h264 @ 0x559267383480] A non-intra slice in an IDR NAL unit.\n"),
            ("stderr", " 40%|####      | 2/5 [00:01<00:01, 2.0it/s]\n[time] fit: 1.2 s\n"),
        ],
    )
    b = _executed(
        tmp_path,
        "b.ipynb",
        "0b52c622",
        [
            ("stdout", "epoch 1 acc 41.2\nepoch 2 acc 47.0\n"),
            ("stderr", "zoo auto-pooling epoch 1/5: 12it [00:00, 113.88it/s, cost=25.72]"),
            ("stderr", "[h264 @ 0x5597a0f34f80] A non-intra slice in an IDR NAL unit.\n"),
            ("stderr", "[time] fit: 1.9 s\n"),
        ],
    )
    for p in (a, b):
        runner.clean(p)
    assert a.read_bytes() == b.read_bytes()
    nb = json.loads(a.read_text())
    assert nb["cells"][0]["id"] == runner.INJECTED_ID and nbformat.validate(nbformat.reads(a.read_text(), 4)) is None
    outs = nb["cells"][1]["outputs"]
    assert [(o["name"], "".join(o["text"])) for o in outs] == [
        ("stdout", "epoch 1 acc 41.2\nepoch 2 acc 47.0\n"),
        ("stderr", "[h264 @ 0x...] A non-intra slice in an IDR NAL unit.\n"),
    ]
