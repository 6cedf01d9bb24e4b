"""The report opened in headless Chromium (Debian's, driven by Playwright): no console error, every plot drawn,
the summary's counts those of the run record, names holding HTML shown as text; a screenshot is saved."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.report import html
from harness.result import RunResult
from tests.report import records
from tests.report.test_html import XSS, xss_run
from tests.services import unavailable

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-dev-shm-usage"]


def _unavailable(reason: str) -> None:
    unavailable("a headless browser", reason, ".ci/run installs Debian's chromium package")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (it is a dev dependency: pip install -e .[dev])")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _unavailable("no `chromium` on PATH")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        yield b
        b.close()


def _open(browser: Any, path: Path) -> tuple[Any, list[str]]:
    """Open the page and wait until every plot is drawn; returns it with every console error and dialog seen."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("request", lambda r: problems.append(f"request: {r.url}") if not r.url.startswith(("file:", "data:"))
            else None)
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-plots=drawn]", timeout=60_000)
    return page, problems


def _undrawn(page: Any) -> list[int]:
    """Indices of plots with no non-empty SVG or canvas."""
    return page.evaluate("""() => Array.from(document.querySelectorAll("div.plot")).flatMap((div, i) => {
        const drawn = Array.from(div.querySelectorAll("svg.main-svg, canvas")).some(el => {
            const box = el.getBoundingClientRect();
            return box.width > 0 && box.height > 0 && (el.tagName === "CANVAS" || el.querySelector("path, text"));
        });
        return drawn ? [] : [i];
    })""")


def test_the_report_renders_every_plot_without_a_console_error(browser, tmp_path, request):
    data = records.run()
    path = records.write(tmp_path, data)
    result = RunResult.load(path)
    report = html.write([result], tmp_path / "report.html")
    page, problems = _open(browser, report)
    assert problems == []
    n_plots = page.locator("div.plot").count()
    assert n_plots > 20 and _undrawn(page) == []
    counts = {el.get_attribute("data-status"): int(el.locator("b").inner_text())
              for el in page.locator("div.count").all()}
    assert counts == result.counts()
    assert page.locator("#failures tr.fail").count() == len(result.failed_checks())
    assert page.locator("div.images img").first.evaluate("img => img.complete && img.naturalWidth") == 2
    shots = Path(request.config.rootpath) / "results"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / "report-screenshot.png"))
    assert (shots / "report-screenshot.png").stat().st_size > 10_000
    page.close()


def test_html_in_a_model_name_shows_as_text_and_never_runs(browser, tmp_path):
    report = html.write([RunResult.from_dict(xss_run())], tmp_path / "report.html")
    page, problems = _open(browser, report)
    assert problems == []  # no alert dialog
    assert page.locator("#models h3").first.inner_text() == XSS
    assert page.locator("#failures td").first.inner_text() == f"{XSS}-int8-onnxruntime"
    assert _undrawn(page) == []
    page.close()


def test_an_empty_run_renders_a_page_that_says_so(browser, tmp_path):
    report = html.write([RunResult.from_dict(records.run([]))], tmp_path / "report.html")
    page, problems = _open(browser, report)
    assert problems == []
    assert "This run measured no cases" in page.locator("#empty-run").inner_text()
    assert page.locator("div.plot").count() == 0
    page.close()
