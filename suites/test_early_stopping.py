"""Early stopping suite: the technique against its seeded control, on the zoo models its presets name (torch eager)."""

import pytest

pytestmark = pytest.mark.optbench_suite("early_stopping")


def test_early_stopping(optbench, optbench_case, benchmark):
    optbench.run(optbench_case, benchmark)
