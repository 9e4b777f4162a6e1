"""``poolrep verify STAGE`` (``--all``): the same numbers on this host? (issue 48, item 2)

A stage is rerun in a scratch copy of the repository (a temporary folder: the tracked and untracked-not-ignored
files, ``data/`` linked, the stage's caches hard-linked or copied), never in the work tree, whose results are only
read. Every value of the rerun's ``metrics.json`` is compared with the committed one: *identical* (the same
JSON value), *within tolerance* (numbers with ``|a - b| <= verify_rtol * max(|a|, |b|)``; ``verify_rtol`` is a
top-level key of params.yaml) or *beyond* (anything else, a key present on one side only included); and every
claim's status in ``claims.json``. A drift table names both hosts (the committed ``run.json``'s ``host`` block:
older runs have none, "unknown (run.json predates host records)"; and this machine's, ``device.host()``). The exit
status is 1 when a status changed or a value moved beyond the tolerance, 0 otherwise.

``--profile P`` other than the committed run's profile (``smoke``: the committed results are ``cpu``): there is no
committed baseline to compare with, so the stage runs twice in the scratch copy, a baseline then the check, and
the two are compared (both hosts are this one): it shows whether a rerun on one host is deterministic, which is what
CI can afford. Upstream caches: ``cache/cifar10.npz`` (the prepare stage, the same for every profile) is linked from
the work tree when there, else built in the copy (``poolrep prepare``); ``cache/backbone_cifar10.npz`` depends on
the profile, so it is linked for the committed profile and built in the copy (``poolrep backbone``) otherwise.

``results/hosts.md`` keeps one row per (host, stage, profile) verified: a rerun on a host already in the table
replaces its row, one on a new host adds a row. It is written atomically (``io.atomic_path``).

``records/host_flips.json`` (for machines; the report stage reads it, a dependency) keeps every claim whose status differed between the
committed run and a rerun on another host, with both hosts, both statuses and values and the commits of both runs:
a verification against the committed results replaces that (stage, profile, rerun host)'s entries with the status
changes it found (none: the entries go). The report marks such a claim in the ledger as host-dependent, "a verdict
that depends on the host is not a verdict" (issue 48), for as long as the committed row is the one that was
verified (same status and value); a flip recorded against an earlier run of the stage is listed as stale.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .stage_results import FLIPS_NAME, FLIPS_PATH, read_flips

UNKNOWN_HOST = "unknown (run.json predates host records)"
IDENTICAL, WITHIN, BEYOND = "identical", "within tolerance", "beyond tolerance"
COMMITTED = "committed results"  # Drift.baseline when the rerun is compared with the committed run
# upstream caches a stage may read: the verb that builds each, and whether it depends on the profile
CACHES = {
    "cache/cifar10.npz": (["prepare"], False),
    "cache/backbone_cifar10.npz": (["backbone"], True),
}
HOSTS_HEADER = (
    "# Hosts on which a stage was verified\n\n"
    '`poolrep verify STAGE` (README, "Same numbers on another host") adds or updates one row per (host, stage, '
    "profile): the rerun on that host against the committed results (or, for a profile with no committed results, "
    "against a first rerun on the same host). Values: metrics.json values identical / within `verify_rtol` / "
    "beyond; statuses: every claim's status in claims.json.\n\n"
)
HOSTS_COLUMNS = (
    "host",
    "torch dispatch",
    "stage",
    "profile",
    "compared with",
    "values identical",
    "within tolerance",
    "beyond",
    "statuses identical",
    "date",
    "commit",
)


# ---------------------------------------------------------------- comparison


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a JSON document under its dotted path (``map.video.l5``, ``curve[3]``)."""
    out: dict[str, Any] = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(doc, list):
        if not doc:
            out[prefix] = []
        for i, v in enumerate(doc):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = doc
    return out


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def relative_change(a: Any, b: Any) -> float | None:
    """|a - b| / max(|a|, |b|) for two numbers (0 when equal, also two NaNs), None otherwise."""
    if not (_number(a) and _number(b)):
        return None
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b))


