"""The report stage: the claims ledger first (results/claims.md, the README's counts, the top of the page), then
every table and figure of every stage in one offline HTML page (and report.md); a missing stage is listed as
missing, and a real browser (headless Chromium) renders it with every image loaded."""

from __future__ import annotations

import base64
import io as _io
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from browser import CHROMIUM, CHROMIUM_ARGS  # tests/browser.py: one Chromium set-up
from PIL import Image  # noqa: E402

from poolrep import io, report  # noqa: E402


def _run_block(stage: str, profile: str = "cpu", wall: float = 12.5) -> dict:
    return {
        "stage": stage,
        "profile": profile,
        "seed": 7,
        "device": "cpu (2 threads, x86_64)",
        "versions": {"python": "3.11.7", "torch": "2.14.1"},
        "started": "2026-11-24T15:00:00+0000",
        "timings_s": {"train": 3.25},
        "wall_time_s": wall,
        "data": {
            "cifar10": {
                "source": "CIFAR-10 JPEG re-encoding (mirror) [20/class subset]",
                "train": 200,
                "test": 10000,
                "full": {"train": 50000, "test": 10000},
            },
            "holidays": {"source": "pairs/ (mirror)", "substitute": "INRIA Holidays (not available)"},
        },
        "git": {"commit": "0123456789abcdef0123", "dirty": True},
        "params": {"lam": 1.0, "ks": [400, 800]},
    }


def _claims() -> list[dict]:
    from poolrep import claims as C

    est = C.Estimate(2.5, 0.5, 4.5, "paired bootstrap over 1,000 test images (9999 resamples)")
    return [
        C.greater(
            "ap_beats_sp",
            "autopool",
            '"AP outperformed SP"',
            "Table 1",
            "AP - SP",
            est,
            unit="points",
            setting="cpu; CIFAR-10 subset",
            why="",
        ).as_dict(),
        C.not_testable(
            "voc", "autopool", '"SOTA on VOC"', "Abstract", "mIoU", setting="cpu", why="VOC is not here.", reason="data"
        ).as_dict(),
    ]


def _figure(out: Path, name: str, color: str) -> None:
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1, 2], [0, 1, 0.5], color=color)
    io.save_figure(fig, out, name, dpi=40)
    plt.close(fig)


