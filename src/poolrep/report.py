"""The ``report`` stage: the claims ledger and one static HTML page (and the same content as Markdown) from every
stage's outputs, rendered from jinja2 templates (``poolrep/templates/``: ``report.html.j2``, ``report.md.j2``,
``claims.md.j2``; the page's CSS and its small script are static files the HTML template inlines).

One data model (:func:`page`, built once from the stages) feeds every template:

- ``results/claims.md``: every stage's claims (``results/<stage>/claims.json``, see :mod:`poolrep.claims`) in one
  table (paper, claim, ours with its 95 % interval, the paper's number, status), the ledger's rules, the stand-in
  registry and each claim's test, preconditions, setting and why; the README's counts (between
  ``<!-- claims:begin -->`` and ``<!-- claims:end -->``) are rewritten from the same numbers.
- ``results/report/index.html`` (committed): opens with an overview (each paper's claims counted by status and
  reason), then per paper its forest plot and a compact table (claim, ours with interval, the paper's number,
  status), each row expanding (``<details>``, no script) to its quote, test, setting, preconditions, resolution,
  why and what would decide it; then per stage its run, data sources, tables and figures. Figures are linked by
  relative path; ``standalone.html`` (a DVC output, not committed) inlines them.
- ``results/report/report.md``: the same in Markdown (figures as relative links).

Host-dependent verdicts (issue 48): ``records/host_flips.json`` (written by ``poolrep verify``) lists every claim
whose status differed on a rerun on another host. A ledger row that is still the one verified (same status and
value) is marked in every view: its status cell says "host-dependent" with the other host's status, the counts say
how many rows depend on the host ("a verdict that depends on the host is not a verdict"), and a section lists them;
a flip recorded against an earlier run of the stage is listed as stale (verify that stage again). The claims'
statuses themselves are never rewritten here.

Papers' titles and citations come from :mod:`poolrep.papers_index`. A stage whose outputs are missing is listed as
MISSING, one with only part of them as PARTIAL; nothing is skipped silently. The pages render offline; the inline
script stamps ``data-images-loaded`` / ``data-images-ok`` on ``<html>`` for the browser test. Paths of this machine
never appear. Run: ``poolrep report`` or ``python -m poolrep.report [--results DIR] [--out DIR]``; the output is
deterministic for given inputs (no build timestamp).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from . import claims as ledger
from . import io, papers_index, paths, standins
from .stage_results import (  # noqa: F401 (the report's API: reading stages, formatting their numbers)
    FLIPS_PATH,
    MAX_ROWS,
    PAPERS,
    SHARED,
    TARGET_PIPELINE_S,
    Stage,
    Table,
    _short,
    commit_of,
    data_rows,
    expected_stages,
    flat_metrics,
    fmt,
    fmt_seconds,
    local_paths,
    lock_rows,
    read_all,
    read_flips,
    read_lock,
    read_stage,
    rows_left_out,
    size_of,
    summary_rows,
    table_cells,
    totals,
    totals_sentence,
)
from .stats import CONFIDENCE

COMPARE_COLS = ("paper", "ours", "diff")
MAX_METRICS = 300  # flattened metrics shown per stage (the rest is counted, not dropped silently)
README_BEGIN, README_END = "<!-- claims:begin -->", "<!-- claims:end -->"
# a claim's expandable details: (label, column of the claims table)
DETAILS = (
    ("quote", "claim"),
    ("source", "source"),
    ("test", "test"),
    ("preconditions", "preconditions"),
    ("resolves", "resolves"),
    ("power", "power"),
    ("setting", "setting"),
    ("why", "why"),
    ("what would decide it", "decide"),
)
SIX = ("ours", "paper_number", "status", "power")  # the ledger table's columns after paper and claim


# ------------------------------------------------------------------------------------------------- claims
def all_claims(stages: list[Stage]) -> list[dict]:
    return [c for s in stages for c in s.claims]


def claims_frame(claims: list[dict]) -> pd.DataFrame:
    """The claims table: paper, id, claim, source, test, ours (value [95 % interval]), the paper's number,
    status (with its reason kind), preconditions (with their numbers), power, setting, why."""
    t = ledger.table(claims)
    t.insert(0, "paper", [papers_index.short(s) for s in t.pop("stage")])
    return t


def counts_sentence(claims: list[dict]) -> str:
    c = ledger.counts(claims)
    if not claims:
        return "No claims recorded yet (no stage has run)."
    dep = [x["id"] for x in claims if x.get("host_flips")]
    host = (
        f" {len(dep)} of them depend on the host (another host gave another status: not a verdict): "
        + ", ".join(f"`{i}`" for i in dep)
        + "."
        if dep
        else ""
    )
    return f"{len(claims)} claims: " + ", ".join(f"{v} {k}" for k, v in c.items()) + "." + host


# ------------------------------------------------------------------------------------ host-dependent verdicts
def mark_host_flips(stages: list[Stage], flips: list[dict]) -> list[dict]:
    """Attach to each ledger row (in memory: ``host_flips``) the recorded flips that are about it, i.e. whose
    committed side has the row's status and value; return the others (stale: recorded against an earlier run of
    the stage, or a claim no longer in the ledger)."""
    rows = {(s.name, c["id"]): c for s in stages for c in (s.claims_log or [])}
    stale = []
    for f in flips:
        c = rows.get((f["stage"], f["claim"]))
        if c is not None and (c.get("status"), c.get("value")) == (f["committed"]["status"], f["committed"]["value"]):
            c.setdefault("host_flips", []).append(f)
        else:
            stale.append(f)
    return stale


def host_status(c: dict) -> str:
    """The status cell of a row: its status, then, when another host gave another one, which and where."""
    flips = c.get("host_flips") or []
    if not flips:
        return ledger.status_label(c)
    other = "; ".join(f"{f['rerun']['status']} on {f['rerun']['host']}" for f in flips)
    return f"{ledger.status_label(c)}, host-dependent ({other}): not a verdict"


def _flip_value(side: dict) -> str:
    """One side's value of a recorded flip, written as the ledger writes numbers ("none" without one)."""
    return ledger.fmt_number(side.get("value")) or "none"


