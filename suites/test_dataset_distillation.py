"""Dataset distillation suite: k synthetic images per class vs k random real ones vs the full split (torch eager)."""

import pytest

pytestmark = pytest.mark.optbench_suite("dataset_distillation")


def test_dataset_distillation(optbench, optbench_case, benchmark):
    optbench.run(optbench_case, benchmark)
