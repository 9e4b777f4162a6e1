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
    assert run["params"] == {"n": 7, "fail": False, "profile": "cpu"} and run["notebook_s"] > 0 and "commit" in run["git"]
    # the committed notebook carries no timestamps, durations, absolute paths or progress bars; warnings stay
    nb = json.loads((final / "notebook.ipynb").read_text())
    text = json.dumps([nb["metadata"]] + [[c["metadata"], c.get("outputs")] for c in nb["cells"]])
    for volatile in ("start_time", "end_time", "duration", "input_path", "iopub", "[time]", "it/s", str(root)):
        assert volatile not in text, volatile
    assert "a warning that stays" in text
    final = runner.run("toy", profile="smoke", results=root / "results")
    assert json.loads((final / "metrics.json").read_text()) == {"n": 2, "profile": "smoke",
                                                                 "run": {**ident, "profile": "smoke"}}
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
