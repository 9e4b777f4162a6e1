"""Reading every stage's outputs for the report (:mod:`poolrep.report`): ``results/<stage>/`` (metrics.json,
run.json, claims.json, tables, figures, the executed notebook) and ``dvc.lock``'s entry for it. A stage whose
outputs are missing is ``missing``, one with only part of them ``partial`` with what is lacking (``problems``); and
the formatting of what they recorded (numbers, wall times, data sources, this machine's paths made relative)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import claims as ledger
from . import papers_index, paths

PAPERS = tuple(papers_index.PAPERS)
SHARED = ("prepare", "backbone")
TARGET_PIPELINE_S = 90 * 60  # the whole cpu pipeline under 90 minutes on the 2-core machine
MAX_ROWS = 100  # rows shown per table; a longer table says how many rows are only in its CSV


# --------------------------------------------------------------------------------------------- reading stages
@dataclass
class Table:
    name: str
    df: pd.DataFrame
    title: str = ""
    note: str = ""


@dataclass
class Stage:
    name: str
    kind: str  # "paper" | "shared"
    folder: Path
    metrics: dict | None = None
    run_log: dict | None = None  # run.json
    claims_log: list | None = None  # claims.json
    tables: list[Table] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: int = 0  # output files found (readable or not): none at all means the stage is missing
    lock: dict = field(default_factory=dict)  # dvc.lock's entry for the stage

    @property
    def run(self) -> dict:
        """How the run was made: run.json, else the (older) ``run`` block of metrics.json."""
        return self.run_log or (self.metrics or {}).get("run") or {}

    @property
    def claims(self) -> list[dict]:
        """claims.json, else the (older) ``claims`` block of metrics.json."""
        if self.claims_log is not None:
            return list(self.claims_log)
        return list((self.metrics or {}).get("claims") or [])

    @property
    def notebook(self) -> Path | None:
        nb = self.folder / "notebook.ipynb"
        return nb if nb.exists() else None

    @property
    def status(self) -> str:
        if not self.folder.is_dir() or self.files == 0:
            return "missing"
        return "partial" if self.problems else "ok"

    @property
    def title(self) -> str:
        """The paper's title (:mod:`poolrep.papers_index`); for another stage the notebook's first ``# heading``
        when the run left one, else the stage's name."""
        if self.name in papers_index.PAPERS or self.name in papers_index.OTHER_STAGES:
            return papers_index.title(self.name)
        nb = self.notebook
        if nb is not None:
            try:
                for cell in json.loads(nb.read_text()).get("cells", []):
                    if cell.get("cell_type") == "markdown":
                        src = cell.get("source", "")
                        src = "".join(src) if isinstance(src, list) else src
                        for line in src.splitlines():
                            if line.startswith("# "):
                                return line[2:].strip()
                        break
            except (ValueError, OSError):
                pass
        return self.name


def expected_stages(results: Path, root: Path | None = None) -> list[tuple[str, str]]:
    """``[(name, kind)]``: the shared stages, the five papers, every other ``poolrep run X`` stage of dvc.yaml
    (e.g. a later ``zoo``), and any other folder under ``results/`` (so nothing present goes unreported)."""
    names: list[tuple[str, str]] = [(s, "shared") for s in SHARED] + [(p, "paper") for p in PAPERS]
    dvc = (root or paths.ROOT) / "dvc.yaml"
    if dvc.exists():
        import yaml

        try:
            stages = (yaml.safe_load(dvc.read_text()) or {}).get("stages") or {}
        except yaml.YAMLError:
            stages = {}
        for name, st in stages.items():
            cmd = str((st or {}).get("cmd", "")) if isinstance(st, dict) else ""
            if cmd.startswith("poolrep run") and name not in dict(names):
                names.append((name, "paper"))
    if results.is_dir():
        for d in sorted(results.iterdir()):
            if d.is_dir() and not d.name.startswith(".") and d.name != "report" and d.name not in dict(names):
                names.append((d.name, "paper"))
    return names


def _md_title_note(md: Path) -> tuple[str, str]:
    """Title (``### ...`` first line) and note (text after the table) of an ``io.save_table`` Markdown file."""
    if not md.exists():
        return "", ""
    lines = md.read_text().splitlines()
    title = lines[0][4:].strip() if lines and lines[0].startswith("### ") else ""
    last_row = max((i for i, row in enumerate(lines) if row.lstrip().startswith("|")), default=-1)
    note = "\n".join(lines[last_row + 1 :]).strip() if last_row >= 0 else ""
    return title, note


def _read_json(path: Path, st: Stage, kind: type = dict) -> dict | list | None:
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, kind):
            raise ValueError(f"top level is not {'an object' if kind is dict else 'a list'}")
        return doc
    except (ValueError, OSError) as err:
        st.problems.append(f"{path.name} unreadable ({err})")
        return None


