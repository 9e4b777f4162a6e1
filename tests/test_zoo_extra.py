"""Issue 35 item 3, "your pooling operator in the zoo": operators registered by import path in params.yaml
(``zoo.extra_operators``) get rows in the zoo's table and entries in metrics.json like the built-in ones; bad
import paths and wrong output shapes fail early with one clear message; the README's worked example runs as
written. The table is built by the functions the notebook calls (``resolve_extra_operators``,
``build_extra_ops``, ``evaluate``, ``stage_metrics``) on small synthetic maps, not on the backbone's cache."""

from __future__ import annotations

import csv
import json
import re
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from poolrep import config, io, paths
from poolrep.papers import zoo
from poolrep.pooling.global_pool import GlobalAvgPool, GlobalMaxPool

C, H, W = 6, 4, 4  # small maps: 6 channels, 4 x 4 locations

POOLS_PY = '''
import torch
from torch import nn


class TopMean(nn.Module):
    """Mean of each channel's k largest activations, then the channel's mean: N x C x H x W -> N x 2C."""

    def __init__(self, k: int = 3):
        super().__init__()
        self.k = k
        self.fit_calls = []

    def fit(self, train_maps, labels):
        self.fit_calls.append((tuple(train_maps.shape), train_maps.dtype, tuple(labels.shape), labels.dtype,
                               int(labels.max())))

    def forward(self, x):
        f = x.flatten(2)
        return torch.cat([f.topk(self.k, dim=-1).values.mean(-1), f.mean(-1)], dim=1)


class Unflattened(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3), keepdim=True)  # N x C x 1 x 1: forgot to flatten


class OverTheBatch(nn.Module):
    def forward(self, x):
        return x.mean(dim=(0, 2, 3))[None]  # 1 x C: pooled the batch away


class NotFinite(nn.Module):
    def forward(self, x):
        return torch.log(x.flatten(2).min(-1).values - 1e9)  # log of a negative number: NaN


class Gap(nn.Module):  # its id would be "gap", a built-in operator's
    def forward(self, x):
        return x.mean(dim=(2, 3))


def helper(x):
    return x
'''