def make_results(root: Path) -> Path:
    """results/ with two complete paper stages, one partial (tables only), a shared stage, and no 'slowfeat'."""
    res = root / "results"
    a = res / "autopool"
    io.save_table(
        io.paper_vs_ours(
            [
                {"method": "AP K=400", "paper": 64.6, "ours": 60.125},
                {"method": "SP 2x2 <b>", "paper": None, "ours": 55.0},
            ]
        ),
        a,
        "table1",
        title="Table 1: CIFAR-10 accuracy",
        note="substitute note: JPEG CIFAR-10",
    )
    io.save_table(
        io.paper_vs_ours([{"method": "lambda=0.1", "paper": 1.0, "ours": 2.0}]), a, "table2", title="Table 2: sweep"
    )
    _figure(a, "curve", "red")
    _figure(a, "regions", "blue")
    io.save_metrics(
        a, {"table1": {"AP K=400": 60.125}, "curve": list(range(20)), "claims": _claims()}, _run_block("autopool")
    )
    (a / "notebook.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    p = res / "pyramid"
    io.save_table(io.paper_vs_ours([{"method": "2x2", "paper": 0.5, "ours": 0.25}]), p, "map", title="mAP")
    _figure(p, "pr_curve", "green")
    io.save_metrics(p, {"map": 0.25}, _run_block("pyramid", wall=30.0))
    c = res / "crosslayer"  # partial: a table but no metrics.json and no figure
    io.save_table(io.paper_vs_ours([{"method": "x", "paper": 3.0, "ours": 2.5}]), c, "t", title="Cross")
    io.save_metrics(res / "backbone", {"net": "mobilenet_v2"}, _run_block("backbone", wall=44.8))
    return res


STAGES = [
    ("backbone", "shared"),
    ("autopool", "paper"),
    ("slowfeat", "paper"),
    ("pyramid", "paper"),
    ("crosslayer", "paper"),
]
TABLE_IDS = {"table-autopool-table1", "table-autopool-table2", "table-pyramid-map", "table-crosslayer-t"}
FIGURES = {"curve.png", "regions.png", "pr_curve.png"}


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.imgs, self.urls, self.ids, self.sections = 0, [], [], set(), {}
        self.cells: list[str] = []
        self._in_td = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables += 1
        if tag == "img":
            self.imgs.append(a)
        if tag == "td":
            self._in_td = True
            self.cells.append("")
        if tag == "section" and "data-stage" in a:
            self.sections[a["data-stage"]] = a["data-status"]
        for k in ("src", "href"):
            if a.get(k):
                self.urls.append(a[k])
        if a.get("id"):
            self.ids.add(a["id"])

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_td = False

    def handle_data(self, data):
        if self._in_td:
            self.cells[-1] += data


@pytest.fixture
def built(tmp_path):
    res = make_results(tmp_path)
    html_path, md_path = report.build(res, tmp_path / "out", STAGES)
    return res, html_path, md_path


def test_html_has_every_table_figure_and_the_missing_stage(built):
    res, html_path, _ = built
    text = html_path.read_text()
    p = _Collect()
    p.feed(text)
    assert TABLE_IDS <= p.ids
    # page: claims overview + stand-in registry + summary = 3 (each paper's claims are <details> rows, no table);
    # backbone: run, params, data, metrics = 4; autopool: run, params, data, its 2 results tables, metrics = 6;
    # slowfeat (missing): 0; pyramid: run, params, data, 1 results table, metrics = 5; crosslayer (partial, no
    # metrics.json): its 1 results table = 1
    assert p.tables == 3 + 4 + 6 + 0 + 5 + 1
    assert text.count('<table class="results">') == len(TABLE_IDS)  # every results table once
    assert p.sections == {
        "backbone": "ok",
        "autopool": "ok",
        "slowfeat": "missing",
        "pyramid": "ok",
        "crosslayer": "partial",
    }
    assert {i["data-figure"] for i in p.imgs} == FIGURES
    for img in p.imgs:  # the committed page links the committed figures (small, stable in git)
        src = html_path.parent / img["src"]
        assert not img["src"].startswith(("data:", "/", "http")) and src.resolve().is_file()
        assert src.resolve() == next(res.glob(f"*/figures/{img['data-figure']}")).resolve()
    # the standalone page inlines the same figures byte for byte
    st = _Collect()
    st.feed((html_path.parent / "standalone.html").read_text())
    assert {i["data-figure"] for i in st.imgs} == FIGURES
    for img in st.imgs:
        assert img["src"].startswith("data:image/png;base64,")
        data = base64.b64decode(img["src"].split(",", 1)[1])
        assert Image.open(_io.BytesIO(data)).format == "PNG"
        assert data == next(res.glob(f"*/figures/{img['data-figure']}")).read_bytes()
    # no external resource anywhere: no http(s) in src/href, no url() in CSS, no <link>
    assert not [u for u in p.urls if re.match(r"\s*(https?:)?//", u, re.I)]
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text, re.I)
    assert "<link" not in text
    assert "MISSING:" in text and "results/slowfeat/" in text
    assert "PARTIAL:" in text and "metrics.json missing" in text and "no figures" in text
    # paper, ours and diff side by side, formatted; the paper's missing number is a dash; HTML is escaped
    cells = p.cells
    i = cells.index("AP K=400")
    assert cells[i : i + 4] == ["AP K=400", "64.6", "60.12", "-4.475"]
    j = cells.index("SP 2x2 <b>")
    assert cells[j : j + 4] == ["SP 2x2 <b>", "\u2014", "55", "\u2014"]
    assert "Table 1: CIFAR-10 accuracy" in text and "substitute note: JPEG CIFAR-10" in text
    # provenance: profile, seed, device, versions, commit, data kind and size from the recorded counts, wall times
    for s in (
        "profile cpu",
        "seed 7",
        "cpu (2 threads, x86_64)",
        "2.14.1",
        "substitute",
        "mirror copy",
        "INRIA Holidays (not available)",
        "12.5 s",
        "44.8 s",
        "reduced: train 200 of 50,000",
        "0123456789ab + uncommitted changes",
        "Effective parameters",
    ):
        assert s in text, s
    assert "87.3 s over 3 of 5 stages" in text  # 12.5 + 30 + 44.8; slowfeat and crosslayer have none
    assert "data-images-ok" in text  # the self-check script
    # lists are shown in full, not collapsed; the executed notebook is linked
    assert "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]" in text
    nb = [u for u in p.urls if u.endswith("notebook.ipynb")]
    assert len(nb) == 1 and (html_path.parent / nb[0]).resolve() == (res / "autopool" / "notebook.ipynb").resolve()


