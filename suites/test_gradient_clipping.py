"""Gradient clipping suite: clipping against the same training unclipped, over seeds (torch eager)."""

import pytest

pytestmark = pytest.mark.optbench_suite("gradient_clipping")


def test_gradient_clipping(optbench, optbench_case, benchmark):
    optbench.run(optbench_case, benchmark)