def classify(a: Any, b: Any, rtol: float) -> str:
    """One value, committed ``a`` against rerun ``b``."""
    if type(a) is type(b) and (a == b or (_number(a) and math.isnan(a) and math.isnan(b))):
        return IDENTICAL
    rel = relative_change(a, b)
    if rel == 0.0:
        return IDENTICAL  # 1 and 1.0
    if rel is not None and rel <= rtol:
        return WITHIN
    return BEYOND


@dataclass
class ValueRow:
    key: str
    committed: Any
    rerun: Any
    verdict: str

    @property
    def change(self) -> float | None:
        return relative_change(self.committed, self.rerun)


@dataclass
class StatusRow:
    id: str
    committed: str | None
    rerun: str | None
    committed_value: Any = None
    rerun_value: Any = None

    @property
    def changed(self) -> bool:
        return self.committed != self.rerun


MISSING = "<absent>"


def compare_metrics(committed: dict, rerun: dict, rtol: float) -> list[ValueRow]:
    a, b = flatten(committed), flatten(rerun)
    rows = []
    for k in list(a) + [k for k in b if k not in a]:
        if k not in a or k not in b:
            rows.append(ValueRow(k, a.get(k, MISSING), b.get(k, MISSING), BEYOND))
        else:
            rows.append(ValueRow(k, a[k], b[k], classify(a[k], b[k], rtol)))
    return rows


def compare_claims(committed: list[dict], rerun: list[dict]) -> list[StatusRow]:
    a = {c["id"]: c for c in committed}
    b = {c["id"]: c for c in rerun}
    rows = []
    for i in list(a) + [i for i in b if i not in a]:
        ca, cb = a.get(i, {}), b.get(i, {})
        rows.append(StatusRow(i, ca.get("status"), cb.get("status"), ca.get("value"), cb.get("value")))
    return rows


def host_label(h: dict | None) -> str:
    if not h:
        return UNKNOWN_HOST
    ext = h.get("vector_extensions") or []
    return (
        f"{h.get('cpu_model', '?')} ({h.get('cores', '?')} cores; {', '.join(ext[-3:]) or 'no vector extensions read'})"
    )


def dispatch_label(h: dict | None) -> str:
    if not h:
        return "unknown"
    env = h.get("dispatch_env") or {}
    pins = ", ".join(f"{k}={v}" for k, v in env.items())
    return f"{h.get('torch_cpu_capability') or '?'}{f' ({pins})' if pins else ''}"


@dataclass
class Drift:
    stage: str
    profile: str
    rtol: float
    host_committed: dict | None
    host_rerun: dict | None
    values: list[ValueRow]
    statuses: list[StatusRow]
    baseline: str = COMMITTED
    commit: str = ""
    notes: list[str] = field(default_factory=list)
    commit_committed: str = ""  # the committed run.json's git commit (empty when it has none)

    @property
    def against_committed(self) -> bool:
        """Compared with the committed run (not a first rerun of another profile on this host)."""
        return self.baseline == COMMITTED

    def count(self, verdict: str) -> int:
        return sum(r.verdict == verdict for r in self.values)

    @property
    def status_changes(self) -> list[StatusRow]:
        return [r for r in self.statuses if r.changed]

    @property
    def ok(self) -> bool:
        return not self.count(BEYOND) and not self.status_changes

    @property
    def values_summary(self) -> str:
        n = len(self.values)
        if self.count(IDENTICAL) == n:
            return f"all {n} identical"
        return f"{self.count(IDENTICAL)} identical, {self.count(WITHIN)} within tolerance, {self.count(BEYOND)} beyond"


def _fmt(v: Any) -> str:
    return f"{v:.10g}" if isinstance(v, float) else str(v)