def test_the_page_opens_with_the_claims_and_claims_md_is_written(built):
    res, html_path, md_path = built
    text = html_path.read_text()
    assert text.index('id="claims"') < text.index("<h2>Summary</h2>") < text.index('id="stage-')
    assert "2 claims: 1 reproduced, 0 not reproduced, 0 inconclusive, 1 not testable here." in text
    assert "2.5 [0.5, 4.5] points" in text and "st-reproduced" in text
    cm = (res / "claims.md").read_text()
    assert cm.startswith("# Claims ledger")
    assert (
        '| Sukhbaatar et al. 2013 (000) | "AP outperformed SP" (Table 1) `ap_beats_sp` | 2.5 [0.5, 4.5] points '
        "|  | reproduced |  |" in cm
    )
    assert "| not testable here (data) |" in cm and "Why: VOC is not here." in cm
    # issue 30: what changed since the committed ledger (this fixture is no git checkout), each paper's forest plot
    assert "**What changed since the committed ledger:**" in cm and "No committed ledger to compare with" in cm
    assert "[autopool](autopool/figures/claims.png)" in cm
    assert "The 95 % interval [0.5, 4.5] points lies entirely > 0." in cm
    assert "## Claims" in md_path.read_text()


def test_a_claim_that_flips_between_hosts_is_marked_in_every_view(tmp_path):
    """Issue 48: a row whose status another host did not give is marked host-dependent (status cell, counts, the
    ledger's section, the HTML); a flip recorded against an earlier run is listed as stale; claims.json untouched."""
    res = make_results(tmp_path)
    row = json.loads((res / "autopool" / "claims.json").read_text())[0]
    before = (res / "autopool" / "claims.json").read_bytes()

    def flip(value):
        return {
            "stage": "autopool",
            "profile": "cpu",
            "claim": row["id"],
            "committed": {"host": "Host A", "status": row["status"], "value": value, "commit": "aaaaaaaaaaaa"},
            "rerun": {"host": "Host B", "status": "inconclusive", "value": 0.123456789, "commit": "bbbbbbbbbbbb"},
            "date": "2026-12-07",
        }

    flips = res.parent / "records" / "host_flips.json"  # an input beside results/, never in it
    flips.parent.mkdir()
    flips.write_text(json.dumps({"flips": [flip(row["value"]), flip(row["value"] + 1.0)]}))
    html_path, md_path = report.build(res, tmp_path / "out", STAGES)
    ledger_md = (res / "claims.md").read_text()
    cell = f"{row['status']}, host-dependent (inconclusive on Host B): not a verdict"
    assert cell in ledger_md and cell in md_path.read_text() and cell in html_path.read_text()
    assert f"1 of them depend on the host (another host gave another status: not a verdict): `{row['id']}`" in ledger_md
    assert f"`{row['id']}` (autopool): {row['status']} on Host A (commit aaaaaaaaaa" in ledger_md
    # both values as the ledger writes numbers (4 significant digits), not as Python's float repr
    assert f"value {row['value']:.4g}), inconclusive on Host B (commit bbbbbbbbbb, value 0.1235; verified" in ledger_md
    assert ledger_md.count("stale: `ap_beats_sp` (autopool) flipped on Host B") == 1
    assert "host-dependent" in html_path.read_text().split('id="host-flips"')[1]
    assert (res / "autopool" / "claims.json").read_bytes() == before  # the judged row is never rewritten
    # none recorded: said so
    flips.write_text(json.dumps({"flips": []}))
    report.build(res, tmp_path / "out", STAGES)
    text = (res / "claims.md").read_text()
    assert "host-dependent (" not in text and "none recorded: every verification" in text


