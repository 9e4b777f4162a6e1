"""Which package files each DVC stage runs, from the imports themselves: ``python tools/stage_deps.py [--check]``.

A stage's command is ``poolrep <verb>``; the verb's module (``run`` -> ``runner``, ``prepare``/``backbone`` ->
``stages``, ``report`` -> ``report``) and, for ``poolrep run <stage>``, every ``poolrep`` import of
``notebooks/<stage>.ipynb`` are the roots. The closure follows every ``import``/``from ... import`` of the package
found anywhere in a module (also inside functions: lazy imports run too) and adds the ``__init__.py`` of every
package on the way, and the package-data folders a module reads (``PACKAGE_DATA``: the report's templates). ``cli.py`` itself is a dependency of every stage, but its lazy per-verb imports are not
followed (they would make every stage depend on every verb).

Without options it prints, per stage, the ``src/`` dependencies dvc.yaml should list; ``--check`` prints the
differences and exits 1 if any stage lists a package file it does not import or misses one it does (what
``tests/test_stage_deps.py`` runs); ``--write`` rewrites the ``src/`` lines of every stage's ``deps`` in dvc.yaml
(the other lines, comments included, stay as they are).
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
VERB_MODULE = {
    "data": "poolrep.data.manifest",
    "run": "poolrep.runner",
    "prepare": "poolrep.stages",
    "backbone": "poolrep.stages",
    "report": "poolrep.report",
}
# package data a module reads at run time (not imported, so the closure cannot see it): {module: its folders}.
# dvc.yaml lists such a folder whole (a DVC directory dependency: any file in it changed reruns the stage).
PACKAGE_DATA = {"poolrep.report": ("templates",)}


def data_dirs() -> set[Path]:
    return {module_file(m).parent / d for m, ds in PACKAGE_DATA.items() for d in ds}


def module_file(mod: str) -> Path | None:
    base = SRC / Path(*mod.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.exists():
            return p
    return None


def _module_of(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_in(tree: ast.AST, current: str | None = None, is_package: bool = False) -> set[str]:
    """Every ``poolrep`` module an AST imports (``from a import b`` counts ``a`` and ``a.b`` when ``a.b`` is a
    module); relative imports are resolved against ``current``."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "poolrep"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = current.split(".") if is_package else current.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "poolrep":
                continue
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}")}
    return out


def closure(roots: set[str]) -> set[Path]:
    todo, seen, files = list(roots), set(), set()
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        parts = mod.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages' __init__ run first
        f = module_file(mod)
        if f is None:
            continue
        files.add(f)
        files |= {f.parent / d for d in PACKAGE_DATA.get(mod, ())}
        if mod == "poolrep.cli":
            continue  # its per-verb imports are lazy: each stage roots at its own verb's module
        todo += sorted(imports_in(ast.parse(f.read_text()), mod, f.name == "__init__.py"))
    return files


def notebook_imports(nb: Path) -> set[str]:
    cells = json.loads(nb.read_text())["cells"]
    src = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    src = "\n".join(x for x in src.splitlines() if not x.lstrip().startswith(("%", "!")))  # magics
    return imports_in(ast.parse(src))


def stage_files(cmd: str) -> set[Path]:
    words = cmd.split()
    if words[0] != "poolrep" or len(words) < 2 or words[1] not in VERB_MODULE:
        raise ValueError(f"cannot tell what {cmd!r} imports (expected poolrep {'|'.join(VERB_MODULE)} ...)")
    roots = {"poolrep.cli", VERB_MODULE[words[1]]}
    if words[1] == "run":
        roots |= notebook_imports(ROOT / "notebooks" / f"{words[2]}.ipynb")
    return closure(roots)


def listed_src(deps: list) -> set[Path]:
    out = set()
    for d in deps:
        p = ROOT / str(d)
        if p.is_relative_to(SRC):
            out |= set(p.rglob("*.py")) if p.is_dir() and p not in data_dirs() else {p}
    return out


def check(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, dict[str, list[str]]]:
    """{stage: {"missing": [...], "extra": [...]}} for every stage whose src/ deps differ from its imports."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    bad = {}
    for name, st in stages.items():
        need, have = stage_files(st["cmd"]), listed_src(st.get("deps", []))
        rel = lambda s: sorted(str(p.relative_to(ROOT)) for p in s)  # noqa: E731
        if need != have:
            bad[name] = {"missing": rel(need - have), "extra": rel(have - need)}
    return bad


def write(dvc_yaml: Path = ROOT / "dvc.yaml") -> None:
    """Replace every stage's ``src/`` dependencies in dvc.yaml by the computed ones (after its notebook, if any)."""
    import re

    lines = dvc_yaml.read_text().splitlines()
    stages = yaml.safe_load("\n".join(lines))["stages"]
    out, cur, in_deps = [], None, False
    for line in lines:
        m = re.match(r"^  ([\w-]+):\s*$", line)
        if m and m.group(1) in stages:
            cur = m.group(1)
        if re.match(r"^    deps:\s*$", line):
            in_deps = True
            out.append(line)
            out += [f"      - {d}" for d in stages[cur].get("deps", []) if str(d).startswith("notebooks/")]
            out += [f"      - {p.relative_to(ROOT)}" for p in sorted(stage_files(stages[cur]["cmd"]))]
            continue
        if in_deps:
            if re.match(r"^      - ", line):
                if line.split("- ", 1)[1].split("#")[0].strip().startswith(("src/", "notebooks/")):
                    continue
                out.append(line)
                continue
            in_deps = False
        out.append(line)
    dvc_yaml.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    if "--write" in sys.argv:
        write()
        sys.exit(0)
    if "--check" in sys.argv:
        bad = check()
        for name, d in bad.items():
            print(f"{name}: missing {d['missing']} extra {d['extra']}")
        sys.exit(1 if bad else 0)
    for name, st in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        print(f"{name}:")
        for p in sorted(stage_files(st["cmd"])):
            print(f"  - {p.relative_to(ROOT)}")
