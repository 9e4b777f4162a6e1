"""The report as a reader sees it, in a real headless Chromium at 1,280 px (Debian's ``chromium``, driven by
Playwright with ``executable_path``, as in tests/test_jupyterlab_browser.py): no horizontal scroll, every stage's
section, every paper's claims section and every figure present and decoded, the overview's counts equal to
``claims.md``'s, and a claim's row expands to its details on a click (``<details>``, no script).

Run on a small fixture results tree (tests/test_report.py's) and on a copy of the repository's committed results
(checked against the committed ``results/claims.md``). In CI (CI=true) a missing browser or Playwright fails the
test; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS  # tests/browser.py: one Chromium set-up
from test_report import STAGES, _claims, _figure, make_results

from poolrep import claims as C
from poolrep import io, paths, report

WIDTH = 1280
COUNTS = re.compile(
    r"(\d+) claims: (\d+) reproduced, (\d+) not reproduced, (\d+) inconclusive, (\d+) not testable here\."
)


def _require(ok: bool, msg: str) -> None:
    if not ok:
        if os.environ.get("CI"):  # CI must run the browser check, not skip it
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    _require(
        sync_playwright is not None, "Playwright's Python package is not installed (pip install -r requirements.txt)"
    )
    _require(Path(CHROMIUM).exists(), f"chromium is not installed at {CHROMIUM} (Debian: apt-get install -y chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


def _long_claims(stage: str) -> list[dict]:
    """Claims with long quotes, settings and whys: what makes a row tall or a table wide."""
    est = C.Estimate(-1.25, -3.5, 1.0, "paired bootstrap over 500 queries (9999 resamples)")
    long = "a long sentence about the setting, with a path-like token " + "x" * 120 + " and more words " * 12
    return [
        C.greater(
            f"{stage}_claim_{i}",
            stage,
            '"' + "Pooling helps. " * 14 + '"',
            "Table 3",
            "A - B",
            est,
            unit="mAP points",
            setting=long,
            why=long,
        ).as_dict()
        for i in range(3)
    ] + [
        C.not_testable(
            f"{stage}_voc",
            stage,
            '"SOTA on VOC"',
            "Abstract",
            "mIoU",
            setting="cpu",
            why="VOC is not here.",
            reason="data",
        ).as_dict()
    ]


def check_page(browser, html: Path, claims_md: Path, papers: set[str], stages: set[str], shot: Path | None = None):
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    try:
        page.goto(html.resolve().as_uri(), wait_until="load")
        # no horizontal scroll at 1,280 px
        sw, iw = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert sw <= iw, f"horizontal scroll: scrollWidth {sw} > innerWidth {iw}"
        # every stage's section, every paper's claims section, every figure decoded
        got = set(page.eval_on_selector_all("section[data-stage]", "els => els.map(e => e.dataset.stage)"))
        assert got == stages
        got = set(page.eval_on_selector_all("section.paper", "els => els.map(e => e.dataset.paper)"))
        assert got == papers
        imgs = page.eval_on_selector_all("img", "els => els.map(e => [e.dataset.figure, e.naturalWidth])")
        assert imgs and all(w > 0 for _, w in imgs), imgs
        for p in papers:  # each paper's forest plot above its rows
            if (html.parent.parent / p / "figures" / "claims.png").exists():
                assert page.locator(f"#claims-{p} img[data-figure='claims.png']").count() == 1
        assert page.get_attribute("html", "data-images-ok") == "true"
        # the overview's totals are claims.md's counts
        n, rep, notrep, inc, nt = map(int, COUNTS.search(claims_md.read_text()).groups())
        cells = page.eval_on_selector_all(
            "table.overview tr.total td", "els => els.map(e => [e.dataset.col, Number(e.textContent)])"
        )
        by = dict(cells)
        assert by["total"] == n and by["reproduced"] == rep and by["not reproduced"] == notrep
        assert by["inconclusive"] == inc
        assert sum(v for k, v in cells if k.startswith("not testable here")) == nt
        rows = page.eval_on_selector_all("table.overview tbody tr:not(.total)", "els => els.map(e => e.dataset.paper)")
        assert set(rows) == papers
        # a claim's row expands on a click: its details were hidden, then shown
        first = page.locator("details.claim").first
        body = first.locator("dl.body")
        assert not body.is_visible() and first.evaluate("e => e.open") is False
        first.locator("summary").click()
        assert first.evaluate("e => e.open") is True and body.is_visible()
        assert "test" in body.inner_text()
        sw, iw = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert sw <= iw, f"horizontal scroll once a row is open: {sw} > {iw}"
        if shot is not None:
            first.locator("summary").click()  # closed again for the pictures: the page's top, the first paper
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(shot))
            page.locator("section.paper").first.screenshot(path=str(shot.with_name(shot.stem + "_paper.png")))
    finally:
        page.close()


def test_fixture_report_in_chromium_at_1280(browser, tmp_path):
    res = make_results(tmp_path)
    _figure(res / "autopool", "claims", "black")  # a forest plot for autopool
    claims = _claims() + _long_claims("pyramid")
    io.save_json(res / "pyramid" / "claims.json", [c for c in claims if c["stage"] == "pyramid"])
    # a wide table (many columns, long cells) must scroll inside its own box, never the page
    import pandas as pd

    wide = pd.DataFrame({f"column_{i}_with_a_long_name": ["0123456789abcdef" * 4] for i in range(14)})
    io.save_table(wide, res / "pyramid", "wide", title="A wide table")
    html, _ = report.build(res, res / "report", STAGES)
    check_page(browser, html, res / "claims.md", {"autopool", "pyramid"}, {n for n, _ in STAGES})


def test_committed_results_report_in_chromium_at_1280(browser, tmp_path):
    """The repository's own results (copied: the build writes claims.md), against the committed claims.md."""
    committed = paths.ROOT / "results"
    have = sorted(p.parent.name for p in committed.glob("*/claims.json"))
    _require(bool(have) and (committed / "claims.md").exists(), "no committed results with claims")
    res = tmp_path / "results"
    shutil.copytree(committed, res, ignore=shutil.ignore_patterns("report", "*.ipynb"))
    html, _ = report.build(res, res / "report", report.expected_stages(res, paths.ROOT))
    papers = {p for p in have if json.loads((committed / p / "claims.json").read_text())}
    stages = {n for n, _ in report.expected_stages(res, paths.ROOT)}
    shot = Path(os.environ.get("POOLREP_REPORT_SHOT", tmp_path / "report_1280.png"))
    check_page(browser, html, committed / "claims.md", papers, stages, shot)
    assert shot.stat().st_size > 10_000