def test_readme_block_is_rewritten_from_the_claims(tmp_path):
    res = make_results(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\nbefore\n<!-- claims:begin -->\nold\n<!-- claims:end -->\nafter\n")
    report.build(res, tmp_path / "out", STAGES, readme=readme)
    text = readme.read_text()
    assert "before" in text and "after" in text and "old" not in text
    assert (
        "**2 claims** in the last `cpu` run: **1** reproduced, **0** not reproduced, **0** inconclusive, "
        "**1** not testable here." in text
    )
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers\n")
    report.build(res, tmp_path / "out", STAGES, readme=plain)
    assert plain.read_text() == "no markers\n"


def test_no_absolute_path_of_this_machine_reaches_the_page(tmp_path, monkeypatch):
    from poolrep import paths

    res = make_results(tmp_path)
    run = json.loads((res / "autopool" / "run.json").read_text())
    run["data"]["videos"] = {"source": f"{paths.ROOT}/data/videos", "clips": ["bikes.mp4"]}
    io.save_json(res / "autopool" / "run.json", run)
    monkeypatch.setenv("POOLREP_DATA_MIRROR", "/srv/some/where/shared/datasets")
    assert report.local_paths("/srv/some/where/shared/datasets/videos/a.mp4") == "$POOLREP_DATA_MIRROR/videos/a.mp4"
    html_path, md_path = report.build(res, tmp_path / "out", STAGES)
    for f in (html_path, md_path, res / "claims.md"):
        assert str(paths.ROOT) not in f.read_text(), f


def test_markdown_has_the_same_content(built):
    res, _, md_path = built
    md = md_path.read_text()
    for title in ("Table 1: CIFAR-10 accuracy", "Table 2: sweep", "mAP", "Cross"):
        assert f"**{title}**" in md
    assert "| AP K=400 | 64.6 | 60.12 | -4.475 |" in md
    assert "| SP 2x2 <b> | \u2014 | 55 | \u2014 |" in md
    assert "**MISSING:** stage `slowfeat`" in md and "**PARTIAL:**" in md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {Path(x).name for x in links} == FIGURES
    for link in links:  # relative links that resolve from the report's folder
        assert not link.startswith(("http", "/")) and (md_path.parent / link).resolve().is_file()


def test_unknown_folders_and_dvc_stages_are_reported(tmp_path, monkeypatch):
    res = make_results(tmp_path)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  zoo:\n    cmd: poolrep run zoo\n  report:\n    cmd: poolrep report\n"
    )
    io.save_json(res / "extra" / "metrics.json", {"x": 1, "run": _run_block("extra")})
    names = dict(report.expected_stages(res, tmp_path))
    assert list(names)[:7] == ["prepare", "backbone", *report.PAPERS]
    assert names["zoo"] == "paper" and names["extra"] == "paper" and "report" not in names
    import pandas as pd

    io.save_table(pd.DataFrame({"k": range(130), "v": [0.5] * 130}), res / "extra", "long")
    st = {s.name: s for s in report.read_all(res, report.expected_stages(res, tmp_path))}
    html = report.stage_html(st["extra"])
    assert html.count("<tr>") >= report.MAX_ROWS and "30 more rows (of 130) are only in tables/long.csv" in html
    assert st["zoo"].status == "missing" and st["prepare"].status == "missing" and st["extra"].status == "partial"


def test_cli_report_writes_into_results(tmp_path, monkeypatch):
    from poolrep import cli, paths

    res = make_results(tmp_path)
    monkeypatch.setattr(paths, "RESULTS", res)
    assert cli.main(["report"]) == 0
    assert (res / "report" / "index.html").exists() and (res / "report" / "report.md").exists()
    # deterministic for the same inputs; nothing left behind but the two files
    first = (res / "report" / "index.html").read_bytes()
    assert report.main([]) == 0
    assert (res / "report" / "index.html").read_bytes() == first
    assert sorted(p.name for p in (res / "report").iterdir()) == ["index.html", "report.md", "standalone.html"]
    assert (res / "claims.md").exists()


