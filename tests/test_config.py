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


# ---------- issue 15: types, ranges and the backbone block's keys are checked before any work ----------


def _one(key, value, smoke_value="same", **more):
    """A doc whose ``s`` stage sets ``key`` to ``value`` in the cpu profile (and ``smoke_value`` in smoke)."""
    section = {key: value, **more}
    if smoke_value != "same":
        section["smoke"] = {key: smoke_value}
    return {"profile": "cpu", "s": section}


@pytest.mark.parametrize(
    "key, value, smoke, error",
    [
        ("n", 5.0, 5, "s.n = 5.0 is a float; expected an int \\(like its smoke value 5\\)"),
        ("n", True, 5, "s.n = True is a bool; expected an int"),
        ("flag", 1, True, "s.flag = 1 is an int; expected a bool"),
        ("name", 3, "a", "s.name = 3 is an int; expected a string"),
        ("ks", "1,2", [1, 2], "s.ks = '1,2' is a string; expected a list"),
        ("opts", [1], {"a": 1}, "s.opts = \\[1\\] is a list; expected a mapping"),
        ("extract_procs", "many", 1, "s.extract_procs = 'many' is a string; expected an int"),
    ],
)
def test_wrong_types_are_refused(key, value, smoke, error):
    with pytest.raises(config.ParamsError, match=error):
        config.resolve("s", _one(key, value, smoke))


@pytest.mark.parametrize(
    "key, value, smoke",
    [
        ("lr", 1, 0.5),  # a float key accepts an int
        ("n", None, 5),  # null ("no cut", "all") anywhere
        ("opt", 7, None),  # anything where the smoke value is null
        ("opt", "x", None),
        ("extract_procs", "auto", 1),  # "auto" (decided at run time) where a number is expected ...
        ("segment_gap", 3, "auto"),  # ... and a number where the smoke value is "auto"
        ("seed", 0, 0),  # 0 is in range for a seed ...
        ("lambdas", [0.0, 1.0], [0.0]),  # ... and a weight
    ],
)
def test_right_types_and_ranges_pass(key, value, smoke):
    assert config.resolve("s", _one(key, value, smoke))[key] == value


@pytest.mark.parametrize(
    "key, value, error",
    [
        ("lr", -0.5, "s.lr = -0.5: -0.5 is out of range; it must be >= 0"),
        ("ks", [4, -2], "s.ks = \\[4, -2\\]: -2 is out of range; it must be >= 0"),
        ("input_px", 0, "s.input_px = 0: 0 is out of range; it must be > 0"),
        ("epochs", 0, "s.epochs = 0: 0 is out of range; it must be > 0"),
        ("steps1", 0, "s.steps1 = 0: 0 is out of range; it must be > 0"),
        ("batch_size", 0, "s.batch_size = 0: 0 is out of range; it must be > 0"),
        ("train_per_class", 0, "s.train_per_class = 0: 0 is out of range; it must be > 0"),
        ("extract_procs", 0, "s.extract_procs = 0: 0 is out of range; it must be > 0"),
        ("nan_weight", float("nan"), "s.nan_weight = nan: nan is out of range"),
    ],
)
def test_out_of_range_numbers_are_refused(key, value, error):
    with pytest.raises(config.ParamsError, match=error):
        config.resolve("s", _one(key, value))  # the same value in smoke: only the range can fail
    assert config.resolve("s", _one(key, None))[key] is None  # null is always allowed


def test_backbone_block_accepts_exactly_the_keys_the_stage_reads():
    import copy

    from poolrep import stages

    doc = copy.deepcopy(config.load())
    assert set(config.resolve("backbone", doc)) == set(stages.BACKBONE_KEYS) | {"profile"}
    doc["backbone"]["batchsize"] = 32
    with pytest.raises(
        config.ParamsError,
        match="backbone.batchsize = 32 \\(profile cpu\\): unknown key; 'backbone' accepts: "
        "batch_size, extract_procs, input_px, net, seed, test_per_class, "
        "train_per_class",
    ):
        config.resolve("backbone", doc)
    del doc["backbone"]["batchsize"]
    del doc["backbone"]["seed"]
    with pytest.raises(config.ParamsError, match="backbone.seed is missing \\(profile cpu\\); allowed: an int >= 0"):
        config.resolve("backbone", doc)


def test_backbone_stage_checks_params_before_any_work(monkeypatch):
    import copy

    from poolrep import stages

    doc = copy.deepcopy(config.load())
    doc["backbone"]["input_px"] = -192
    monkeypatch.setattr(config, "load", lambda path=None: doc)
    work = []
    monkeypatch.setattr(stages, "_backbone", lambda *a, **k: work.append(a))
    monkeypatch.setattr(stages, "load_cifar10", lambda *a, **k: work.append(a))
    with pytest.raises(
        config.ParamsError,
        match="backbone.input_px = -192 \\(profile cpu\\): Input should be greater than 0; allowed: an int > 0",
    ):
        stages.backbone()
    with pytest.raises(config.ParamsError, match="backbone.input_px = -192"):
        stages.backbone(hand=True)
    assert work == []
