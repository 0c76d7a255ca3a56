"""The report in a real browser: Debian's Chromium, headless, driven by Playwright.

Needs the ``chromium`` package (/usr/bin/chromium) and the ``playwright`` Python package; the
browsers Playwright would download are not used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from sandbench.report import build_report
from report_demo import write_demo_run
from sandbench.results import load_run

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

#: Per chart: drawn by plotly, with an SVG and at least one trace in it.
CHARTS_DRAWN = """() => Array.from(document.querySelectorAll("div.chart")).map(div => ({
    name: div.dataset.chart,
    plotted: div.classList.contains("js-plotly-plot"),
    svg: div.querySelector("svg.main-svg") !== null,
    traces: div.querySelectorAll("g.trace").length,
}))"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def open_report(browser: Any, html: Path) -> tuple[Any, list[str]]:
    """The page once every chart is drawn, and every error it reported on the way."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    page.goto(html.as_uri())
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('div.chart'))"
        ".every(div => div.querySelector('svg.main-svg'))", timeout=60_000)
    return page, errors


def test_every_chart_draws_without_errors(browser: Any, tmp_path: Path) -> None:
    run_dir = write_demo_run(tmp_path / "run", rounds=12)
    report = build_report(load_run(run_dir))
    html = run_dir / "report.html"
    html.write_text(report.html, encoding="utf-8")

    page, errors = open_report(browser, html)
    drawn = page.evaluate(CHARTS_DRAWN)

    assert errors == []
    assert [chart["name"] for chart in drawn] == [chart.name for chart in report.charts]
    assert len(drawn) == int(page.get_attribute("body", "data-charts")) > 10
    assert {chart.section for chart in report.charts} == {"start", "syscall", "io"}
    undrawn = [c["name"] for c in drawn if not (c["plotted"] and c["svg"] and c["traces"])]
    assert undrawn == []


def test_raw_output_reads_as_text(browser: Any, tmp_path: Path) -> None:
    run_dir = write_demo_run(tmp_path / "run", rounds=6, status="interrupted")
    html = build_report(load_run(run_dir)).html
    (run_dir / "report.html").write_text(html, encoding="utf-8")

    page, errors = open_report(browser, run_dir / "report.html")

    assert errors == []
    assert page.inner_text("#failures pre") == ""  # folded until asked for
    page.click("#failures details summary")
    assert "<timeout>" in page.inner_text("#failures pre")
    assert "INTERRUPTED" in page.inner_text("[role=alert]").upper()