def drift_table(d: Drift, limit: int = 40) -> str:
    """The drift table, Markdown: both hosts, the counts, every value not identical (largest change first, at
    most ``limit``) and every claim whose status changed."""
    lines = [
        f"## poolrep verify {d.stage} (profile {d.profile}, verify_rtol {d.rtol:g})",
        "",
        "| | host | torch dispatch |",
        "|---|---|---|",
        f"| {d.baseline} | {host_label(d.host_committed)} | {dispatch_label(d.host_committed)} |",
        f"| rerun | {host_label(d.host_rerun)} | {dispatch_label(d.host_rerun)} |",
        "",
        f"metrics.json: {len(d.values)} values: {d.count(IDENTICAL)} identical, {d.count(WITHIN)} within tolerance, "
        f"{d.count(BEYOND)} beyond tolerance. claims.json: {len(d.statuses)} claims, "
        f"{len(d.status_changes)} status change(s).",
    ]
    moved = sorted(
        (r for r in d.values if r.verdict != IDENTICAL),
        key=lambda r: (r.verdict != BEYOND, -(r.change if r.change is not None else math.inf)),
    )
    if moved:
        lines += ["", "| metric | committed | rerun | relative change | verdict |", "|---|---|---|---|---|"]
        for r in moved[:limit]:
            ch = "n/a" if r.change is None else f"{r.change:.2e}"
            lines.append(f"| `{r.key}` | {_fmt(r.committed)} | {_fmt(r.rerun)} | {ch} | {r.verdict} |")
        if len(moved) > limit:
            lines.append(f"| ... {len(moved) - limit} more | | | | |")
    if d.status_changes:
        lines += ["", "| claim | committed status | rerun status |", "|---|---|---|"]
        for r in d.status_changes:
            lines.append(f"| `{r.id}` | {r.committed or MISSING} | {r.rerun or MISSING} |")
    lines += [*[f"\n{n}" for n in d.notes], "", "verdict: " + ("same numbers" if d.ok else _failure(d))]
    return "\n".join(lines)


def _failure(d: Drift) -> str:
    why = []
    if d.count(BEYOND):
        why.append(f"{d.count(BEYOND)} value(s) moved beyond verify_rtol {d.rtol:g}")
    if d.status_changes:
        why.append(f"{len(d.status_changes)} claim status(es) changed")
    return "DRIFT: " + "; ".join(why)


# ---------------------------------------------------------------- results/hosts.md


def _row(d: Drift) -> dict[str, str]:
    return {
        "host": host_label(d.host_rerun),
        "torch dispatch": dispatch_label(d.host_rerun),
        "stage": d.stage,
        "profile": d.profile,
        "compared with": d.baseline if not d.against_committed else f"committed, {host_label(d.host_committed)}",
        "values identical": "yes" if d.count(IDENTICAL) == len(d.values) else "no",
        "within tolerance": str(d.count(WITHIN)),
        "beyond": str(d.count(BEYOND)),
        "statuses identical": "yes" if not d.status_changes else f"no ({len(d.status_changes)} changed)",
        "date": time.strftime("%Y-%m-%d"),
        "commit": d.commit[:10],
    }


def _cell(s: str) -> str:
    return s.replace("|", "/").replace("\n", " ")


def read_hosts(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if not line.startswith("| ") or line.startswith("| host |"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == len(HOSTS_COLUMNS):
            rows.append(dict(zip(HOSTS_COLUMNS, cells)))
    return rows


def record(d: Drift, path: Path) -> list[dict[str, str]]:
    """Add (or replace) this verification's row of ``path`` (one per host, stage and profile); written atomically."""
    from .io import atomic_path

    new = {k: _cell(v) for k, v in _row(d).items()}
    rows = read_hosts(path)
    key = ("host", "stage", "profile")
    for i, r in enumerate(rows):
        if all(r[k] == new[k] for k in key):
            rows[i] = new
            break
    else:
        rows.append(new)
    rows.sort(key=lambda r: (r["stage"], r["profile"], r["host"]))
    text = HOSTS_HEADER + "| " + " | ".join(HOSTS_COLUMNS) + " |\n|" + "---|" * len(HOSTS_COLUMNS) + "\n"
    text += "".join("| " + " | ".join(r[c] for c in HOSTS_COLUMNS) + " |\n" for r in rows)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return rows


# ---------------------------------------------------------------- records/host_flips.json


def flip_entries(d: Drift) -> list[dict]:
    """One entry per claim whose status changed in ``d`` (a verification against the committed results)."""
    date = time.strftime("%Y-%m-%d")
    return [
        {
            "stage": d.stage,
            "profile": d.profile,
            "claim": r.id,
            "committed": {
                "host": host_label(d.host_committed),
                "status": r.committed,
                "value": r.committed_value,
                "commit": d.commit_committed,
            },
            "rerun": {"host": host_label(d.host_rerun), "status": r.rerun, "value": r.rerun_value, "commit": d.commit},
            "date": date,
        }
        for r in d.status_changes
    ]


def record_flips(d: Drift, path: Path) -> list[dict]:
    """Replace the (stage, profile, rerun host) entries of ``path`` with ``d``'s status changes; written atomically
    (a file with no entries is still written, so "verified, nothing flipped" is on record). Only a verification
    against the committed results is recorded: a profile run twice on one host is not the ledger's."""
    from .io import atomic_path

    flips = read_flips(path)
    if not d.against_committed:
        return flips
    me = host_label(d.host_rerun)
    flips = [f for f in flips if (f["stage"], f["profile"], f["rerun"]["host"]) != (d.stage, d.profile, me)]
    flips += flip_entries(d)
    flips.sort(key=lambda f: (f["stage"], f["claim"], f["rerun"]["host"]))
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"flips": flips}, indent=1, sort_keys=True) + "\n")
    return flips


