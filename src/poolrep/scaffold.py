"""``poolrep new STAGE --title ... --source ...``: a new paper stage in the uniform paper shape, runnable as made.

It writes ``src/poolrep/papers/<stage>/`` (``__init__``, ``model``, ``experiment``, ``figures``, ``claims``: an
example experiment on the cached CIFAR-10, one claim tested on its own numbers and one declared not testable;
``params``: the pydantic model of its params block, which :mod:`poolrep.schema` takes in, so the stage's parameters
are checked like every stage's),
``notebooks/<stage>.ipynb`` (its ``parameters`` cell holds the smoke values), a params block (cpu values with
``smoke`` and ``paper`` overrides), the ``dvc.yaml`` stage (deps from ``tools/stage_deps.py --write``, outs as every
paper stage's) and the report stage's deps on its results, the paper's entry in :mod:`poolrep.papers_index`, and
``tests/test_<stage>.py``. It refuses a name that is no slug (``^[a-z][a-z0-9_]*$``) or that any of these already
uses, before it writes anything. The files it writes come from ``poolrep/scaffold_templates/``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from . import paths

SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
MODULES = ("__init__", "model", "experiment", "figures", "claims", "params")
MARKER = "        # poolrep new: new papers go above this line"
PARAMS = """
{stage}:  # what each key may be: src/poolrep/papers/{stage}/params.py (a new key goes there too)
  seed: 0
  grids: [2, 4, 8]          # average-pooling grids (g x g cells per channel) compared by the example claim
  train_per_class: 200      # class-balanced CIFAR-10 subset (null: all)
  test_per_class: 100       # 1,000 test images: the claim's paired interval is over these
  smoke:
    train_per_class: 20
    test_per_class: 10
  paper:
    train_per_class: null
    test_per_class: null
"""
SMOKE = {"seed": 0, "grids": [2, 4, 8], "train_per_class": 20, "test_per_class": 10}
OUTS = ("notebook.ipynb", "tables", "figures", "run.json", "claims.json")
STAGE = """  {stage}:
    cmd: poolrep run {stage}
    deps:
      - notebooks/{stage}.ipynb
      - cache/cifar10.npz
      - manifests/cifar10.json
    params:
      - profile
      - {stage}
    outs:  # git-tracked (a clone shows them); persist: the runner swaps the folder in when the run succeeded
{outs}
    metrics:
      - results/{stage}/metrics.json:
          cache: false
          persist: true

"""


class ScaffoldError(ValueError):
    """The name is no slug, or a stage, module, notebook, params block or paper of that name exists."""


def _template(name: str) -> str:
    return resources.files("poolrep").joinpath("scaffold_templates", name).read_text()


def taken(stage: str, root: Path) -> list[str]:
    """Where ``stage`` is already used (empty: free)."""
    import yaml

    where = []
    if stage in ((yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages") or {}):
        where.append("a dvc.yaml stage")
    if stage in (yaml.safe_load((root / "params.yaml").read_text()) or {}):
        where.append("a params.yaml block")
    pkg = root / "src" / "poolrep" / "papers"
    if (pkg / stage).exists() or (pkg / f"{stage}.py").exists():
        where.append("a module under src/poolrep/papers")
    if (root / "notebooks" / f"{stage}.ipynb").exists():
        where.append("a notebook")
    if re.search(rf'Paper\(\s*"{stage}"', (root / "src" / "poolrep" / "papers_index.py").read_text()):
        where.append("a paper in papers_index.py")
    if (root / "tests" / f"test_{stage}.py").exists():
        where.append("a test file")
    if re.search(rf'^\s*"{stage}":', (root / "src" / "poolrep" / "schema.py").read_text(), re.M):
        where.append("a model in schema.py")
    return where


def notebook(stage: str, title: str, citation: str, source: str) -> str:
    import nbformat

    v4 = nbformat.v4
    params = "\n".join(f"{k} = {v!r}" for k, v in SMOKE.items()) + '\nprofile = "smoke"\nout_dir = None'
    nb = v4.new_notebook(
        cells=[
            v4.new_markdown_cell(
                f"# {title}\n\n{citation}. Source: {source}.\n\nMade by `poolrep new`: an example experiment "
                "(average pooling of CIFAR-10 pixels, nearest class mean) and its claims; replace them by the paper's."
            ),
            v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
            v4.new_code_cell(
                "from IPython.display import display\n\n"
                "from poolrep import claims as ledger\n"
                "from poolrep import config, io, paths\n"
                "from poolrep.device import RunLog\n"
                f"from poolrep.papers.{stage} import claims, experiment, figures\n\n"
                f'p = config.collect("{stage}", globals())\n'
                f'out = paths.out_dir("{stage}", out_dir)\n'
                f'run = RunLog("{stage}", seed=seed, profile=profile).start()'
            ),
            v4.new_code_cell(
                "res = experiment.run(p, run)\n"
                'io.save_table(res["table"], out, "accuracy", title="Accuracy (%) per pooling grid")\n'
                'io.save_figure(figures.accuracy_by_grid(res["table"]), out, "accuracy_by_grid")\n'
                'display(res["table"])'
            ),
            v4.new_code_cell(
                "rows = claims.claims(res, p)\n"
                'io.save_figure(ledger.forest_plot(rows, "each claim\'s estimate and 95 % interval"), out, "claims")\n'
                "metrics = {\n"
                '    "accuracy": {r["method"]: r["ours"] for r in res["table"].to_dict("records")},\n'
                '    "n_test": res["n_test"],\n'
                '    "claims": [c.as_dict() for c in rows],\n'
                "}\n"
                "io.save_metrics(out, metrics, run.finish())"
            ),
        ],
        metadata={"kernelspec": {"name": "poolrep", "display_name": "Python (poolrep)", "language": "python"}},
    )
    return nbformat.writes(nb)


def _insert_stage(text: str, stage: str) -> str:
    """dvc.yaml with the new stage before ``report`` and the report's deps on the new stage's results."""
    outs = "\n".join(f"      - results/{stage}/{o}:\n          cache: false\n          persist: true" for o in OUTS)
    lines = text.splitlines(keepends=True)
    at = lines.index("  report:\n")
    lines[at:at] = STAGE.format(stage=stage, outs=outs).splitlines(keepends=True)
    at = lines.index("  report:\n")
    out_at = next(i for i in range(at, len(lines)) if lines[i] == "    outs:\n")
    deps = ["tables", "figures", "metrics.json", "run.json", "claims.json", "notebook.ipynb"]
    lines[out_at:out_at] = [f"      - results/{stage}/{d}\n" for d in deps]
    return "".join(lines)


def _text(s: str) -> str:
    """``s`` safe inside the templates' Python strings and docstrings (no quote, no backslash, one line)."""
    return " ".join(s.replace("\\", "/").replace('"', "'").split())