def read_stage(results: Path, name: str, kind: str = "paper", lock: dict | None = None) -> Stage:
    st = Stage(name, kind, results / name, lock=(lock or {}).get(name) or {})
    if not st.folder.is_dir():
        return st
    mpath, rpath = st.folder / "metrics.json", st.folder / "run.json"
    csvs = sorted((st.folder / "tables").glob("*.csv"))
    st.figures = sorted((st.folder / "figures").glob("*.png"))
    st.files = (
        int(mpath.exists())
        + int(rpath.exists())
        + int((st.folder / "claims.json").exists())
        + len(csvs)
        + len(st.figures)
    )
    if mpath.exists():
        st.metrics = _read_json(mpath, st)
    else:
        st.problems.append("metrics.json missing: the run's numbers and claims are unknown")
    if rpath.exists():
        st.run_log = _read_json(rpath, st)
    if (st.folder / "claims.json").exists():
        st.claims_log = _read_json(st.folder / "claims.json", st, list)
    if (st.metrics is not None or st.run_log is not None) and not st.run:
        st.problems.append("no run.json (nor a `run` block): profile, device and data sources unknown")
    for csv in csvs:
        try:
            df = pd.read_csv(csv)
        except (ValueError, OSError) as err:  # pandas' EmptyDataError / ParserError are ValueErrors
            st.problems.append(f"table {csv.name} unreadable ({err})")
            continue
        title, note = _md_title_note(csv.with_suffix(".md"))
        st.tables.append(Table(csv.stem, df, title, note))
    if kind == "paper":
        if not st.tables:
            st.problems.append("no tables (tables/*.csv) were written")
        if not st.figures:
            st.problems.append("no figures (figures/*.png) were written")
    return st


def read_lock(root: Path) -> dict:
    """dvc.lock's stages (empty when there is none)."""
    lock = root / "dvc.lock"
    if not lock.exists():
        return {}
    import yaml

    try:
        return (yaml.safe_load(lock.read_text()) or {}).get("stages") or {}
    except yaml.YAMLError:
        return {}


FLIPS_NAME = "host_flips.json"  # claims whose status differed on another host (poolrep verify writes it)
# where it lives, from the repository root: an input of the report stage (tracked by git, so a scratch copy has it), not
# an output of any stage, so not under results/
FLIPS_PATH = Path("records") / FLIPS_NAME


def read_flips(path: Path) -> list[dict]:
    """The entries of ``records/host_flips.json`` (none when the file is absent)."""
    if not path.exists():
        return []
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("flips"), list):
        raise ValueError(
            f"{path}: expected {{'flips': [...]}}; delete the file and rerun `poolrep verify` to rebuild it"
        )
    return doc["flips"]


def read_all(
    results: Path | None = None, stages: list[tuple[str, str]] | None = None, root: Path | None = None
) -> list[Stage]:
    results = Path(results) if results else paths.RESULTS
    root = root or results.parent
    stages = stages if stages is not None else expected_stages(results, root)
    lock = read_lock(root)
    return [read_stage(results, n, k, lock) for n, k in stages]


# ------------------------------------------------------------------------------------------------ formatting
def fmt(v: Any, signed: bool = False) -> str:
    """Numbers as in the tables' Markdown (4 significant digits); missing (NaN/None) as an em dash."""
    if v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)):
        return "\u2014"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return f"{int(v):+d}" if signed else str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):+.4g}" if signed else f"{float(v):.4g}"
    return str(v)


def fmt_seconds(s: Any) -> str:
    if not isinstance(s, (int, float)) or isinstance(s, bool):
        return "\u2014"
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min ({s:.0f} s)"


def local_paths(s: str) -> str:
    """``s`` with this machine's absolute paths replaced: the repository root by ``.``, the data mirror by
    ``$POOLREP_DATA_MIRROR``, any other absolute path under the user's tree by its last two parts."""
    from .data.fetch import mirror_dir

    out = str(s)
    for base, name in ((mirror_dir(), "$POOLREP_DATA_MIRROR"), (paths.ROOT, ".")):
        if base is not None:
            out = out.replace(str(base), name)
    return re.sub(r"(?<![\w.$])/(?:[\w.-]+/)+([\w.-]+/[\w.-]+)", r".../\1", out)


def table_cells(df: pd.DataFrame) -> list[list[str]]:
    return [
        [local_paths(fmt(v, signed=(c == "diff"))) for c, v in zip(df.columns, row)]
        for row in df.head(MAX_ROWS).itertuples(index=False)
    ]


def rows_left_out(t: Table) -> str:
    n = len(t.df) - MAX_ROWS
    return f"{n} more rows (of {len(t.df)}) are only in tables/{t.name}.csv." if n > 0 else ""


