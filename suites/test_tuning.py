"""Tuning suite: an Optuna TPE study per seed against the zoo's default recipe and a random search at the same
trial budget, on the models its presets name (torch eager)."""

import pytest

pytestmark = pytest.mark.optbench_suite("tuning")


def test_tuning(optbench, optbench_case, benchmark):
    optbench.run(optbench_case, benchmark)