def flip_lines(claims: list[dict], stale: list[dict]) -> list[str]:
    """The ledger's section on host-dependent rows, one line per recorded flip."""
    out = [
        f"`{f['claim']}` ({f['stage']}): {f['committed']['status']} on {f['committed']['host']} (commit "
        f"{f['committed']['commit'][:10] or 'unknown'}, value {_flip_value(f['committed'])}), "
        f"{f['rerun']['status']} on {f['rerun']['host']} (commit {f['rerun']['commit'][:10]}, value "
        f"{_flip_value(f['rerun'])}; verified "
        f"{f['date']})."
        for c in claims
        for f in c.get("host_flips") or []
    ]
    out += [
        f"stale: `{f['claim']}` ({f['stage']}) flipped on {f['rerun']['host']} ({f['date']}) against a run that is no "
        f"longer the committed one; run `poolrep verify {f['stage']}` on that host again."
        for f in stale
    ]
    return out


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


def forest_figure(s: Stage) -> Path | None:
    """The paper stage's forest plot of its claims (``figures/claims.png``), if it drew one."""
    f = s.folder / "figures" / "claims.png"
    return f if f.is_file() else None


def previous_claims(results: Path) -> list[dict] | None:
    """The ledger as last committed: every stage's claims in ``git show HEAD:results/<stage>/claims.json`` (or, in
    commits older than claims.json, the ``claims`` block of that stage's metrics.json); None where there is no git
    repository (the report then says it has nothing to compare with)."""
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
    for stage in papers_index.PAPERS:
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
        f"{papers_index.short(c['stage'])} `{c['id']}`: {c['old']} -> {c['new']} "
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


# ------------------------------------------------------------------------------------ the model the templates read
@dataclass
class Grid:
    """A table for the templates: its header, its rows (strings), a class per column and the numeric columns."""

    header: list[str]
    rows: list[list[str]]
    cls: str = ""
    col_classes: list[str] = field(default_factory=list)
    numeric: set[int] = field(default_factory=set)

    @classmethod
    def of_dicts(cls, rows: list[dict[str, str]], name: str = "") -> Grid | None:
        return cls(list(rows[0]), [list(r.values()) for r in rows], name) if rows else None

    def classes(self, i: int) -> str:
        col = self.col_classes[i] if i < len(self.col_classes) else ""
        return " ".join(x for x in (col, "num" if i in self.numeric else "") if x)


OURS_HEADER = f"ours [{CONFIDENCE:.0%} interval unless marked]".replace(
    "%", " %"
)  # a within / non-superiority test reads a 90 % interval (TOST)


