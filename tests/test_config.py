"""params.yaml resolution, profile overlays, unknown keys, and notebook defaults equal to the smoke profile."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from poolrep import config, paths

DOC = {
    "profile": "cpu",
    "stage": {"n": 100, "lr": 0.1, "smoke": {"n": 5}, "paper": {"n": 10000, "lr": 0.01}},
}


def test_resolve_profiles():
    assert config.resolve("stage", DOC) == {"n": 100, "lr": 0.1, "profile": "cpu"}
    assert config.resolve("stage", DOC, profile="smoke") == {"n": 5, "lr": 0.1, "profile": "smoke"}
    assert config.resolve("stage", {**DOC, "profile": "paper"}) == {"n": 10000, "lr": 0.01, "profile": "paper"}


def test_resolve_errors():
    with pytest.raises(config.ParamsError, match="unknown profile 'gpu'"):
        config.resolve("stage", DOC, profile="gpu")
    with pytest.raises(config.ParamsError, match="no section 'nope'.*known stages: stage"):
        config.resolve("nope", DOC)
    bad = {"profile": "smoke", "stage": {"n": 1, "smoke": {"nn": 2}}}
    with pytest.raises(config.ParamsError, match=r"stage.smoke sets nn, which 'stage' does not define"):
        config.resolve("stage", bad)


def test_check_keys_names_the_unknown_parameter():
    with pytest.raises(config.ParamsError, match="unknown parameter\\(s\\) lamda for notebook x.ipynb"):
        config.check_keys({"lamda": 1, "seed": 0}, {"lam", "seed"}, "notebook x.ipynb")
    config.check_keys({"lam": 1}, {"lam", "seed"}, "x")


def test_load_missing_file(tmp_path):
    with pytest.raises(config.ParamsError, match="not found"):
        config.load(tmp_path / "params.yaml")


def test_project_params_resolve_in_every_profile():
    doc = config.load()
    assert doc["profile"] in config.PROFILES
    stages = [k for k, v in doc.items() if isinstance(v, dict)]
    assert "backbone" in stages
    for s in stages:
        for p in config.PROFILES:
            assert config.resolve(s, doc, profile=p)["profile"] == p


def _notebook_defaults(nb: Path) -> dict:
    cells = json.loads(nb.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{nb.name}: needs exactly one cell tagged 'parameters'"
    out = {}
    for node in ast.parse("".join(tagged[0]["source"])).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


# every notebook that is a stage (sweeps.ipynb is not one: it has no params.yaml section)
STAGE_NOTEBOOKS = sorted(p for p in paths.NOTEBOOKS.glob("*.ipynb") if p.stem in config.load())


def test_every_stage_notebook_is_checked():
    assert {p.stem for p in STAGE_NOTEBOOKS} >= {"autopool", "slowfeat", "pyramid", "crosslayer", "entropy", "zoo"}


@pytest.mark.parametrize("nb", STAGE_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_defaults_equal_smoke_profile(nb):
    """Parameters are defined once, in params.yaml: a notebook's defaults are exactly its smoke values."""
    doc = config.load()
    smoke = config.resolve(nb.stem, doc, profile="smoke")
    defaults = _notebook_defaults(nb)
    assert defaults.pop("out_dir", "absent") is None, "out_dir must default to None (scratch/)"
    assert defaults == smoke


@pytest.mark.parametrize("nb", sorted(paths.NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebook_uses_the_project_kernel(nb):
    """papermill, nbval and JupyterLab all pick the kernel from here: it must be the project's."""
    meta = json.loads(nb.read_text())["metadata"]
    assert meta.get("kernelspec", {}).get("name") == "poolrep", f"{nb.name}: jupytext --set-kernel poolrep {nb}"


def _keys(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield f"{path}.{k}".lstrip("."), str(k)
            yield from _keys(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _keys(v, f"{path}[{i}]")


def test_no_params_key_is_named_size_or_nfiles():
    """DVC's run-cache key leaves out every key called ``size`` or ``nfiles`` (dvc/stage/cache.py), so a stage whose
    such parameter changed would be served its old outputs. No key may carry those names, at any depth."""
    bad = [path for path, k in _keys(config.load()) if k in ("size", "nfiles")]
    assert not bad, f"rename these params keys (DVC's run-cache ignores them): {bad}"
    # and the check itself finds one nested deep in a profile overlay
    assert [p for p, k in _keys({"s": {"paper": {"x": [{"size": 1}]}}}) if k == "size"] == ["s.paper.x[0].size"]
