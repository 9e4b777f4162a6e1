"""dvc.yaml lists, for every stage, exactly the package files the stage imports (tools/stage_deps.py), so a change
to any imported file reruns its stage and a file it no longer imports does not."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import stage_deps  # noqa: E402


def test_every_stage_lists_exactly_what_it_imports():
    bad = stage_deps.check()
    assert not bad, "dvc.yaml deps differ from the imports (run `python tools/stage_deps.py`): " + repr(bad)


def test_closure_follows_relative_lazy_imports_and_parent_packages():
    files = {p.relative_to(stage_deps.SRC).as_posix() for p in stage_deps.closure({"poolrep.papers.zoo"})}
    # zoo imports the shared operators relatively (pooling.crosslayer, pooling.postprocess), never another paper;
    # every parent package's __init__ runs too; its heads come from poolrep.heads
    assert {
        "poolrep/papers/zoo.py",
        "poolrep/pooling/postprocess.py",
        "poolrep/pooling/crosslayer.py",
        "poolrep/heads.py",
        "poolrep/papers/__init__.py",
        "poolrep/__init__.py",
    } <= files
    assert "poolrep/report.py" not in files and not any(f.startswith("poolrep/papers/entropy") for f in files)
    assert not [
        f
        for f in files
        if f.startswith("poolrep/papers/") and f not in ("poolrep/papers/zoo.py", "poolrep/papers/__init__.py")
    ]
    # papers.entropy imports metrics.classification and metrics.localization only lazily (inside functions)
    lazy = {p.relative_to(stage_deps.SRC).as_posix() for p in stage_deps.closure({"poolrep.papers.entropy"})}
    assert {
        "poolrep/metrics/classification.py",
        "poolrep/metrics/localization.py",
        "poolrep/metrics/__init__.py",
        "poolrep/heads.py",
    } <= lazy


def test_imports_in_resolves_from_imports_of_modules():
    tree = ast.parse(
        "from poolrep import io, paths\nfrom poolrep.papers import autopool\nimport numpy\n"
        "def f():\n    from ..data.cifar import load_cifar10\n"
    )
    got = stage_deps.imports_in(tree, "poolrep.papers.x")
    assert got == {
        "poolrep",
        "poolrep.io",
        "poolrep.paths",
        "poolrep.papers",
        "poolrep.papers.autopool",
        "poolrep.data.cifar",
    }


def test_check_reports_a_missing_and_a_stale_dependency(tmp_path):
    doc = yaml.safe_load((stage_deps.ROOT / "dvc.yaml").read_text())
    deps = doc["stages"]["report"]["deps"]
    deps.remove("src/poolrep/report.py")
    deps.append("src/poolrep/papers/zoo.py")
    bad_yaml = tmp_path / "dvc.yaml"
    bad_yaml.write_text(yaml.safe_dump(doc))
    bad = stage_deps.check(bad_yaml)
    assert bad == {"report": {"missing": ["src/poolrep/report.py"], "extra": ["src/poolrep/papers/zoo.py"]}}


def test_the_report_depends_on_its_templates_folder():
    """The report's templates are package data, not imports: the report stage lists the folder (any file changed in
    it reruns the stage), and a listed folder of package data counts as itself, not as the .py files under it."""
    files = stage_deps.stage_files("poolrep report")
    assert stage_deps.SRC / "poolrep" / "templates" in files
    assert stage_deps.SRC / "poolrep" / "papers_index.py" in files
    assert stage_deps.listed_src(["src/poolrep/templates"]) == {stage_deps.SRC / "poolrep" / "templates"}
    assert (stage_deps.SRC / "poolrep" / "templates" / "report.html.j2").is_file()


def test_no_paper_imports_another():
    """The guide's rule: shared pieces live in pooling/, metrics/, data/; a paper's module (or package) imports no
    other paper's."""
    papers = sorted(
        p.stem if p.is_file() else p.name
        for p in (stage_deps.SRC / "poolrep" / "papers").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    )
    assert {"pyramid", "crosslayer", "zoo"} <= set(papers)
    for name in papers:
        files = {q.relative_to(stage_deps.SRC).as_posix() for q in stage_deps.closure({f"poolrep.papers.{name}"})}
        others = {
            f
            for f in files
            if f.startswith("poolrep/papers/") and f.split("/")[2].removesuffix(".py") not in (name, "__init__")
        }
        assert not others, f"papers.{name} imports another paper: {sorted(others)}"
