"""Search suite: the configurations an accuracy-aware search found (``python -m harness search int8``), gated like
any other preset, so CI defends what the search found without running the search."""

import pytest

pytestmark = pytest.mark.optbench_suite("search")


def test_search(optbench, optbench_case, benchmark):
    optbench.run(optbench_case, benchmark)
