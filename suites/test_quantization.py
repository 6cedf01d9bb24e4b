"""Quantization suite: every zoo model × (fp32 + quantization presets) × available backends."""

import pytest

pytestmark = pytest.mark.optbench_suite("quantization")


def test_quantization(optbench, optbench_case, benchmark):
    optbench.run(optbench_case, benchmark)