def test_unreadable_inputs_are_reported_not_skipped(tmp_path):
    res = tmp_path / "results"
    (res / "autopool" / "tables").mkdir(parents=True)
    (res / "autopool" / "metrics.json").write_text("{not json")
    (res / "autopool" / "tables" / "t.csv").write_text("")
    s = report.read_stage(res, "autopool")
    assert s.status == "partial"
    assert any("metrics.json unreadable" in p for p in s.problems)
    assert any("table t.csv unreadable" in p for p in s.problems)


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM,
        "--headless",
        *CHROMIUM_ARGS,
        f"--user-data-dir={profile}",
        "--window-size=1200,2000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_report_renders_in_headless_chromium(built, tmp_path):
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        msg = "chromium is not installed (Debian: apt-get install -y chromium; .ci/run does this)"
        if os.environ.get("CI"):  # CI must run the browser check, not skip it
            pytest.fail(msg)
        pytest.skip(msg)
    _, html_path, _ = built
    url = html_path.resolve().as_uri()
    shot = tmp_path / "shot.png"
    r = _chromium([f"--screenshot={shot}", url], tmp_path / "profile1")
    assert shot.exists(), (r.returncode, r.stderr[-2000:])
    im = Image.open(shot).convert("L")
    assert im.size == (1200, 2000)
    lo, hi = im.getextrema()
    assert hi - lo > 100, "the screenshot is blank"

    r = _chromium(["--virtual-time-budget=5000", "--dump-dom", url], tmp_path / "profile2")
    dom = r.stdout
    assert "<html" in dom, (r.returncode, r.stderr[-2000:])
    m = re.search(r'data-images-ok="(\w+)"', dom)
    assert m, "the report's image check did not run in the browser"
    total = int(re.search(r'data-images-total="(\d+)"', dom).group(1))
    loaded = int(re.search(r'data-images-loaded="(\d+)"', dom).group(1))
    assert (total, loaded, m.group(1)) == (len(FIGURES), len(FIGURES), "true")
    p = _Collect()
    p.feed(dom)
    assert TABLE_IDS <= p.ids, f"tables missing in the browser's DOM: {TABLE_IDS - p.ids}"
    assert {i["data-figure"] for i in p.imgs} == FIGURES

    # and the check can fail: a corrupt PNG is reported as not loaded by the browser
    res = html_path.parent.parent / "results"
    (res / "pyramid" / "figures" / "pr_curve.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    bad, _ = report.build(res, tmp_path / "bad", STAGES)
    r = _chromium(["--virtual-time-budget=5000", "--dump-dom", bad.resolve().as_uri()], tmp_path / "profile3")
    assert 'data-images-ok="false"' in r.stdout and 'data-images-loaded="2"' in r.stdout


def test_benchmark_scripts_read_the_fixture(tmp_path):
    """benchmarks/stages.py sums the recorded wall times; noop_repro.py refuses without dvc.lock (runs no dvc)."""
    import sys

    root = tmp_path
    res = make_results(root)
    (root / "dvc.yaml").write_text(
        "stages:\n  backbone:\n    cmd: x\n    metrics: [results/backbone/metrics.json]\n"
        "  autopool:\n    cmd: poolrep run autopool\n    metrics: [m.json]\n"
        "  report:\n    cmd: poolrep report\n"
    )
    run = json.loads((res / "autopool" / "run.json").read_text())
    io.save_json(res / "autopool" / "run.json", {**run, "notebook_s": 20.0})
    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    r = subprocess.run(
        [sys.executable, str(bench / "stages.py"), "--root", str(root)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in r.stdout.splitlines()
        if line.startswith("| ")
    }
    # columns: profile, started, own wall s, notebook s, counted s, in dvc.lock
    assert rows["backbone"][2] == "44.8" and rows["autopool"][2:5] == ["12.5", "20.0", "20.0"]
    assert rows["pyramid"][4] == "30.0" and rows["report"][0] == "(records no time)"
    assert rows["TOTAL"][4] == "94.8"  # 44.8 + 20 (the notebook's duration wins over the own 12.5) + 30
    assert "INCOMPLETE; no time recorded for crosslayer" in r.stdout
    r = subprocess.run(
        [sys.executable, str(bench / "noop_repro.py"), "--root", str(root)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1 and "dvc.lock is absent" in r.stdout


def test_a_90_percent_interval_is_marked_where_the_header_says_95():
    from poolrep import claims as C
    from poolrep import report

    tost = C.Estimate(0.2, -0.1, 0.5, "paired bootstrap", confidence=C.TOST_CONFIDENCE)
    rows = _claims() + [
        C.equivalent(
            "no_cost", "autopool", '"costs little"', "Sec. 4", "A - B", tost, 1.0, setting="cpu", why=""
        ).as_dict()
    ]
    views = {v["id"]: v for v in report.claim_views(rows)}
    assert views["no_cost"]["ours"].endswith("(90 % interval)")
    assert "interval)" not in views["ap_beats_sp"]["ours"] and views["ap_beats_sp"]["ours"].startswith("2.5")
    assert not views["voc"]["ours"]  # no number: nothing to mark
    assert report.OURS_HEADER == "ours [95 % interval unless marked]"
    assert "(90 % interval)" in report.claims_md(rows)
