"""Pruning suite: the sparsity sweep, structured pruning with and without fine-tuning, and prune-then-quantize."""

import pytest

pytestmark = pytest.mark.optbench_suite("pruning")


def test_pruning(optbench, optbench_case, benchmark):
    optbench.run(optbench_case, benchmark)
