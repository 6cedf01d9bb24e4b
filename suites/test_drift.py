"""Drift suite: each variant beside its reference under shifted inputs, and the drift detectors' power on it."""

import pytest

pytestmark = pytest.mark.optbench_suite("drift")


def test_drift(optbench, optbench_analysis, optbench_case):
    optbench_analysis.run(optbench, optbench_case)
