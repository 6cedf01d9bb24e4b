"""Cost suite: dollars per million inferences from the throughput the other suites measured, and training cost."""

import pytest

pytestmark = pytest.mark.optbench_suite("cost")


def test_cost(optbench, optbench_analysis, optbench_case):
    optbench_analysis.run(optbench, optbench_case)
