"""The ``report`` stage: the claims ledger and one static HTML page (and the same content as Markdown) from every
stage's outputs.

- ``results/claims.md``: every stage's claims (``results/<stage>/claims.json``, see :mod:`poolrep.claims`) in one
  table (paper, claim, ours with its 95 % interval, the paper's number, status), with the count per status; the
  README's counts (between ``<!-- claims:begin -->`` and ``<!-- claims:end -->``) are rewritten from the same
  numbers by ``poolrep report``.
- ``results/report/index.html`` (committed): opens with the claims table, then for each stage its run (profile,
  seed, device, git commit, the ``dvc.lock`` hashes of its outputs, wall times, effective parameters, a link to
  its executed notebook), its data sources (official data, mirror copy or substitute; reduced or full size,
  decided from the sizes the stage recorded against the full data set's), its tables and its figures. Figures are
  linked by relative path (``../<stage>/figures/x.png``), so the page is small and a rerun that changes no number
  changes almost nothing in git; ``standalone.html`` (a DVC output, not committed) is the same page with every
  figure inlined, for sharing as one file.
- ``results/report/report.md``: the same sections in Markdown (figures as relative links).

A stage whose outputs are missing is listed as MISSING, one with only part of them as PARTIAL with what is
lacking; nothing is skipped silently. The pages render offline (inline CSS, no external URL); a tiny inline
script stamps ``data-images-loaded`` / ``data-images-ok`` on ``<html>`` once the images have decoded, which the
browser test reads back. Paths of this machine never appear: sources are shown relative to the repository.

Run: ``poolrep report`` (what dvc.yaml calls) or ``python -m poolrep.report [--results DIR] [--out DIR]``.
The output is deterministic for given inputs (no build timestamp).
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import claims as ledger
from . import io, paths, standins

PAPERS = ("autopool", "slowfeat", "pyramid", "crosslayer", "entropy")
SHARED = ("prepare", "backbone")
TITLES = {
    "autopool": "Auto-pooling",
    "slowfeat": "Slow features",
    "pyramid": "Pyramid / window pooling",
    "crosslayer": "Cross-layer pooling",
    "entropy": "Entropy pooling",
    "zoo": "Pooling zoo",
    "prepare": "Shared: CIFAR-10 decoding",
    "backbone": "Shared: ImageNet MobileNetV2 feature maps",
}
PAPER_OF = {  # the papers, in the order of ../shared/papers (000..004)
    "autopool": "Sukhbaatar et al. 2013 (000)",
    "slowfeat": "Goroshin et al. 2015 (001)",
    "pyramid": "Jose et al. 2018 (002)",
    "crosslayer": "Liu et al. 2015 (003)",
    "entropy": "Wan et al. 2019 (004)",
}
TARGET_PIPELINE_S = 90 * 60  # the whole cpu pipeline under 90 minutes on the 2-core machine
COMPARE_COLS = ("paper", "ours", "diff")
MAX_METRICS = 300  # flattened metrics shown per stage (the rest is counted, not dropped silently)
MAX_ROWS = 100  # rows shown per table; a longer table says how many rows are only in its CSV
README_BEGIN, README_END = "<!-- claims:begin -->", "<!-- claims:end -->"


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
        """The notebook's first ``# heading`` when the run left one, else a short default."""
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
        return TITLES.get(self.name, self.name)


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


# ------------------------------------------------------------------------------------------------- claims
def all_claims(stages: list[Stage]) -> list[dict]:
    return [c for s in stages for c in s.claims]


def claims_frame(claims: list[dict]) -> pd.DataFrame:
    """The claims table: paper, id, claim, source, test, ours (value [95 % interval]), the paper's number,
    status (with its reason kind), preconditions (with their numbers), power, setting, why."""
    t = ledger.table(claims)
    t.insert(0, "paper", [PAPER_OF.get(s, s) for s in t.pop("stage")])
    return t


def counts_sentence(claims: list[dict]) -> str:
    c = ledger.counts(claims)
    return (
        f"{len(claims)} claims: " + ", ".join(f"{v} {k}" for k, v in c.items()) + "."
        if claims
        else "No claims recorded yet (no stage has run)."
    )


CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d1d1f;
 margin:0;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:26px;margin:4px 0 6px}h2{font-size:21px;margin:38px 0 8px;padding-top:12px;border-top:2px solid #dde1e6}
h3{font-size:16px;margin:22px 0 6px}h4{font-size:14px;margin:14px 0 4px;color:#444}
table{border-collapse:collapse;margin:6px 0 4px;font-size:13.5px}
th,td{border:1px solid #d3d7dc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
th.paper,td.paper{background:#f3f6fb}th.ours,td.ours{background:#f2faf3}th.diff,td.diff{background:#fbf7ef}
.caption{font-weight:600;margin-top:14px}.note,.prov{font-size:13px;color:#555;margin:2px 0 10px}
.status{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;font-weight:700;color:#fff}
.status.ok{background:#2e7d32}.status.partial{background:#b26a00}.status.missing{background:#c62828}
.missing-box{border:2px solid #c62828;background:#fdecea;padding:8px 12px;margin:8px 0}
.partial-box{border:2px solid #b26a00;background:#fff4e5;padding:8px 12px;margin:8px 0}
figure{margin:12px 0;display:inline-block;vertical-align:top;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #e0e0e0}figcaption{font-size:12.5px;color:#555}
code{background:#f1f3f5;padding:0 3px}details{margin:6px 0}summary{cursor:pointer;color:#333}
nav a{margin-right:10px}
td.st-reproduced{background:#e3f4e4}td.st-not-reproduced{background:#fde3e1}td.st-inconclusive{background:#fff4d6}
td.st-not-testable-here{background:#eef0f3}table.claims td{font-size:12.5px}
"""

CHECK_SCRIPT = """
(function(){function check(){var im=document.images,ok=0;for(var i=0;i<im.length;i++){
if(im[i].complete&&im[i].naturalWidth>0){ok++;}}var r=document.documentElement;
r.setAttribute('data-images-total',String(im.length));r.setAttribute('data-images-loaded',String(ok));
r.setAttribute('data-images-ok',ok===im.length?'true':'false');}
check();window.addEventListener('load',check);})();
"""

e = html.escape


def _html_table(
    header: list[str],
    rows: list[list[str]],
    numeric: set[int] | None = None,
    cls: str = "",
    col_classes: list[str] | None = None,
    cell_classes: list[list[str]] | None = None,
) -> str:
    numeric = numeric or set()
    col_classes = col_classes or [""] * len(header)
    out = [f'<table class="{e(cls)}"><thead><tr>']
    out += [f'<th class="{e(c)}">{e(h)}</th>' for h, c in zip(header, col_classes)]
    out.append("</tr></thead><tbody>")
    for r, row in enumerate(rows):
        extra = cell_classes[r] if cell_classes else [""] * len(row)
        out.append(
            "<tr>"
            + "".join(
                f'<td class="{e(" ".join(x for x in (col_classes[i], "num" if i in numeric else "", extra[i]) if x))}">'
                f"{e(v)}</td>"
                for i, v in enumerate(row)
            )
            + "</tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def _dict_table(rows: list[dict[str, str]], cls: str = "") -> str:
    if not rows:
        return ""
    header = list(rows[0])
    return _html_table(header, [[r[h] for h in header] for r in rows], cls=cls)


def _provenance(s: Stage) -> str:
    r = s.run
    if not r:
        return "provenance unknown (no run.json)"
    data = "; ".join(f"{d['data']}: {d['kind']}, {d['size']}" for d in data_rows(r)) or "no data sources recorded"
    return f"profile {r.get('profile', '?')} \u00b7 seed {r.get('seed', '?')} \u00b7 data: {data}"


def _png_uri(p: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode("ascii")


def _rel(p: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(p, out_dir)).as_posix()


def _claims_html(claims: list[dict], cls: str = "claims") -> str:
    if not claims:
        return '<p class="note">No claims recorded.</p>'
    t = claims_frame(claims)
    cols = list(t.columns)
    rows = [[str(v) for v in row] for row in t.itertuples(index=False)]
    st_i = cols.index("status")
    cell_cls = [["" if i != st_i else "st-" + d["status"].replace(" ", "-") for i in range(len(cols))] for d in claims]
    return _html_table(cols, rows, cls=cls, cell_classes=cell_cls)


def forest_figure(s: Stage) -> Path | None:
    """The paper stage's forest plot of its claims (``figures/claims.png``), if it drew one."""
    f = s.folder / "figures" / "claims.png"
    return f if f.is_file() else None


def _claims_by_paper_html(stages: list[Stage], out_dir: Path, inline: bool) -> str:
    """Each paper's claims: its forest plot above its rows."""
    out = []
    for s in stages:
        if not s.claims:
            continue
        out.append(
            f"<h3>{e(PAPER_OF.get(s.name, s.name))} <code>{e(s.name)}</code>: {e(counts_sentence(s.claims))}</h3>"
        )
        f = forest_figure(s)
        if f is not None:
            src = _png_uri(f) if inline else _rel(f, out_dir)
            out.append(
                f'<figure><img src="{e(src)}" alt="{e(s.name)}: claims" data-figure="claims.png">'
                f"<figcaption>{e(s.name)}/figures/claims.png: each claim's estimate and 95 % interval "
                "against its bound</figcaption></figure>"
            )
        out.append(_claims_html(s.claims))
    return "\n".join(out)


def previous_claims(results: Path) -> list[dict] | None:
    """The ledger as last committed: every stage's claims in ``git show HEAD:results/<stage>/claims.json`` (or, in
    commits older than claims.json, the ``claims`` block of that stage's metrics.json); None where there is no git
    repository (the report then says it has nothing to compare with)."""
    import json
    import subprocess

    root = results.resolve().parent
    try:
        rel = results.resolve().relative_to(
            subprocess.run(
                ["git", "rev-parse", "--show-toplevel"],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout.strip()
        )
    except (OSError, ValueError, subprocess.SubprocessError):
        return None

    def show(stage: str, name: str) -> str | None:
        r = subprocess.run(
            ["git", "show", f"HEAD:{(rel / stage / name).as_posix()}"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return r.stdout if r.returncode == 0 else None

    out = []
    for stage in PAPER_OF:
        doc = show(stage, "claims.json")
        if doc is not None:
            claims = json.loads(doc)
        else:
            doc = show(stage, "metrics.json")
            claims = (json.loads(doc).get("claims") or []) if doc is not None else []
        out += [dict({"reason": ""}, **c) for c in claims]
    return out


def changes_since_head(results: Path, claims: list[dict]) -> list[dict] | None:
    """Every claim whose status changed since the committed ledger (:func:`previous_claims`); None outside git."""
    before = previous_claims(results)
    return None if before is None else ledger.changes(before, claims)


def changes_lines(changed: list[dict] | None) -> list[str]:
    """One line per claim whose status changed since the committed ledger (old -> new, with both intervals)."""
    if changed is None:
        return ["No committed ledger to compare with (not a git checkout)."]
    if not changed:
        return ["No claim changed status since the committed ledger."]
    return [
        f"{PAPER_OF.get(c['stage'], c['stage'])} `{c['id']}`: {c['old']} -> {c['new']} "
        f"({c['old_ours'] or 'no number'} -> {c['new_ours'] or 'no number'})"
        for c in changed
    ]


def _run_rows(s: Stage) -> list[list[str]]:
    r = s.run
    rows = [
        ["profile", str(r.get("profile", "\u2014"))],
        ["seed", fmt(r.get("seed"))],
        ["device", str(r.get("device", "\u2014"))],
        ["git commit", commit_of(r)],
        ["started", str(r.get("started", "\u2014"))],
        ["wall time", fmt_seconds(r.get("wall_time_s"))],
    ]
    if r.get("notebook_s") is not None:
        rows.append(["notebook run (papermill)", fmt_seconds(r.get("notebook_s"))])
    rows += [[f"version: {k}", str(v)] for k, v in (r.get("versions") or {}).items()]
    rows += [[f"step time: {k}", fmt_seconds(v)] for k, v in (r.get("timings_s") or {}).items()]
    rows += [[f"dvc.lock md5: {path}", md5] for path, md5 in lock_rows(s)]
    return rows


def stage_html(s: Stage, out_dir: Path | None = None, inline: bool = True) -> str:
    out_dir = out_dir or s.folder.parent / "report"
    out = [
        f'<section id="stage-{e(s.name)}" data-stage="{e(s.name)}" data-status="{s.status}">',
        f'<h2>{e(s.title)} <code>{e(s.name)}</code> <span class="status {s.status}">{s.status.upper()}</span></h2>',
    ]
    if s.status == "missing":
        out.append(
            f'<div class="missing-box"><b>MISSING:</b> stage <code>{e(s.name)}</code> has no outputs in '
            f"<code>results/{e(s.name)}/</code> (no metrics.json, no tables, no figures). Run "
            f"<code>dvc repro {e(s.name)}</code>.</div></section>"
        )
        return "\n".join(out)
    if s.problems:
        out.append(
            '<div class="partial-box"><b>PARTIAL:</b><ul>'
            + "".join(f"<li>{e(p)}</li>" for p in s.problems)
            + "</ul></div>"
        )
    if s.notebook is not None:
        out.append(f'<p>Executed notebook: <a href="{e(_rel(s.notebook, out_dir))}">{e(s.name)}/notebook.ipynb</a></p>')
    if s.claims:
        out.append("<h3>Claims</h3>" + _claims_html(s.claims))
    r = s.run
    if r:
        out.append("<h3>Run</h3>")
        out.append(_html_table(["", "value"], _run_rows(s), cls="run"))
        if r.get("params"):
            out.append("<details><summary>Effective parameters</summary>")
            out.append(
                _html_table(["parameter", "value"], [[k, _short(v, 400)] for k, v in r["params"].items()], cls="params")
            )
            out.append("</details>")
        out.append("<h3>Data sources</h3>")
        out.append(_dict_table(data_rows(r), cls="data") or '<p class="note">No data sources recorded.</p>')
    if s.tables:
        out.append("<h3>Tables</h3>")
    prov = _provenance(s)
    if r and r.get("profile") != "paper":
        out.append(
            f'<p class="note">Profile <b>{e(str(r.get("profile")))}</b>: experiment sizes are cut from the '
            "paper's (the data sources above say which, and each table's note names its cuts).</p>"
        )
    for t in s.tables:
        cols = [str(c) for c in t.df.columns]
        numeric = {i for i, c in enumerate(t.df.columns) if pd.api.types.is_numeric_dtype(t.df[c])}
        out.append(
            f'<div class="caption" id="table-{e(s.name)}-{e(t.name)}">{e(t.title or t.name)} '
            f"<code>{e(t.name)}.csv</code></div>"
        )
        out.append(f'<div class="prov">{e(prov)}</div>')
        out.append(
            _html_table(
                cols,
                table_cells(t.df),
                numeric,
                cls="results",
                col_classes=[c if c in COMPARE_COLS else "" for c in cols],
            )
        )
        if rows_left_out(t):
            out.append(f'<div class="note"><b>{e(rows_left_out(t))}</b></div>')
        if t.note:
            out.append(f'<div class="note">{e(local_paths(t.note))}</div>')
    if s.figures:
        out.append("<h3>Figures</h3><div>")
        for f in s.figures:
            src = _png_uri(f) if inline else _rel(f, out_dir)
            out.append(
                f'<figure><img src="{e(src)}" alt="{e(s.name)}: {e(f.stem)}" data-figure="{e(f.name)}">'
                f"<figcaption>{e(f.name)}</figcaption></figure>"
            )
        out.append("</div>")
    fm = flat_metrics(s.metrics)
    if fm:
        more = f" (first {MAX_METRICS} of {len(fm)})" if len(fm) > MAX_METRICS else ""
        out.append(f"<details><summary>All numbers in metrics.json{more}</summary>")
        out.append(
            _html_table(["key", "value"], [[k, local_paths(v)] for k, v in fm[:MAX_METRICS]], {1}, cls="metrics")
        )
        out.append("</details>")
    out.append("</section>")
    return "\n".join(out)


def build_html(
    stages: list[Stage], out_dir: Path | None = None, inline: bool = True, changed: list[dict] | None = None
) -> str:
    t = totals(stages)
    summ = summary_rows(stages)
    missing = [s.name for s in stages if s.status == "missing"]
    claims = all_claims(stages)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>poolrep: replication report</title>",
        f"<style>{CSS}</style></head><body><main>",
        "<h1>poolrep: replication report</h1>",
        '<p class="note">Five papers on pooling of image features, re-run by this workspace. The claims come '
        "first: each paper's claim, quoted, tested on our numbers with a 95 % interval; then each stage's run, "
        "data, tables (the paper's number, ours and the difference, ours \u2212 paper, side by side; \u2014 "
        "means not reported / not computed) and figures.</p>",
        "<nav>" + " ".join(f'<a href="#stage-{e(s.name)}">{e(s.name)}</a>' for s in stages) + "</nav>",
        '<h2 id="claims">Claims</h2>',
        f"<p><b>{e(counts_sentence(claims))}</b></p>",
        f'<p class="note">Status: {e(ledger.STATUS_LEGEND)}.</p>',
        "<h3>What changed since the committed ledger</h3><ul>"
        + "".join(f"<li>{e(x)}</li>" for x in changes_lines(changed))
        + "</ul>",
        _claims_by_paper_html(stages, out_dir or stages[0].folder.parent / "report", inline),
        "<h3>How the ledger judges</h3><ol>" + "".join(f"<li>{e(x)}</li>" for x in ledger.RULES) + "</ol>",
        '<h3 id="standins">Stand-ins: one decision per substitution</h3>',
        _dict_table(standins.table(claims).to_dict("records"), cls="standins"),
        "<h2>Summary</h2>",
        _dict_table(summ, cls="summary"),
        f'<p class="note">{e(totals_sentence(t))}</p>',
    ]
    if missing:
        parts.append(
            f'<div class="missing-box"><b>Missing stages:</b> {e(", ".join(missing))} '
            "(no outputs under results/; listed below).</div>"
        )
    parts += [stage_html(s, out_dir, inline) for s in stages]
    parts.append(f"</main><script>{CHECK_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


# -------------------------------------------------------------------------------------------------- Markdown
def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(_md_cell(h) or " " for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def _md_dicts(rows: list[dict[str, str]]) -> str:
    return _md_table(list(rows[0]), [list(r.values()) for r in rows]) if rows else ""


def claims_md(
    claims: list[dict], title: str = "# Claims ledger", changed: list[dict] | None = None, figures: str = ""
) -> str:
    """``results/claims.md``: what changed since the committed ledger, one table (paper, claim, ours with interval,
    paper's number, status with its reason kind, power), then each claim's test, preconditions, setting and why.
    ``figures``: the path prefix from the ledger to ``results/`` (for the forest plots' links)."""
    out = [
        title,
        "",
        counts_sentence(claims),
        "",
        "Every row is computed by the last `dvc repro` from that stage's own numbers (`results/<stage>/claims.json`). "
        f"Status: {ledger.STATUS_LEGEND}.",
        "",
    ]
    if not claims:
        return "\n".join(out) + "\n"
    out += ["**What changed since the committed ledger:**", ""] + [f"- {x}" for x in changes_lines(changed)] + [""]
    stages = list(dict.fromkeys(c["stage"] for c in claims))
    out.append(
        "Each paper's forest plot (estimate and 95 % interval against the bound): "
        + ", ".join(f"[{st}]({figures}{st}/figures/claims.png)" for st in stages)
        + "."
    )
    out.append("")
    t = claims_frame(claims).rename(columns={"paper's number": "paper_number"})
    out.append(
        _md_table(
            ["paper", "claim", "ours [95 % interval]", "paper's number", "status", "power"],
            [
                [r.paper, f"{r.claim} ({r.source}) `{r.id}`", r.ours, r.paper_number, r.status, r.power]
                for r in t.itertuples(index=False)
            ],
        )
    )
    out += ["", "## How the ledger judges", ""] + [f"{i}. {x}" for i, x in enumerate(ledger.RULES, 1)]
    out += ["", "## Stand-ins: one decision per substitution", "", _md_dicts(standins.table(claims).to_dict("records"))]
    out += ["", "## Test, preconditions, setting and why, per claim", ""]
    for r in t.itertuples(index=False):
        pre = f" Preconditions: {r.preconditions}." if r.preconditions else ""
        res = f" Resolves: {r.resolves}." if r.resolves else ""
        dec = f" What would decide it: {r.decide}." if r.decide else ""
        out += [
            f"- `{r.id}` ({r.paper}, **{r.status}**): test `{r.test}`.{pre}{res} Setting: {local_paths(r.setting)}. "
            f"Why: {r.why}{dec}"
        ]
    return "\n".join(out) + "\n"


def stage_md(s: Stage, out_dir: Path) -> str:
    out = [f"## {s.title} (`{s.name}`): {s.status.upper()}", ""]
    if s.status == "missing":
        out += [
            f"**MISSING:** stage `{s.name}` has no outputs in `results/{s.name}/` (no metrics.json, no tables, "
            f"no figures). Run `dvc repro {s.name}`.",
            "",
        ]
        return "\n".join(out)
    if s.problems:
        out += ["**PARTIAL:**", ""] + [f"- {p}" for p in s.problems] + [""]
    if s.notebook is not None:
        out += [f"Executed notebook: [{s.name}/notebook.ipynb]({_rel(s.notebook, out_dir)})", ""]
    if s.claims:
        t = claims_frame(s.claims).rename(columns={"paper's number": "paper_number"})
        out += [
            "### Claims",
            "",
            _md_table(
                ["claim", "ours [95 % interval]", "paper's number", "status"],
                [[f"`{r.id}`: {r.claim}", r.ours, r.paper_number, r.status] for r in t.itertuples(index=False)],
            ),
            "",
        ]
    r = s.run
    if r:
        out += ["### Run", "", _md_table(["", "value"], _run_rows(s)), "", "### Data sources", ""]
        out += [_md_dicts(data_rows(r)) or "No data sources recorded.", ""]
    if s.tables:
        out += ["### Tables", ""]
    prov = _provenance(s)
    if r and r.get("profile") != "paper":
        out += [
            f"Profile **{r.get('profile')}**: experiment sizes are cut from the paper's (the data sources above "
            "say which, and each table's note names its cuts).",
            "",
        ]
    for t in s.tables:
        out += [
            f"**{t.title or t.name}** (`{t.name}.csv`)",
            "",
            f"_{prov}_",
            "",
            _md_table([str(c) for c in t.df.columns], table_cells(t.df)),
            "",
        ]
        if rows_left_out(t):
            out += [f"**{rows_left_out(t)}**", ""]
        if t.note:
            out += [local_paths(t.note), ""]
    if s.figures:
        out += ["### Figures", ""]
        for f in s.figures:
            out += [f"![{s.name}: {f.stem}]({_rel(f, out_dir)})", ""]
    return "\n".join(out)


def build_md(stages: list[Stage], out_dir: Path, changed: list[dict] | None = None) -> str:
    t = totals(stages)
    claims = all_claims(stages)
    parts = [
        "# poolrep: replication report",
        "",
        "The claims come first; then each stage: its run, data, tables (the paper's number, ours and the "
        "difference, ours \u2212 paper, side by side; \u2014 means not reported / not computed) and figures "
        "(linked from the stages' folders).",
        "",
        claims_md(claims, "## Claims", changed, figures="../").rstrip(),
        "",
        "## Summary",
        "",
        _md_dicts(summary_rows(stages)),
        "",
        totals_sentence(t),
        "",
    ]
    missing = [s.name for s in stages if s.status == "missing"]
    if missing:
        parts += [f"**Missing stages:** {', '.join(missing)} (no outputs under results/; listed below).", ""]
    parts += [stage_md(s, out_dir) for s in stages]
    return "\n".join(parts).rstrip() + "\n"


def readme_block(claims: list[dict]) -> str:
    c = ledger.counts(claims)
    return (
        f"{README_BEGIN}\n**{len(claims)} claims** in the last `cpu` run: "
        + ", ".join(f"**{v}** {k}" for k, v in c.items())
        + ". The table is in [`results/claims.md`](results/claims.md) and at the top of "
        "[`results/report/index.html`](results/report/index.html).\n" + README_END
    )


def update_readme(readme: Path, claims: list[dict]) -> bool:
    """Rewrite the README's block between the claims markers (the counts per status); False if it has none."""
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        return False
    a, b = text.index(README_BEGIN), text.index(README_END) + len(README_END)
    new = text[:a] + readme_block(claims) + text[b:]
    if new != text:
        io.write_text(readme, new)
    return True


# ------------------------------------------------------------------------------------------------- the stage
def build(
    results: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    stages: list[tuple[str, str]] | None = None,
    readme: str | os.PathLike | None = None,
) -> tuple[Path, Path]:
    """Write ``<out>/index.html`` (figures linked), ``<out>/standalone.html`` (figures inlined), ``<out>/report.md``
    and ``<results>/claims.md`` (atomically) from ``results``; rewrite the claims counts in ``readme`` when given.
    Returns the paths of index.html and report.md."""
    results = Path(results) if results else paths.RESULTS
    out = Path(out) if out else results / "report"
    st = read_all(results, stages)
    claims = all_claims(st)
    changed = changes_since_head(results, claims)
    html_path = io.write_text(out / "index.html", build_html(st, out, inline=False, changed=changed))
    standalone = io.write_text(out / "standalone.html", build_html(st, out, inline=True, changed=changed))
    md_path = io.write_text(out / "report.md", build_md(st, out, changed))
    claims_path = io.write_text(results / "claims.md", claims_md(claims, changed=changed))
    for p in (html_path, standalone, md_path, claims_path):  # a report is meant to be read (and served)
        p.chmod(0o644)
    if readme is not None and not update_readme(Path(readme), claims):
        print(f"[report] {readme} has no {README_BEGIN} ... {README_END} block: claims counts not written there")
    for s in st:
        print(
            f"[report] {s.name:12s} {s.status.upper():8s} tables={len(s.tables)} figures={len(s.figures)} "
            f"claims={len(s.claims)}" + (f"  ({'; '.join(s.problems)})" if s.problems and s.status != "missing" else "")
        )
    print(f"[report] {counts_sentence(claims)}")
    for line in changes_lines(changed):
        print(f"[report] changed: {line}")
    print(
        f"[report] wrote {local_paths(str(html_path))}, standalone.html, report.md and {local_paths(str(claims_path))}"
    )
    return html_path, md_path


def summary(results: str | os.PathLike | None = None) -> str:
    """What ``make repro`` ends with: the claims' counts per status and every claim whose status changed since the
    committed ledger."""
    results = Path(results) if results else paths.RESULTS
    claims = all_claims(read_all(results))
    lines = changes_lines(changes_since_head(results, claims))
    return "\n".join(
        [f"Claims ledger (results/claims.md): {counts_sentence(claims)}", "Changed since the committed ledger:"]
        + [f"  {x}" for x in lines]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m poolrep.report", description=__doc__.split("\n")[0])
    ap.add_argument("--results", help="the stages' results folder (default: results/)")
    ap.add_argument("--out", help="where index.html, standalone.html and report.md go (default: results/report/)")
    a = ap.parse_args(argv)
    results = Path(a.results) if a.results else paths.RESULTS
    # the README's counts describe the repository's own results, never a copy elsewhere
    own = results.resolve() == (paths.ROOT / "results").resolve() and a.out is None
    build(results, a.out, readme=paths.ROOT / "README.md" if own else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
