import pytest

import harness.techniques  # noqa: F401 - the source presets
from harness.analysis.variants import AnalysisConfig
from harness.errors import ConfigError


def test_a_source_must_name_a_registered_suite_and_preset():
    with pytest.raises(ConfigError, match="`source` must name a preset as suite/preset"):
        AnalysisConfig(name="x", source="torch_dynamic_int8")
    with pytest.raises(ConfigError, match="`source` 'quantization/nope'"):
        AnalysisConfig(name="x", source="quantization/nope")


def test_a_variant_runs_only_on_its_native_backend():
    onnx = AnalysisConfig(name="x", source="quantization/ort_static_int8_minmax")
    torch_variant = AnalysisConfig(name="y", source="quantization/torch_dynamic_int8")
    assert onnx.runs_on("onnxruntime") and not onnx.runs_on("torch_eager")
    assert torch_variant.runs_on("torch_eager") and not torch_variant.runs_on("torch_compile")
