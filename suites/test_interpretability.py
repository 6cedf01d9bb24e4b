"""Interpretability suite: the reference's rules (a depth-3 tree on its predictions) and how each variant keeps them."""

import pytest

pytestmark = pytest.mark.optbench_suite("interpretability")


def test_interpretability(optbench, optbench_analysis, optbench_case):
    optbench_analysis.run(optbench, optbench_case)