# ---------------------------------------------------------------- the scratch copy and the rerun


def verifiable_stages(root: Path | None = None) -> list[str]:
    """The stages ``poolrep run`` runs (a notebook with metrics.json and, for a paper, claims.json), in dvc.yaml's
    order."""
    import yaml

    doc = yaml.safe_load(((root or paths.ROOT) / "dvc.yaml").read_text())
    return [n for n, s in doc["stages"].items() if str(s.get("cmd", "")).startswith("poolrep run ")]


def stage_caches(stage: str, root: Path | None = None) -> list[str]:
    import yaml

    doc = yaml.safe_load(((root or paths.ROOT) / "dvc.yaml").read_text())
    deps = doc["stages"][stage].get("deps", [])
    return [d for d in deps if isinstance(d, str) and d in CACHES]


def copy_tree(root: Path, dst: Path, link_data: bool = True) -> None:
    """The repository's files (tracked, and untracked but not ignored) without results/, cache/, data/, scratch/;
    ``data/`` linked to the work tree's when it has one and ``link_data`` (inputs only: read, checksummed). The one
    scratch copy of the repository for ``poolrep verify`` and ``tools/fault_soak.py``."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=root, check=True, capture_output=True, text=True
    ).stdout.split("\n")
    for f in filter(None, files):
        if f.split("/")[0] in ("results", "cache", "data", "scratch"):
            continue
        src = root / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)
    if link_data and (root / "data").is_dir():
        (dst / "data").symlink_to((root / "data").resolve(), target_is_directory=True)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # the writers replace files (atomic_path), so a hard link never changes the original
    except OSError:
        shutil.copy2(src, dst)


def _env(scratch: Path) -> dict[str, str]:
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "POOLREP_ROOT": str(scratch),
        "DVC_NO_ANALYTICS": "1",
        "MPLBACKEND": "Agg",
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        # the copy's code, in this process's children and in the notebook's kernel
        "PYTHONPATH": os.pathsep.join(filter(None, [str(scratch / "src"), os.environ.get("PYTHONPATH")])),
    }
    env.pop("POOLREP_DATA_DIR", None)
    return env


def poolrep(scratch: Path, *args: str, log: Callable[[str], None] = print) -> None:
    """``poolrep ARGS`` in the scratch copy; a failure raises with the end of its output."""
    log(f"[verify] poolrep {' '.join(args)} (in {scratch})")
    r = subprocess.run(
        [sys.executable, "-m", "poolrep.cli", *args], cwd=scratch, env=_env(scratch), capture_output=True, text=True
    )
    if r.returncode != 0:
        tail = (r.stdout[-1500:] + r.stderr[-1500:]).strip()
        raise RuntimeError(
            f"`poolrep {' '.join(args)}` failed in the scratch copy {scratch} (rc {r.returncode}): {tail}"
        )


def _outputs(results: Path) -> tuple[dict, list, dict]:
    metrics = json.loads((results / "metrics.json").read_text())
    claims_p = results / "claims.json"
    claims = json.loads(claims_p.read_text()) if claims_p.exists() else []
    run_p = results / "run.json"
    run = json.loads(run_p.read_text()) if run_p.exists() else {}
    return metrics, claims, run


def committed_profile(stage: str, root: Path | None = None) -> str:
    m = json.loads(((root or paths.ROOT) / "results" / stage / "metrics.json").read_text())
    return m.get("run", {}).get("profile", "cpu")


def verify(
    stage: str,
    profile: str | None = None,
    root: Path | None = None,
    keep: bool = False,
    rtol: float | None = None,
    rerun: Callable[..., None] | None = None,
    log: Callable[[str], None] = print,
) -> Drift:
    """Rerun ``stage`` in a scratch copy and compare it (see the module's docstring). ``rerun(scratch, *args,
    log=)``: how a ``poolrep`` verb runs in the copy (default :func:`poolrep`, a subprocess)."""
    from . import config, device

    rerun = rerun or poolrep
    root = Path(root or paths.ROOT)
    if stage not in verifiable_stages(root):
        raise ValueError(f"cannot verify {stage!r}: not a `poolrep run` stage; choose from {verifiable_stages(root)}")
    doc = config.load(root / "params.yaml")
    config.check_all(doc)  # parameters before any work
    rtol = float(doc.get("verify_rtol", 1e-6)) if rtol is None else rtol
    committed_dir = root / "results" / stage
    base_profile = committed_profile(stage, root) if (committed_dir / "metrics.json").exists() else None
    profile = profile or base_profile or doc.get("profile", "cpu")
    config.resolve(stage, doc, profile)
    twice = profile != base_profile
    scratch = Path(tempfile.mkdtemp(prefix=f"poolrep-verify-{stage}-"))
    try:
        copy_tree(root, scratch)
        for rel in stage_caches(stage, root):
            verbs, by_profile = CACHES[rel]
            if (root / rel).exists() and not (by_profile and twice):
                _link(root / rel, scratch / rel)
            else:
                if rel == "cache/backbone_cifar10.npz" and not (scratch / "cache/cifar10.npz").exists():
                    if (root / "cache/cifar10.npz").exists():
                        _link(root / "cache/cifar10.npz", scratch / "cache/cifar10.npz")
                    else:
                        rerun(scratch, "prepare", log=log)
                rerun(scratch, *verbs, *(["--profile", profile] if by_profile else []), log=log)
        out = scratch / "results" / stage
        if twice:
            rerun(scratch, "run", stage, "--profile", profile, log=log)
            base_dir = scratch / "baseline" / stage
            shutil.copytree(out, base_dir)
            baseline = f"first rerun on this host ({profile})"
        else:
            base_dir, baseline = committed_dir, COMMITTED
        rerun(scratch, "run", stage, "--profile", profile, log=log)
        m0, c0, r0 = _outputs(base_dir)
        m1, c1, r1 = _outputs(out)
        notes = []
        if not twice and r0.get("git", {}).get("dirty"):
            notes.append("note: the committed run.json says its code had uncommitted changes (git dirty)")
        d = Drift(
            stage=stage,
            profile=profile,
            rtol=rtol,
            host_committed=r0.get("host") or m0.get("run", {}).get("host"),
            host_rerun=r1.get("host") or m1.get("run", {}).get("host") or device.host(),
            values=compare_metrics(m0, m1, rtol),
            statuses=compare_claims(c0, c1),
            baseline=baseline,
            commit=str(device.git_state(root).get("commit", "")),
            notes=notes,
            commit_committed=str((r0.get("git") or {}).get("commit", "")),
        )
        return d
    finally:
        if keep:
            log(f"[verify] scratch copy kept at {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def main(stages: list[str], profile: str | None, keep: bool, hosts: Path | None, record_row: bool = True) -> int:
    """``poolrep verify``: the drift table of each stage, a row of results/hosts.md each (and its status flips in
    records/host_flips.json; beside ``hosts`` when that is given, as the tests do); 1 on any drift."""
    flips = hosts.with_name(FLIPS_NAME) if hosts else paths.ROOT / FLIPS_PATH
    hosts = hosts or paths.RESULTS / "hosts.md"
    ok = True
    for stage in stages:
        d = verify(stage, profile=profile, keep=keep)
        print(drift_table(d))
        if record_row:
            record(d, hosts)
            print(f"[verify] {hosts}: row for {host_label(d.host_rerun)}, {stage}, {d.profile}")
            if d.against_committed:
                record_flips(d, flips)
                print(f"[verify] {flips}: {len(d.status_changes)} status flip(s) recorded for {stage} on this host")
        ok &= d.ok
    return 0 if ok else 1