def claim_views(claims: list[dict]) -> list[dict]:
    """One dict per claim: the claims table's columns (``paper_number`` for "paper's number"), the status's CSS
    class, its reason and the non-empty ``details`` [(label, text)] the expandable row shows."""
    out = []
    for d, r in zip(claims, claims_frame(claims).to_dict("records")):
        r["paper_number"] = r.pop("paper's number")
        conf = d.get("confidence")
        if r["ours"] and conf is not None and abs(conf - CONFIDENCE) > 1e-9:  # equivalence, non-superiority: 90 %
            r["ours"] = f"{r['ours']} ({conf:.0%} interval)".replace("%", " %")
        r["setting"] = local_paths(r["setting"])
        r["reason"] = d.get("reason") or ""
        r["status_class"] = "st-" + d["status"].replace(" ", "-") + (" host-dependent" if d.get("host_flips") else "")
        if d.get("host_flips"):
            r["status"] = host_status(d)
        r["details"] = [(label, r[k]) for label, k in DETAILS if r[k]]
        out.append(r)
    return out


def overview(stages: list[Stage]) -> dict:
    """Every paper's claims counted by status, "not testable here" split by its reason: ``columns`` (status
    labels as :func:`poolrep.claims.status_label` prints them), one row per paper and a total row."""
    nt = ledger.Status.NOT_TESTABLE.value
    plain = [s for s in ledger.STATUSES if s != nt]
    cols = plain + [f"{nt} ({r})" for r in ledger.REASONS]
    found = {ledger.status_label(c) for s in stages for c in s.claims}
    cols += sorted(found - set(cols))  # e.g. an older row with no reason

    def row(stage: str, label: str, claims: list[dict]) -> dict:
        n = Counter(ledger.status_label(c) for c in claims)
        return {"stage": stage, "label": label, "counts": [n.get(k, 0) for k in cols], "total": len(claims)}

    rows = [row(s.name, papers_index.short(s.name), s.claims) for s in stages if s.claims]
    reasons = [c[len(nt) + 2 : -1] if c.startswith(nt + " (") else "unspecified" for c in cols[len(plain) :]]
    return {
        "columns": cols,
        "plain": plain,
        "reasons": reasons,
        "rows": rows,
        "total": row("", "all papers", all_claims(stages)),
    }


def stage_view(s: Stage, out_dir: Path) -> dict:
    """What a stage's section shows: its run, parameters, data, tables, figures and every number of metrics.json."""
    r, prov = s.run, _provenance(s)
    tables = []
    for t in s.tables:
        cols = [str(c) for c in t.df.columns]
        numeric = {i for i, c in enumerate(t.df.columns) if pd.api.types.is_numeric_dtype(t.df[c])}
        grid = Grid(cols, table_cells(t.df), "results", [c if c in COMPARE_COLS else "" for c in cols], numeric)
        tables.append(
            {
                "id": f"table-{s.name}-{t.name}",
                "name": t.name,
                "title": t.title or t.name,
                "grid": grid,
                "prov": prov,
                "left_out": rows_left_out(t),
                "note": local_paths(t.note) if t.note else "",
            }
        )
    fm = flat_metrics(s.metrics)
    params = [[k, _short(v, 400)] for k, v in (r.get("params") or {}).items()]
    return {
        "name": s.name,
        "title": s.title,
        "status": s.status,
        "problems": s.problems,
        "notebook": _rel(s.notebook, out_dir) if s.notebook is not None else "",
        "claims": Grid(
            ["claim", OURS_HEADER, "paper's number", "status"],
            [[f"`{c['id']}`: {c['claim']}", c["ours"], c["paper_number"], c["status"]] for c in claim_views(s.claims)],
        ),
        "n_claims": len(s.claims),
        "run": Grid(["", "value"], _run_rows(s), "run") if r else None,
        "params": Grid(["parameter", "value"], params, "params") if params else None,
        "data": Grid.of_dicts(data_rows(r), "data") if r else None,
        "cut_profile": str(r.get("profile")) if r and r.get("profile") != "paper" else "",
        "tables": tables,
        "figures": s.figures,
        "metrics": Grid(["key", "value"], [[k, local_paths(v)] for k, v in fm[:MAX_METRICS]], "metrics", [], {1}),
        "metrics_more": f" (first {MAX_METRICS} of {len(fm)})" if len(fm) > MAX_METRICS else "",
        "has_metrics": bool(fm),
    }