@pytest.fixture
def fresh_modules():
    """Forget the modules a test imported from its temporary folders (sys.path itself is restored by monkeypatch)."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.split(".")[0] in ("mypools", "zooextra_pkg", "zooextra_broken"):
            del sys.modules[name]


@pytest.fixture
def pkg(tmp_path, monkeypatch, fresh_modules):
    """A temporary package ``zooextra_pkg`` (``pools`` module above) importable through sys.path."""
    root = tmp_path / "site"
    (root / "zooextra_pkg").mkdir(parents=True)
    (root / "zooextra_pkg" / "__init__.py").write_text("")
    (root / "zooextra_pkg" / "pools.py").write_text(POOLS_PY)
    (root / "zooextra_broken").mkdir()
    (root / "zooextra_broken" / "__init__.py").write_text("")
    (root / "zooextra_broken" / "needs_dep.py").write_text("import zooextra_not_installed_dep\n")
    monkeypatch.syspath_prepend(str(root))
    return root


def synthetic(seed: int = 0):
    """``(bb, inp)`` as the notebook has them, small: CIFAR-like maps of 2 classes (channel 0 carries the class),
    a 4-group pairs set and a 2-query scene set."""
    rng = np.random.default_rng(seed)

    def maps(n, shift=None):
        m = rng.random((n, C, H, W)).astype(np.float32)
        if shift is not None:
            m[:, 0] += 2.0 * shift[:, None, None]
        return m.astype(np.float16)  # the backbone cache stores float16

    ytr, yte = np.repeat([0, 1], 20), np.repeat([0, 1], 10)
    bb = {
        "train_maps": maps(40, ytr),
        "train_prev_maps": None,
        "train_labels": ytr,
        "test_maps": maps(20, yte),
        "test_prev_maps": None,
        "test_labels": yte,
    }
    pairs_maps = maps(8)
    pairs_maps[1::2] = pairs_maps[::2] + np.float16(0.05)  # each group: an image and a near copy
    scene_maps = maps(6)
    scene_maps[1:3] = scene_maps[0] + np.float16(0.05)
    inp = {
        "pairs": SimpleNamespace(groups=[[0, 1], [2, 3], [4, 5], [6, 7]]),
        "pairs_maps": (pairs_maps, None),
        "scenes": SimpleNamespace(queries=[0, 3], positives=[[1, 2], [4, 5]], junk=[[0], [3]]),
        "scene_maps": (scene_maps, None),
    }
    return bb, inp


def reference_ops():
    return [
        zoo.Op("global average (GAP)", "reference", "pooling.global_pool", GlobalAvgPool(), id="gap"),
        zoo.Op("global max", "reference", "pooling.global_pool", GlobalMaxPool(), id="gmp"),
    ]


P = config.resolve("zoo", profile="smoke")  # the project's zoo parameters: its built-in ids are reserved


def run_zoo(entries, bb, inp):
    """What the notebook does with ``zoo.extra_operators``: resolve, fit + probe, evaluate, metrics."""
    extras = zoo.resolve_extra_operators(entries, reserved=zoo.builtin_ids(P))
    extra_ops, fit_s = zoo.build_extra_ops(extras, bb["train_maps"], bb["train_labels"], "cpu")
    ops = reference_ops() + extra_ops
    table, times, scores = zoo.evaluate(ops, bb, inp, P["probe_alphas"], "cpu", seed=0)
    metrics, learned_s = zoo.stage_metrics(ops, scores, {}, zoo.alpha_at_grid_edge(table, P["probe_alphas"]))
    return extras, ops, table, scores, metrics, fit_s


def assert_row_like_a_builtin(table, scores, name, op_id, dim):
    """The operator's row has every measure as a number with an interval that holds it and a tie mark, and its
    metrics entry has the same numbers."""
    row = table.set_index("operator").loc[name]
    assert row["dim"] == dim
    for m, (_, scale) in zoo.METRICS.items():
        v = float(row[m])
        assert np.isfinite(v) and 0 <= v <= scale
        lo, hi = (float(x) for x in re.fullmatch(r"\[(.+), (.+)\]", row[f"{m} 95% CI"]).groups())
        assert lo <= float(f"{v:.3g}") <= hi
        assert row[f"{m} tied with best"] in ("best", "tied", "")
        s = scores[op_id][zoo.METRIC_IDS[m]]
        assert s["value"] == pytest.approx(v) and s["lo"] <= s["value"] <= s["hi"]
        assert f"{s['lo']:.3g}" == f"{lo:.3g}" and f"{s['hi']:.3g}" == f"{hi:.3g}"
        assert s["best"] == (row[f"{m} tied with best"] == "best")
        assert s["tied_with_best"] == (row[f"{m} tied with best"] != "")
    assert scores[op_id]["dim"] == dim


def test_extra_operator_from_a_temporary_package_gets_a_row_like_the_builtin_ones(pkg):
    bb, inp = synthetic()
    entries = [
        "zooextra_pkg.pools:TopMean",
        {"class": "zooextra_pkg.pools:TopMean", "kwargs": {"k": 1}, "id": "topmean_k1"},
    ]
    extras, ops, table, scores, metrics, fit_s = run_zoo(entries, bb, inp)

    assert [e.id for e in extras] == ["topmean", "topmean_k1"] and [e.name for e in extras] == [
        "TopMean",
        "TopMean(k=1)",
    ]
    assert table["operator"].tolist() == ["global average (GAP)", "global max", "TopMean", "TopMean(k=1)"]
    # fit ran once per operator, on the float32 training maps and int64 labels, before the evaluation
    for e in extras:
        assert e.pool.fit_calls == [((40, C, H, W), torch.float32, (40,), torch.int64, 1)]
    assert set(fit_s) == {"topmean", "topmean_k1"} and all(t >= 0 for t in fit_s.values())
    row = table.set_index("operator").loc["TopMean"]
    assert (row["paper"], row["module"]) == ("extra", "zooextra_pkg.pools")
    assert row["learned_from"] == "fit() on the CIFAR-10 training maps and labels (40 images)"
    assert 0.1 <= row["probe_alpha"] <= 1e6
    assert_row_like_a_builtin(table, scores, "TopMean", "topmean", 2 * C)
    assert_row_like_a_builtin(table, scores, "TopMean(k=1)", "topmean_k1", 2 * C)
    assert_row_like_a_builtin(table, scores, "global average (GAP)", "gap", C)
    # channel 0 carries the class: every operator that keeps channel 0's mean classifies the test maps well
    assert table.set_index("operator").loc[["global average (GAP)", "TopMean"], "cifar10_probe_acc"].min() >= 90
    # TopMean(k=1)'s first C values are the global max: its descriptors start with GMP's
    x = torch.as_tensor(bb["test_maps"]).float()
    torch.testing.assert_close(ops[3].pool(x)[:, :C], GlobalMaxPool()(x))

    # metrics.json: short keys at the source, so io.save_metrics has nothing to rename
    assert set(metrics["operators"]) == {"gap", "gmp", "topmean", "topmean_k1"}
    assert set(metrics["operators"]["topmean"]) == {
        "dim",
        "cifar10_probe_acc",
        "cifar10_class_map",
        "pairs_map",
        "video_scene_map",
    }
    assert set(metrics["operators"]["topmean"]["pairs_map"]) == {"value", "lo", "hi", "tied_with_best", "best"}
    assert io.machine_metrics(metrics) == metrics
    assert all(i in ("gap", "gmp", "topmean", "topmean_k1") for i in metrics["probe_alpha_at_grid_edge"])


def test_saved_metrics_keep_the_structure(pkg, tmp_path):
    bb, inp = synthetic(1)
    *_, metrics, _ = run_zoo(["zooextra_pkg.pools:TopMean"], bb, inp)
    io.save_metrics(tmp_path, metrics)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    v = saved["operators"]["topmean"]["video_scene_map"]
    assert v == {k: pytest.approx(metrics["operators"]["topmean"]["video_scene_map"][k]) for k in v}
    assert isinstance(v["tied_with_best"], bool) and saved["operators"]["topmean"]["dim"] == 2 * C


def test_the_tables_columns_are_the_committed_zoo_tables():
    """Extra operators change no column: the table has exactly the columns of results/zoo/tables/zoo.csv."""
    bb, inp = synthetic(2)
    table, _, scores = zoo.evaluate(reference_ops(), bb, inp, P["probe_alphas"], "cpu")
    with open(paths.RESULTS / "zoo" / "tables" / "zoo.csv", newline="") as f:
        committed = next(csv.reader(f))
    assert table.columns.tolist() == committed
    assert table["operator"].tolist() == ["global average (GAP)", "global max"] and list(scores) == ["gap", "gmp"]


def test_builtin_operators_keep_their_committed_names_and_get_short_ids():
    """build_ops with the project's cpu parameters (tiny synthetic maps, one epoch of learning) gives exactly the
    operators of the committed results/zoo/tables/zoo.csv, in its order, each with the id builtin_ids promises."""
    p = {**config.resolve("zoo", profile="cpu"), "autopool_epochs": 1, "cross_pca_samples": 500}
    head = {**config.resolve("entropy", profile="smoke"), "head_epochs": 1}
    pyramids = config.resolve("pyramid", profile="cpu")["pyramids"]
    rng = np.random.default_rng(0)
    train, prev = rng.random((40, 8, 6, 6)).astype(np.float16), rng.random((40, 4, 6, 6)).astype(np.float16)
    video = (rng.random((5, 8, 6, 6)).astype(np.float32), rng.random((5, 8, 6, 6)).astype(np.float32))
    torch.manual_seed(0)
    ops, _ = zoo.build_ops(p, train, prev, np.repeat([0, 1], 20), video, torch.nn.Linear(8, 10), "cpu", head, pyramids)
    with open(paths.RESULTS / "zoo" / "tables" / "zoo.csv", newline="") as f:
        committed = [r["operator"] for r in csv.DictReader(f)]
    assert [o.name for o in ops] == committed
    ids = [o.id for o in ops]
    assert ids == zoo.builtin_ids(p)
    assert ids[:5] == ["gap", "gmp", "gem_p3", "sp_2x2", "sp_1x1_2x2"]
    assert ids[-4:] == ["cross_layer", "entropy_linear", "entropy_softmax", "attention"]
    assert len(set(ids)) == len(ids) and all(io.SLUG_RE.match(i) and len(i) <= 16 for i in ids)
    assert zoo.builtin_ids({**p, "gem_p": 2.5})[2] == "gem_p2_5"


def test_readme_worked_example_runs_as_written(tmp_path, monkeypatch, fresh_modules):
    """The README's "Evaluate your own pooling operator" example, as written: its module file (written where the
    README says, under a stand-in repository root on sys.path), its params.yaml entry, and its shell command,
    ``dvc repro zoo``, which runs notebooks/zoo.ipynb. This test calls the package functions that notebook calls
    (resolve_extra_operators, build_extra_ops, evaluate) on synthetic maps instead of running the stage."""
    readme = (paths.ROOT / "README.md").read_text()
    section = readme.split("## Evaluate your own pooling operator", 1)[1].split("\n## ", 1)[0]
    blocks = dict(re.findall(r"<!-- zoo-example: (\S+) -->\n```\w+\n(.*?)```", section, flags=re.S))
    assert set(blocks) == {"mypools/softpool.py", "params.yaml", "shell"}
    assert "dvc repro zoo" in blocks["shell"]
    entries = yaml.safe_load(blocks["params.yaml"])["zoo"]["extra_operators"]
    assert entries == ["mypools.softpool:SoftPool"]
    # the -S variant lists the same entries (Hydra's override grammar, as `dvc exp run -S` parses it)
    from hydra.core.override_parser.overrides_parser import OverridesParser

    override = re.search(r"-S '(zoo\.extra_operators=.*?)'", blocks["shell"]).group(1)
    assert OverridesParser.create().parse_overrides([override])[0].value() == entries

    module = tmp_path / "mypools" / "softpool.py"
    module.parent.mkdir()
    module.write_text(textwrap.dedent(blocks["mypools/softpool.py"]))
    monkeypatch.syspath_prepend(str(tmp_path))
    bb, inp = synthetic(3)
    extras, ops, table, scores, metrics, _ = run_zoo(entries, bb, inp)

    assert [(e.id, e.name, e.module) for e in extras] == [("softpool", "SoftPool", "mypools.softpool")]
    row = table.set_index("operator").loc["SoftPool"]
    assert (row["paper"], row["module"]) == ("extra", "mypools.softpool")
    assert row["learned_from"].startswith("fit() on the CIFAR-10 training maps")
    assert_row_like_a_builtin(table, scores, "SoftPool", "softpool", C)
    # fit set each channel's spread; SoftPool lies between the channel's mean and max (a softmax-weighted mean)
    x = torch.as_tensor(bb["train_maps"]).float()
    soft = extras[0].pool
    torch.testing.assert_close(soft.scale, x.std(dim=(0, 2, 3)))
    y = soft(x)
    assert (y >= x.mean(dim=(2, 3)) - 1e-5).all() and (y <= x.amax(dim=(2, 3)) + 1e-5).all()
    assert (y > x.mean(dim=(2, 3)) + 1e-4).float().mean() > 0.9  # and weighs the strong responses up
    assert metrics["operators"]["softpool"]["dim"] == C


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            "zooextra_nowhere.pools:TopMean",
            r"'zooextra_nowhere.pools:TopMean'.*no module named 'zooextra_nowhere'.*PYTHONPATH",
        ),
        (
            "zooextra_pkg.pools:Missing",
            r"'zooextra_pkg.pools:Missing'.*has no attribute 'Missing'.*defines: .*TopMean.*fix the name after ':'",
        ),
        (
            "zooextra_pkg.pools.TopMean",
            r"'zooextra_pkg.pools.TopMean' is not an import path.*no ':'.*write it as 'zooextra_pkg.pools:TopMean'",
        ),
        ("zooextra_pkg.pools:", r"'zooextra_pkg.pools:' is not 'package.module:ClassName'"),
        ("zooextra_pkg.pools:helper", r"'zooextra_pkg.pools:helper'.*not a subclass of torch.nn.Module"),
        (
            "zooextra_broken.needs_dep:X",
            r"'zooextra_broken.needs_dep:X'.*imports 'zooextra_not_installed_dep'.*install",
        ),
        ({"class": "zooextra_pkg.pools:TopMean", "kwargs": {"kk": 2}}, r"TopMean\(\*\*\{'kk': 2\}\) raised TypeError"),
        ("zooextra_pkg.pools:Gap", r"'zooextra_pkg.pools:Gap'.*id 'gap'.*already taken by a built-in operator"),
    ],
)
def test_import_paths_that_do_not_resolve_name_the_entry_and_the_fix(pkg, entry, message):
    with pytest.raises(zoo.ExtraOperatorError, match=message):
        zoo.resolve_extra_operators([entry], reserved=zoo.builtin_ids(P))


def test_an_entry_point_name_resolves_through_its_group(pkg):
    """An installed distribution may declare ``[project.entry-points."poolrep.pooling"] topmean = "...:TopMean"``;
    its name is then an entry of zoo.extra_operators (here a dist-info folder on sys.path stands in for pip)."""
    info = pkg / "zooextra_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zooextra-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[poolrep.pooling]\nzooextra_topmean = zooextra_pkg.pools:TopMean\n")
    (ex,) = zoo.resolve_extra_operators(["zooextra_topmean"])
    assert (ex.path, ex.id, ex.module, type(ex.pool).__name__) == (
        "zooextra_pkg.pools:TopMean",
        "topmean",
        "zooextra_pkg.pools",
        "TopMean",
    )


def test_two_entries_with_one_id_are_refused(pkg):
    with pytest.raises(zoo.ExtraOperatorError, match=r"id 'topmean'.*already taken.*give the entry its own id"):
        zoo.resolve_extra_operators(["zooextra_pkg.pools:TopMean", "zooextra_pkg.pools:TopMean"])
    with pytest.raises(zoo.ExtraOperatorError, match="must be a list"):
        zoo.resolve_extra_operators("zooextra_pkg.pools:TopMean")


@pytest.mark.parametrize(
    "cls, message",
    [
        (
            "Unflattened",
            r"entry 'zooextra_pkg.pools:Unflattened': operator 'Unflattened' returned shape \(4, 6, 1, 1\) for a batch of maps 4 x 6 x 4 x 4; "
            r"expected a tensor N x D = 4 x D",
        ),
        (
            "OverTheBatch",
            r"operator 'OverTheBatch' returned shape \(1, 6\) for a batch of maps 4 x 6 x 4 x 4; "
            r"expected a tensor N x D = 4 x D",
        ),
        ("NotFinite", r"operator 'NotFinite' returned NaN or inf on a probe batch"),
    ],
)
def test_wrong_output_shape_fails_on_the_probe_batch_before_the_evaluation(pkg, cls, message, monkeypatch):
    bb, _ = synthetic()
    extras = zoo.resolve_extra_operators([f"zooextra_pkg.pools:{cls}"])
    calls = []
    monkeypatch.setattr(zoo, "apply", lambda *a, **k: calls.append(a))  # the evaluation's pooling: never reached
    with pytest.raises(zoo.OperatorOutputError, match=message):
        zoo.build_extra_ops(extras, bb["train_maps"], bb["train_labels"], "cpu")
    assert calls == []


def test_apply_checks_every_batch_of_every_operator():
    class Swap(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3)).T  # C x N: right on a square batch, wrong on any other

    maps = np.random.default_rng(0).random((10, 4, 3, 3)).astype(np.float32)
    op = zoo.Op("swapped", "reference", "here", Swap())
    with pytest.raises(
        zoo.OperatorOutputError,
        match=r"'swapped' returned shape \(4, 3\) for a batch of maps "
        r"3 x 4 x 3 x 3; expected a tensor N x D = 3 x D",
    ):
        zoo.apply(op, maps, None, batch=3)
    desc, _ = zoo.apply(zoo.Op("gap", "reference", "pooling.global_pool", GlobalAvgPool()), maps, None, batch=3)
    np.testing.assert_allclose(desc, maps.mean(axis=(2, 3)), rtol=1e-6)


def test_extra_operators_is_a_param_of_every_profile_and_of_the_notebook():
    for profile in config.PROFILES:
        assert config.resolve("zoo", profile=profile)["extra_operators"] == []
    nb = json.loads((paths.NOTEBOOKS / "zoo.ipynb").read_text())
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "extra_operators = []" in code and 'zoo.resolve_extra_operators(p["extra_operators"]' in code
