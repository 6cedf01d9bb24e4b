"""pytest hooks of the analysis suites (interpretability, drift, cost): the ``--optbench-price`` option, their
presets, the run-wide :class:`~harness.analysis.run.AnalysisRun` and its fixture, and their place at the end of
the run. Loaded by :mod:`harness.plugin` (``pytest_plugins``)."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

ANALYSIS_KEY = pytest.StashKey["Any"]()
LAST_SUITES = frozenset({"cost"})  # suites that read what the others measured this run: they run last


def _price(value: str) -> Any:
    from harness.analysis.prices import parse_price
    from harness.errors import ConfigError

    try:
        return parse_price(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--optbench-price {value!r}: ")) from None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("optbench")
    group.addoption("--optbench-price", metavar="NAME=USD_PER_HOUR", action="append", default=[], type=_price,
                    help="an hourly price to cost serving and training at, beside the shipped table "
                         "(harness/analysis/prices.py), repeatable, e.g. my_box=0.12; a shipped name is replaced "
                         "(default: the shipped table only)")


@pytest.hookimpl(tryfirst=True)  # before harness.plugin's configure, which checks --optbench-configs names
def pytest_configure(config: pytest.Config) -> None:
    import harness.techniques  # noqa: F401 - the source presets the analysis suites wrap
    from harness.analysis import cost, drift_case, interpretability_case
    from harness.analysis.prices import price_table
    from harness.analysis.run import AnalysisRun

    run = AnalysisRun(prices=price_table(config.getoption("optbench_price")))
    for module in (interpretability_case, drift_case, cost):
        module.register(run)
    config.stash[ANALYSIS_KEY] = run


@pytest.fixture
def optbench_analysis(request: pytest.FixtureRequest) -> Any:
    """The run's AnalysisRun: ``optbench_analysis.run(optbench, optbench_case)`` measures and judges a case."""
    return request.config.stash[ANALYSIS_KEY]


def _suite(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("optbench_case") if callspec is not None else None
    return getattr(case, "suite", None)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The cost suite runs after every other, so that it prices the throughput this run measured."""
    items.sort(key=lambda item: _suite(item) in LAST_SUITES)  # stable: the order within each part is kept
