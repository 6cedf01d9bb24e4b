"""optbench's block in a pytest-html report: the run's counts and a link to optbench's own HTML report."""

from __future__ import annotations

import os
from pathlib import Path

from harness.report.html import template_environment
from harness.result import RunResult


def render(result: RunResult, report: Path | None, html_path: str | None) -> str:
    """HTML from a Jinja2 template (autoescaped); the link is relative to the pytest-html page where one is known."""
    link = None
    if report is not None:
        link = str(report.resolve())
        if html_path:
            link = os.path.relpath(report.resolve(), Path(html_path).resolve().parent)
        else:
            link = report.resolve().as_uri()
    return template_environment().get_template("pytest_html_summary.html.j2").render(
        counts=result.counts(), failures=len(result.failed_checks()), link=link, machine=result.machine())
