"""``poolrep``: the project's command line.

poolrep fetch NAME... | --all-offline   bring data sets / weights into data/ (mirror, then official URL)
poolrep data                            the pipeline's data stage: fetch what it reads, write manifests/*.json
poolrep list                            the registry, and what is available offline
poolrep run STAGE [--profile P]         run a paper's notebook with papermill (what dvc.yaml calls)
poolrep prepare                         decode CIFAR-10 once into cache/ (shared stage)
poolrep backbone                        ImageNet MobileNetV2 last-conv maps of a CIFAR-10 subset (shared stage)
poolrep params STAGE [--profile P]      print a stage's effective parameters
poolrep report                          results/report/index.html + report.md from every stage's outputs
poolrep claims                          the ledger in brief: counts, and claims whose status changed since HEAD
poolrep verify STAGE... | --all         rerun in a scratch copy, compare with the committed numbers (exit 1: drift)
poolrep new STAGE --title T --source S  scaffold a new paper stage: package, notebook, params, dvc.yaml stage, test
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="poolrep", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="bring data sets into data/")
    f.add_argument("names", nargs="*")
    f.add_argument("--all-offline", action="store_true", help="every data set the offline mirror holds")
    f.add_argument("--no-download", action="store_true")
    sub.add_parser("data", help="fetch every data set the pipeline reads; write manifests/<name>.json")
    sub.add_parser("list", help="the data registry")
    r = sub.add_parser("run", help="run a stage's notebook")
    r.add_argument("stage")
    r.add_argument("--profile", choices=("smoke", "cpu", "paper"))
    p = sub.add_parser("params", help="a stage's effective parameters")
    p.add_argument("stage")
    p.add_argument("--profile", choices=("smoke", "cpu", "paper"))
    sub.add_parser("prepare", help="decode CIFAR-10 into cache/")
    b = sub.add_parser("backbone", help="MobileNetV2 feature maps of CIFAR-10 into cache/")
    b.add_argument("--profile", choices=("smoke", "cpu", "paper"))
    sub.add_parser("report", help="one HTML page + Markdown from every stage's results")
    sub.add_parser(
        "claims",
        help="the claims ledger in brief: counts per status, and each claim whose status "
        "changed since the committed ledger",
    )
    v = sub.add_parser(
        "verify",
        help="rerun stages in a scratch copy and compare metrics.json and claim statuses with the committed ones; "
        "a row per host in results/hosts.md",
    )
    v.add_argument("stages", nargs="*")
    v.add_argument("--all", action="store_true", help="every `poolrep run` stage")
    v.add_argument(
        "--profile",
        choices=("smoke", "cpu", "paper"),
        help="default: the committed run's; another profile runs the stage twice (baseline, check)",
    )
    v.add_argument("--keep", action="store_true", help="keep the scratch copy")
    v.add_argument("--hosts", help="the hosts table to update (default results/hosts.md)")
    v.add_argument("--no-record", action="store_true", help="do not update the hosts table")
    n = sub.add_parser("new", help="scaffold a new paper stage: package, notebook, params, dvc.yaml stage, test")
    n.add_argument("stage", help="the new stage's name: a slug, ^[a-z][a-z0-9_]*$, not used yet")
    n.add_argument("--title", required=True, help="the paper's own title")
    n.add_argument("--source", required=True, help="where the paper is: a URL, a DOI, ../shared/papers/005...")
    n.add_argument("--citation", default="", help='authors (venue year), e.g. "Smith, Lee (CVPR 2020)"')
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)

    from .data import DataError

    try:
        if a.cmd == "fetch":
            return _fetch(a)
        if a.cmd == "data":
            from .data.manifest import write_manifests

            for p in write_manifests():
                d = json.loads(p.read_text())
                what = d.get("registry_entry") or d.get("local_path") or "not read by this profile"
                print(f"{p.relative_to(p.parents[1])}: {what}")
            return 0
        if a.cmd == "list":
            from .data import REGISTRY, available

            for name, ds in REGISTRY.items():
                print(f"{name:14s} {'offline' if available(name) else 'needs network':14s} {ds.description}")
            return 0
        if a.cmd == "params":
            from . import config

            print(json.dumps(config.resolve(a.stage, profile=a.profile), indent=2))
            return 0
        if a.cmd == "run":
            return _run(a)
        if a.cmd == "prepare":
            from .stages import prepare

            prepare()
            return 0
        if a.cmd == "backbone":
            from .stages import backbone

            backbone(profile=a.profile)
            return 0
        if a.cmd == "report":
            from .report import main as report_main

            return report_main([])
        if a.cmd == "verify":
            return _verify(a)
        if a.cmd == "new":
            from .scaffold import main as new_main

            return new_main([a.stage, "--title", a.title, "--source", a.source, "--citation", a.citation])
        if a.cmd == "claims":
            from .report import summary

            print(summary())
            return 0
    except (DataError, KeyError, ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"poolrep {a.cmd}: error: {e}", file=sys.stderr)
        return 2
    return 1


def _run(a) -> int:
    """``poolrep run``: an error in the notebook is one line (the executed notebook holds the traceback)."""
    from papermill.exceptions import PapermillExecutionError

    from .data.fetch import shown_path
    from .runner import Terminated, failed_notebook, run

    try:
        run(a.stage, profile=a.profile)
    except PapermillExecutionError as e:
        print(
            f"poolrep run {a.stage}: error in the notebook: {e.ename}: {e.evalue} "
            f"(executed notebook kept at {shown_path(failed_notebook(a.stage))})",
            file=sys.stderr,
        )
        return 2
    except Terminated as e:
        print(f"poolrep run {a.stage}: {e}; the previous results are untouched", file=sys.stderr)
        return 128 + 15
    return 0


def _verify(a) -> int:
    from pathlib import Path

    from .verify import main as verify_main
    from .verify import verifiable_stages

    stages = verifiable_stages() if a.all else list(a.stages)
    if not stages:
        print("poolrep verify: name stages or pass --all", file=sys.stderr)
        return 2
    return verify_main(stages, a.profile, a.keep, Path(a.hosts) if a.hosts else None, not a.no_record)


def _fetch(a) -> int:
    from .data import REGISTRY, fetch

    names = list(a.names)
    if a.all_offline:
        names += [n for n, d in REGISTRY.items() if d.offline and n not in names]
    if not names:
        print("poolrep fetch: name data sets (see `poolrep list`) or pass --all-offline", file=sys.stderr)
        return 2
    for n in names:
        fetch(n, download=not a.no_download)
        print(f"fetched {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
