"""The plugin's reports end to end, through pytester on toy models: the main run writes its JSON record, the HTML
report and a history row from one RunResult; an unreachable history still leaves the record; pytest-html gets
optbench's summary and a link without optbench depending on it."""

from __future__ import annotations

import json
import re

# Imported before pytester's in-process runs, which drop what they import: psycopg's C extension imported a second
# time would leave SQLAlchemy catching another class than the one raised, in tests that run after these.
import psycopg  # noqa: F401
import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401

from harness import history
from harness.result import RunResult
from tests.test_plugin import _import_lazy_modules_once, toy  # noqa: F401 - fixtures

ARGS = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-allow-new")


def test_a_run_writes_its_record_report_and_history_from_one_result(toy, pytester):  # noqa: F811
    result = toy(*ARGS)
    result.assert_outcomes(passed=2, failed=1)  # harsh breaks its contract
    results = pytester.path / "results"
    (run_file,) = results.glob("run-*.json")
    run = RunResult.load(run_file)
    report = (results / "report.html").read_text()
    for status, n in run.counts().items():
        assert f'data-status="{status}"><b>{n}</b>' in report
    assert "toy_mlp-harsh-torch_eager" in report
    assert history.count_rows(history.default_url(results)) == (1, len(run.cases))
    result.stdout.fnmatch_lines(["*optbench*", "case*p50 b1*verdict*", f"run record: {run_file}",
                                 f"report: {results / 'report.html'}"])


def test_an_unreachable_history_fails_the_run_and_still_writes_the_record(toy, pytester):  # noqa: F811
    url = "postgresql+psycopg://optbench:pw@127.0.0.1:1/history"
    result = toy("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-configs=gentle",
                 "--optbench-allow-new", f"--optbench-history={url}")
    assert result.ret == 1
    (run_file,) = (pytester.path / "results").glob("run-*.json")
    result.stdout.fnmatch_lines([
        "optbench: history database postgresql+psycopg://optbench:***@127.0.0.1:1/history: cannot append the run: "
        f"OperationalError*(the run record {run_file} is written)"])
    assert (pytester.path / "results" / "report.html").exists()  # the report still comes, from this run alone


def test_the_report_can_go_elsewhere_or_be_turned_off(toy, pytester):  # noqa: F811
    args = ("--optbench-models=toy_mlp", "--optbench-backends=torch_eager", "--optbench-configs=gentle",
            "--optbench-allow-new", "--optbench-history=off")
    toy(*args, "--optbench-report=off").assert_outcomes(passed=2)
    assert not (pytester.path / "results" / "report.html").exists()
    assert not (pytester.path / "results" / "history.sqlite").exists()
    toy(*args, f"--optbench-report={pytester.path / 'elsewhere.html'}").assert_outcomes(passed=2)
    assert "optbench report" in (pytester.path / "elsewhere.html").read_text()


def test_pytest_html_gets_a_summary_and_a_link_to_the_report(toy, pytester):  # noqa: F811
    toy(*ARGS, "--optbench-configs=gentle", "--html=ph/tests.html")
    page = (pytester.path / "ph" / "tests.html").read_text()
    block = re.search(r'<div class="optbench-summary">.*?</div>', page, re.S)
    assert block is not None
    assert re.search(r"cases: 0 pass, 0 inconclusive, 0 fail, 0 known, 2 new, 0 error, 0 skipped", block.group(0))
    assert 'href="../results/report.html"' in block.group(0)


def test_without_pytest_html_the_plugin_still_loads(toy, pytester):  # noqa: F811
    result = toy(*ARGS, "--optbench-configs=gentle", "-p", "no:html")
    result.assert_outcomes(passed=2)
    assert json.loads(next((pytester.path / "results").glob("run-*.json")).read_text())["commit"] is None