def size_of(what: dict) -> str:
    """Reduced or full size, from the sizes the stage recorded against the full data set's (``full``: {name:
    full count}; for a substitute, the substitute's own full size). An older ``reduced`` flag is read as such."""
    full = what.get("full")
    if isinstance(full, dict) and full:
        cut = [
            f"{k} {what.get(k)} of {v:,}"
            for k, v in full.items()
            if isinstance(what.get(k), (int, float)) and what.get(k) < v
        ]
        return "reduced: " + ", ".join(cut) if cut else "full size"
    reduced = what.get("reduced")
    if reduced:
        return f"reduced: {reduced}" if not isinstance(reduced, bool) else "reduced"
    return "size not compared"


def data_rows(run: dict) -> list[dict[str, str]]:
    """One row per data set of ``run.data``: its kind (official / mirror copy / substitute), size and details.

    kind: ``substitute`` when the stage recorded ``substitute=...`` (the paper's data was not available), else
    ``mirror copy`` when the source names the offline mirror, else ``official``; size: see :func:`size_of`.
    """
    rows = []
    for name, what in (run.get("data") or {}).items():
        what = what if isinstance(what, dict) else {"source": what}
        src = local_paths(str(what.get("source", "\u2014")))
        sub = what.get("substitute")
        if sub:
            kind = "substitute"
        elif "synthetic" in src.lower():
            kind = "SYNTHETIC"
        elif "mirror" in src.lower():
            kind = "mirror copy"
        else:
            kind = "official"
        details = ", ".join(
            f"{k}={_short(v)}" for k, v in what.items() if k not in ("source", "substitute", "reduced", "full")
        )
        rows.append(
            {
                "data": name,
                "kind": kind,
                "source": src,
                "substitute for": str(sub) if sub else "",
                "size": size_of(what),
                "details": local_paths(details),
            }
        )
    return rows


def _short(v: Any, n: int = 160) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= n else s[: n - 1] + "\u2026"


def flat_metrics(m: dict | None, prefix: str = "") -> list[tuple[str, str]]:
    """Every number of metrics.json (but the run identity and the claims, shown elsewhere), lists in full."""
    out: list[tuple[str, str]] = []
    for k, v in (m or {}).items():
        if not prefix and k in ("run", "claims"):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out += flat_metrics(v, key + ".")
        elif isinstance(v, list):
            out.append(
                (
                    key,
                    "["
                    + ", ".join(
                        fmt(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x) for x in v
                    )
                    + "]",
                )
            )
        else:
            out.append((key, fmt(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)))
    return out


def lock_rows(st: Stage) -> list[list[str]]:
    """``[output path, md5]`` of the stage's outputs as dvc.lock records them."""
    rows = []
    for o in st.lock.get("outs") or []:
        if isinstance(o, dict) and o.get("path"):
            rows.append([str(o["path"]), str(o.get("md5") or o.get("hash") or "\u2014")])
    return rows


def commit_of(run: dict) -> str:
    g = run.get("git") or {}
    c = str(g.get("commit", "\u2014"))
    return (c[:12] if len(c) >= 12 else c) + (" + uncommitted changes" if g.get("dirty") else "")


def summary_rows(stages: list[Stage]) -> list[dict[str, str]]:
    rows = []
    for s in stages:
        r = s.run
        counts = ledger.counts(s.claims) if s.claims else {}
        rows.append(
            {
                "stage": s.name,
                "kind": s.kind,
                "status": s.status.upper(),
                "profile": str(r.get("profile", "\u2014")),
                "seed": fmt(r.get("seed")),
                "device": str(r.get("device", "\u2014")),
                "commit": commit_of(r),
                "wall time": fmt_seconds(r.get("wall_time_s")),
                "claims": ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "\u2014",
                "tables": str(len(s.tables)),
                "figures": str(len(s.figures)),
            }
        )
    return rows


def totals(stages: list[Stage]) -> dict[str, Any]:
    walls = {s.name: s.run.get("wall_time_s") for s in stages}
    known = {k: v for k, v in walls.items() if isinstance(v, (int, float))}
    profiles = sorted({str(s.run.get("profile")) for s in stages if s.run.get("profile")})
    total = sum(known.values())
    return {
        "total_s": total,
        "stages_timed": len(known),
        "stages": len(stages),
        "profiles": profiles,
        "unknown": [k for k in walls if k not in known],
        "target_s": TARGET_PIPELINE_S,
        "within_target": total <= TARGET_PIPELINE_S,
    }


def totals_sentence(t: dict) -> str:
    s = (
        f"Sum of the recorded stage wall times: {fmt_seconds(t['total_s'])} over {t['stages_timed']} of "
        f"{t['stages']} stages (target for the whole cpu pipeline: {t['target_s'] // 60} min; "
        f"{'within' if t['within_target'] else 'OVER'} target so far)."
    )
    if t["unknown"]:
        s += f" No wall time recorded for: {', '.join(t['unknown'])}."
    if len(t["profiles"]) > 1:
        s += f" Warning: the stages ran on different profiles ({', '.join(t['profiles'])})."
    return s
