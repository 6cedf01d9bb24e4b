"""Knowledge distillation suite: each model's declared student, distilled vs trained from scratch, on every backend."""

import pytest

pytestmark = pytest.mark.optbench_suite("distillation")


def test_distillation(optbench, optbench_case, benchmark):
    optbench.run(optbench_case, benchmark)