def page(
    stages: list[Stage], out_dir: Path, changed: list[dict] | None = None, stale: list[dict] | None = None
) -> dict:
    """The one model behind index.html, standalone.html, report.md and claims.md."""
    claims = all_claims(stages)
    papers = [
        {
            "stage": s.name,
            "title": s.title,
            "citation": p.citation if (p := papers_index.PAPERS.get(s.name)) else "",
            "short": papers_index.short(s.name),
            "counts": counts_sentence(s.claims),
            "forest": forest_figure(s),
            "claims": claim_views(s.claims),
        }
        for s in stages
        if s.claims
    ]
    return {
        "n_papers": len(papers_index.PAPERS),
        "counts": counts_sentence(claims),
        "legend": ledger.STATUS_LEGEND,
        "changes": changes_lines(changed),
        "host_flips": flip_lines(claims, stale or []),
        "rules": ledger.RULES,
        "standins": Grid.of_dicts(standins.table(claims).to_dict("records"), "standins"),
        "claims": claim_views(claims),
        "overview": overview(stages),
        "papers": papers,
        "summary": Grid.of_dicts(summary_rows(stages), "summary"),
        "totals": totals_sentence(totals(stages)),
        "missing": [s.name for s in stages if s.status == "missing"],
        "stages": [stage_view(s, out_dir) for s in stages],
    }


# ----------------------------------------------------------------------------------------------- rendering
def _md_cell(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def md_table(g: Grid | None) -> str:
    if g is None:
        return ""
    out = ["| " + " | ".join(_md_cell(h) or " " for h in g.header) + " |", "|" + "---|" * len(g.header)]
    return "\n".join(out + ["| " + " | ".join(_md_cell(v) for v in r) + " |" for r in g.rows])


_ENV: jinja2.Environment | None = None


def env() -> jinja2.Environment:
    """The templates of ``poolrep/templates`` (package data); HTML autoescaped, Markdown as written."""
    global _ENV
    if _ENV is None:
        _ENV = jinja2.Environment(
            loader=jinja2.PackageLoader("poolrep", "templates"),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            undefined=jinja2.StrictUndefined,
        )
        _ENV.filters.update(md_table=md_table, mdcell=_md_cell, local_paths=local_paths)
    return _ENV


def _src(out_dir: Path, inline: bool):
    return lambda p: _png_uri(p) if inline else _rel(p, out_dir)


def build_html(
    stages: list[Stage],
    out_dir: Path | None = None,
    inline: bool = True,
    changed: list[dict] | None = None,
    stale: list[dict] | None = None,
) -> str:
    out_dir = out_dir or stages[0].folder.parent / "report"
    return (
        env()
        .get_template("report.html.j2")
        .render(page=page(stages, out_dir, changed, stale), src=_src(out_dir, inline))
    )


def stage_html(s: Stage, out_dir: Path | None = None, inline: bool = True) -> str:
    """One stage's section of the page (the template's ``stage`` macro)."""
    out_dir = out_dir or s.folder.parent / "report"
    return str(env().get_template("_macros.html.j2").module.stage(stage_view(s, out_dir), _src(out_dir, inline)))


def claims_md(
    claims: list[dict],
    title: str = "# Claims ledger",
    changed: list[dict] | None = None,
    figures: str = "",
    stale: list[dict] | None = None,
) -> str:
    """``results/claims.md`` (``figures``: the path prefix from the ledger to ``results/``, for the forest plots)."""
    views = claim_views(claims)
    model = {
        "table": Grid(
            ["paper", "claim", OURS_HEADER, "paper's number", "status", "power"],
            [[c["paper"], f"{c['claim']} ({c['source']}) `{c['id']}`", *[c[k] for k in SIX]] for c in views],
        ),
        "counts": counts_sentence(claims),
        "legend": ledger.STATUS_LEGEND,
        "changes": changes_lines(changed),
        "host_flips": flip_lines(claims, stale or []),
        "rules": ledger.RULES,
        "standins": Grid.of_dicts(standins.table(claims).to_dict("records")) if claims else None,
        "claims": views,
        "stages": list(dict.fromkeys(c["stage"] for c in claims)),
    }
    return env().get_template("claims.md.j2").render(page=model, title=title, figures=figures)


def build_md(
    stages: list[Stage], out_dir: Path, changed: list[dict] | None = None, stale: list[dict] | None = None
) -> str:
    claims = claims_md(all_claims(stages), "## Claims", changed, figures="../", stale=stale).rstrip()
    text = (
        env()
        .get_template("report.md.j2")
        .render(page=page(stages, out_dir, changed, stale), claims_block=claims, src=_src(out_dir, False))
    )
    return text.rstrip() + "\n"


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
    stale = mark_host_flips(st, read_flips(results.parent / FLIPS_PATH))
    claims = all_claims(st)
    changed = changes_since_head(results, claims)
    html_path = io.write_text(out / "index.html", build_html(st, out, inline=False, changed=changed, stale=stale))
    standalone = io.write_text(out / "standalone.html", build_html(st, out, inline=True, changed=changed, stale=stale))
    md_path = io.write_text(out / "report.md", build_md(st, out, changed, stale))
    claims_path = io.write_text(results / "claims.md", claims_md(claims, changed=changed, stale=stale))
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