def new(stage: str, title: str, source: str, citation: str = "", root: Path | None = None) -> list[Path]:
    """Scaffold the paper stage ``stage`` under ``root`` (default: this repository); returns the files written.

    All or nothing: if a step fails, the files it made are removed and params.yaml, dvc.yaml and papers_index.py
    are put back as they were, so the name is free again."""
    root = Path(root or paths.ROOT)
    if not SLUG.match(stage):
        raise ScaffoldError(f"{stage!r} is no valid stage name (lower case letter, then letters, digits, _)")
    where = taken(stage, root)
    if where:
        raise ScaffoldError(f"{stage!r} exists already: {', '.join(where)}")
    citation = citation or source
    fill = {"stage": stage, "title": _text(title), "citation": _text(citation), "source": _text(source)}
    pkg = root / "src" / "poolrep" / "papers" / stage
    index = root / "src" / "poolrep" / "papers_index.py"
    edited = {f: f.read_text() for f in (root / "params.yaml", root / "dvc.yaml", index)}
    written = [pkg / f"{m}.py" for m in MODULES] + [
        root / "tests" / f"test_{stage}.py",
        root / "notebooks" / f"{stage}.ipynb",
    ]
    made = False
    try:
        pkg.mkdir(parents=True)
        made = True
        for m in MODULES:
            (pkg / f"{m}.py").write_text(_template(f"{m}.py.tmpl").format(**fill))
        written[-2].write_text(_template("test.py.tmpl").format(**fill))
        written[-1].write_text(notebook(stage, title, citation, source))
        with open(root / "params.yaml", "a") as f:
            f.write(PARAMS.format(stage=stage))
        strings = (json.dumps(s, ensure_ascii=False) for s in (stage, title, citation, citation))  # Python literals
        entry = "        Paper(\n" + "".join(f"            {s},\n" for s in strings) + "        ),\n"
        index.write_text(edited[index].replace(MARKER, entry + MARKER, 1))
        (root / "dvc.yaml").write_text(_insert_stage(edited[root / "dvc.yaml"], stage))
        subprocess.run([sys.executable, str(root / "tools" / "stage_deps.py"), "--write"], cwd=root, check=True)
    except BaseException:
        if made:
            shutil.rmtree(pkg, ignore_errors=True)
            for f in written[-2:]:
                f.unlink(missing_ok=True)
        for f, text in edited.items():
            f.write_text(text)
        raise
    return written + [root / "params.yaml", root / "dvc.yaml", index]


def main(argv: list[str] | None = None) -> int:
    """``poolrep new STAGE --title ... --source ... [--citation ...]`` (what cli.py's ``new`` verb calls)."""
    import argparse

    ap = argparse.ArgumentParser(prog="poolrep new", description=__doc__.split("\n")[0])
    ap.add_argument("stage", help="the new stage's name: a slug, ^[a-z][a-z0-9_]*$")
    ap.add_argument("--title", required=True, help="the paper's title")
    ap.add_argument("--source", required=True, help="where the paper is (a URL, a DOI, ../shared/papers/005...)")
    ap.add_argument("--citation", default="", help='authors (venue year), e.g. "Smith, Lee (CVPR 2020)"')
    ap.add_argument("--root", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    try:
        files = new(a.stage, a.title, a.source, a.citation, Path(a.root) if a.root else None)
    except ScaffoldError as err:
        print(f"poolrep new: {err}", file=sys.stderr)
        return 2
    root = Path(a.root or paths.ROOT)
    for f in files:
        print(f"[new] wrote {f.relative_to(root)}")
    print(
        f"[new] next (README, 'Add a paper'): quote the paper in src/poolrep/papers/{a.stage}/claims.py, replace the "
        f"example experiment, set its params.yaml block and papers/{a.stage}/params.py; then dvc repro {a.stage}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
