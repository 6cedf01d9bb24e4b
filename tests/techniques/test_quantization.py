"""Quantization configs: validation naming the field, round trips, presets, and each config's artifact on toys."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from harness.artifact import Artifact, ArtifactKind, Precision
from harness.backends.onnxruntime import OnnxRuntime
from harness.backends.torch_eager import TorchEager
from harness.cache import Cache
from harness.context import Context
from harness.errors import ConfigError, TechniqueError
from harness.techniques import TECHNIQUES, apply, presets
from harness.techniques.quantization import (
    HalfPrecisionConfig,
    OrtDynamicInt8Config,
    OrtStaticInt8Config,
    TorchDynamicInt8Config,
)
from model_zoo.spec import Split

QUANT_PRESETS = presets("quantization")


@pytest.mark.parametrize(
    ("cls", "changes", "message"),
    [
        (OrtStaticInt8Config, {"calibration_method": "foo"},
         "`calibration_method` must be one of MinMax, Entropy, Percentile; got 'foo'"),
        (OrtStaticInt8Config, {"per_channel": 1}, "`per_channel` must be true or false, got 1"),
        (OrtStaticInt8Config, {"quant_format": "QX"}, "`quant_format` must be one of QDQ, QOperator; got 'QX'"),
        (OrtStaticInt8Config, {"activation_type": "U8"}, "`activation_type` must be one of QInt8, QUInt8; got 'U8'"),
        (OrtStaticInt8Config, {"weight_type": "S8"}, "`weight_type` must be one of QInt8, QUInt8; got 'S8'"),
        (OrtStaticInt8Config, {"activation_type": "QInt8", "weight_type": "QUInt8"}, "`weight_type` QUInt8 needs"),
        (OrtStaticInt8Config, {"op_types": ("",)}, "`op_types` must be a non-empty list of ONNX op types"),
        (OrtStaticInt8Config, {"op_types": ()}, "`op_types` must be a non-empty list of ONNX op types"),
        (OrtStaticInt8Config, {"percentile": 50.0}, "`percentile` must be in (90, 100], got 50.0"),
        (OrtStaticInt8Config, {"fp32_first_layers": -1}, "`fp32_first_layers` must be a whole number >= 0, got -1"),
        (OrtStaticInt8Config, {"weight_rounding": "adaround"},
         "`weight_rounding` must be one of nearest, gptq; got 'adaround'"),
        (OrtStaticInt8Config, {"gptq_views": -1}, "`gptq_views` must be a whole number >= 0, got -1"),
        (OrtStaticInt8Config, {"weight_rounding": "gptq", "quant_format": "QOperator"},
         "`weight_rounding` gptq needs `quant_format` QDQ"),
        (OrtDynamicInt8Config, {"per_channel": "yes"}, "`per_channel` must be true or false, got 'yes'"),
        (OrtDynamicInt8Config, {"op_types": ("Softmax",)}, "`op_types` must hold op types among MatMul, Gemm"),
        (OrtDynamicInt8Config, {"op_types": "MatMul"}, "`op_types` must be a non-empty list of ONNX op types"),
        (OrtDynamicInt8Config, {"weight_type": "int8"}, "`weight_type` must be one of QInt8, QUInt8; got 'int8'"),
        (OrtDynamicInt8Config, {"reduce_range": "auto"}, "`reduce_range` must be true or false, got 'auto'"),
        (HalfPrecisionConfig, {"dtype": "fp8"}, "`dtype` must be one of fp16, bf16; got 'fp8'"),
        (TorchDynamicInt8Config, {"min_quality_retention": 1.5}, "`min_quality_retention` must be in [0, 1]"),
        (TorchDynamicInt8Config, {"name": "has space"}, "`name` must be a non-empty slug"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_validation_names_the_bad_field(cls, changes, message):
    with pytest.raises(ConfigError) as info:
        cls(**{"name": "c", **changes})
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    "config",
    [c for _, c in QUANT_PRESETS.items()] + [OrtStaticInt8Config(name="all_ops", op_types=None, percentile=99.9)],
    ids=lambda c: c.name,
)
def test_to_dict_round_trips(config):
    data = config.to_dict()
    assert type(config).from_dict(data) == config
    assert data["type"] == type(config).__name__


def test_presets_of_the_quantization_suite():
    assert set(QUANT_PRESETS.names()) == {
        "torch_dynamic_int8", "bf16", "fp16", "ort_dynamic_int8_per_tensor", "ort_dynamic_int8_per_channel",
        "ort_dynamic_int8_smooth",
        "ort_dynamic_int8_conv", "ort_static_int8_minmax", "ort_static_int8_percentile",
        "ort_static_int8_first3_fp32", "ort_static_int8_gptq", "ort_static_int8_gptq_f5",
    }
    assert {type(c).__name__ for _, c in QUANT_PRESETS.items()} <= set(TECHNIQUES.names())


def test_the_quality_first_static_preset_runs_only_in_the_large_job():
    """Its GPTQ over 6 crops of each 224x224 photograph costs minutes: never in the main command."""
    from harness.case import generate_cases

    f5 = QUANT_PRESETS.get("ort_static_int8_gptq_f5")
    assert f5.is_large() and not QUANT_PRESETS.get("ort_static_int8_gptq").is_large()
    assert TECHNIQUES.get(type(f5).__name__).config is type(f5)
    main = {c.config.name for c in generate_cases("quantization", ["digits_resnet"], backends=["onnxruntime"])}
    large = {c.config.name for c in generate_cases("quantization", ["digits_resnet"], backends=["onnxruntime"],
                                                   large=True)}
    assert "ort_static_int8_gptq" in main and "ort_static_int8_gptq_f5" not in main
    assert "ort_static_int8_gptq_f5" in large


@pytest.mark.parametrize("config", [c for _, c in QUANT_PRESETS.items()], ids=lambda c: c.name)
def test_int8_configs_promise_int8_in_their_proof(config):
    metrics = {e.metric for e in config.expectations()}
    assert "quality.retention" in metrics
    if config.precision is Precision.INT8:
        assert metrics & {"proof.int8_ops", "proof.quantized_modules"}
        assert all(e.threshold == 1.0 for e in config.expectations() if e.metric.startswith("proof."))


def test_dynamic_conv_config_needs_a_conv_model(make_reference):
    from model_zoo.traits import traits_of

    conv = QUANT_PRESETS.get("ort_dynamic_int8_conv")
    mlp, cnn = make_reference("mlp").spec, make_reference("cnn").spec
    assert conv.not_applicable(mlp, traits_of(mlp)) == "needs convolutions"
    assert conv.not_applicable(cnn, traits_of(cnn)) is None
    assert QUANT_PRESETS.get("ort_dynamic_int8_per_tensor").not_applicable(mlp, traits_of(mlp)) is None


def test_dynamic_op_types_are_ones_ort_quantizes():
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    from harness.techniques.quantization import DYNAMIC_OP_TYPES

    assert set(DYNAMIC_OP_TYPES) <= set(IntegerOpsRegistry) | {"Gemm"}


# --- artifacts on toy models ----------------------------------------------------------------------------------------


def _outputs(artifact: Artifact, ref, tctx) -> np.ndarray:
    backend = OnnxRuntime if artifact.kind is ArtifactKind.ONNX_MODEL else TorchEager
    runner = backend(Context(tctx.cache, threads=1)).prepare(artifact, ref.spec.example_inputs(2),
                                                                     ref.spec.input_names)
    return runner(ref.splits.val.inputs)


def _assert_close_to_reference(out: np.ndarray, ref, min_cosine: float) -> None:
    with torch.no_grad():
        expected = ref.module(*ref.splits.val.inputs).numpy()
    cosine = (out * expected).sum(1) / (np.linalg.norm(out, axis=1) * np.linalg.norm(expected, axis=1))
    assert cosine.min() >= min_cosine, f"worst row cosine {cosine.min():.4f}"


def test_torch_dynamic_int8_quantizes_a_copy(tctx, make_reference):
    ref = make_reference("mlp")
    artifact = apply(ref, QUANT_PRESETS.get("torch_dynamic_int8"), tctx)
    assert (artifact.kind, artifact.precision) == (ArtifactKind.TORCH_QUANTIZED, Precision.INT8)
    assert artifact.proof["quantized_modules"] == 3
    assert all(type(m) is nn.Linear for m in ref.module.modules() if isinstance(m, nn.Linear))
    _assert_close_to_reference(_outputs(artifact, ref, tctx), ref, 0.99)


@pytest.mark.parametrize("name", ["ort_dynamic_int8_per_tensor", "ort_dynamic_int8_per_channel"])
def test_ort_dynamic_int8_makes_integer_matmuls(name, tctx, make_reference):
    ref = make_reference("mlp")
    artifact = apply(ref, QUANT_PRESETS.get(name), tctx)
    assert (artifact.kind, artifact.precision) == (ArtifactKind.ONNX_MODEL, Precision.INT8)
    assert artifact.proof["int8_ops.MatMulInteger"] == 3 and artifact.proof["int8_kernels"] >= 3
    assert artifact.proof["float_matmul_conv_kernels"] == 0
    _assert_close_to_reference(_outputs(artifact, ref, tctx), ref, 0.99)


def test_ort_dynamic_conv_makes_conv_integer(tctx, make_reference):
    ref = make_reference("cnn")
    artifact = apply(ref, QUANT_PRESETS.get("ort_dynamic_int8_conv"), tctx)
    assert artifact.proof["int8_ops.ConvInteger"] == 2
    _assert_close_to_reference(_outputs(artifact, ref, tctx), ref, 0.99)


def test_ort_quantized_model_is_cached(tctx, monkeypatch, make_reference):
    ref = make_reference("mlp")
    config = QUANT_PRESETS.get("ort_dynamic_int8_per_tensor")
    first = apply(ref, config, tctx)
    monkeypatch.setattr("harness.techniques._ort_quant.quantize_dynamic", lambda *a, **k: pytest.fail("again"))
    again = apply(ref, dataclasses.replace(config, name="renamed", min_quality_retention=0.5), tctx)
    assert again.onnx_path == first.onnx_path and again.key == first.key


@pytest.mark.parametrize("name", ["ort_static_int8_minmax", "ort_static_int8_percentile"])
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_ort_static_int8_runs_int8_kernels(name, model, tctx, make_reference):
    ref = make_reference(model)
    artifact = apply(ref, QUANT_PRESETS.get(name), tctx)
    assert artifact.proof["int8_ops.QuantizeLinear"] >= 1 and artifact.proof["int8_ops.DequantizeLinear"] >= 1
    assert artifact.proof["int8_kernels"] >= 3  # ORT fused the QDQ pairs into QLinearConv/QLinearMatMul/QGemm
    _assert_close_to_reference(_outputs(artifact, ref, tctx), ref, 0.98)


def _float_weighted_layers(path) -> list[bool]:
    """For each Conv/Gemm/MatMul node of an ORT QDQ file, in graph order: whether its weight is a float constant
    (left in fp32) rather than the output of a DequantizeLinear (int8)."""
    import onnx

    model = onnx.load(str(path))
    constants = {i.name for i in model.graph.initializer}
    dequantized = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return [n.input[1] in constants for n in model.graph.node
            if n.op_type in ("Conv", "Gemm", "MatMul") and (n.input[1] in constants or n.input[1] in dequantized)]


def test_fp32_first_layers_leaves_the_first_layers_in_float(tctx, make_reference):
    ref = make_reference("cnn")  # conv, conv, linear
    config = OrtStaticInt8Config(name="first1", op_types=None, fp32_first_layers=1)
    assert _float_weighted_layers(apply(ref, config, tctx).onnx_path) == [True, False, False]
    both = dataclasses.replace(config, fp32_first_layers=2)
    assert _float_weighted_layers(apply(ref, both, tctx).onnx_path) == [True, True, False]
    assert _float_weighted_layers(apply(ref, dataclasses.replace(config, fp32_first_layers=0), tctx).onnx_path) == [
        False, False, False]


def test_fp32_first_layers_must_leave_a_layer_to_quantize(tctx, make_reference):
    config = OrtStaticInt8Config(name="all3", op_types=None, fp32_first_layers=3)
    with pytest.raises(ConfigError, match=r"`fp32_first_layers` must leave a layer to quantize: the graph has 3 "
                                             r"weighted layers, got 3$"):
        apply(make_reference("cnn"), config, tctx)


def test_fp32_first_layers_needs_convolutions_and_a_layer_left_to_quantize():
    from model_zoo.spec import InputKind, Task
    from model_zoo.traits import Traits

    assert OrtStaticInt8Config(name="c", fp32_first_layers=1).requirements() == ("conv",)
    assert OrtStaticInt8Config(name="c").requirements() == ()
    config = OrtStaticInt8Config(name="c", fp32_first_layers=3)

    def traits(layers):
        return Traits(Task.CLASSIFICATION, InputKind.IMAGE, True, True, None, None, 1e6, layers)

    assert config.not_applicable(None, traits(3)) == (
        "needs more than 3 weighted layers to leave 3 in float (it has 3)")
    assert config.not_applicable(None, traits(4)) is None
    assert config.not_applicable(None, traits(None)) is None  # a pretrained model: its graph decides, at apply
    assert OrtStaticInt8Config(name="c").not_applicable(None, traits(1)) is None


class _Tripwire(Split):
    """A test split that fails the test when anything reads it."""

    def __getattribute__(self, name: str):
        if name in ("inputs", "targets", "batch"):
            raise AssertionError("the technique read the test split")
        return super().__getattribute__(name)


def test_static_calibration_never_reads_the_test_split(tmp_path, make_reference):
    from harness.cache import Cache
    from harness.techniques.base import Context

    ref = make_reference("mlp", test_split=_Tripwire((torch.zeros(1, 16),)))
    config = OrtStaticInt8Config(name="all_ops", op_types=None)
    artifact = apply(ref, config, Context(Cache(tmp_path), threads=1))
    assert artifact.proof["int8_ops"] > 0


@pytest.mark.parametrize(("name", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_half_precision_casts_a_copy(name, dtype, tctx, make_reference):
    ref = make_reference("embedder")
    config = QUANT_PRESETS.get(name)
    artifact = apply(ref, config, tctx)
    assert artifact.precision is config.precision and artifact.kind is ArtifactKind.TORCH_MODULE
    assert {p.dtype for p in artifact.module.parameters()} == {dtype}
    assert {p.dtype for p in ref.module.parameters()} == {torch.float32}
    assert artifact.proof["half_params_share"] == 1.0


def test_bf16_runs_on_torch_eager_with_integer_inputs(tctx, make_reference):
    ref = make_reference("embedder")
    artifact = apply(ref, QUANT_PRESETS.get("bf16"), tctx)
    _assert_close_to_reference(_outputs(artifact, ref, tctx), ref, 0.99)


@pytest.mark.parametrize("name", ["ort_dynamic_int8_per_channel", "ort_static_int8_minmax"])
def test_a_failing_ort_quantizer_gives_one_line_naming_step_and_reason(name, tmp_path, make_reference, monkeypatch):
    """Seen with onnxruntime 1.30: its shape inference refused an export. The case must say so in one line, and
    no half-written model may stay in the cache."""
    import onnxruntime.quantization as ortq

    def broken(*args, **kwargs):
        raise RuntimeError("[ShapeInferenceError] Inferred shape and existing shape differ\nsecond line")

    monkeypatch.setattr(ortq, "quantize_dynamic" if "dynamic" in name else "quantize_static", broken)
    ref = make_reference("mlp")
    step = "quantize_dynamic" if "dynamic" in name else "quantize_static"
    ctx = Context(cache=Cache(tmp_path), threads=1)  # empty: the quantizer must really run
    with pytest.raises(TechniqueError) as info:
        apply(ref, QUANT_PRESETS.get(name), ctx)
    message = str(info.value)
    assert message.startswith(f"ONNX Runtime {step} failed on ") and "\n" not in message
    assert message.endswith("RuntimeError: [ShapeInferenceError] Inferred shape and existing shape differ")
    assert list((tmp_path / "onnx").iterdir()), "the fp32 export before the failing step stays cached"
    assert not list((tmp_path / "quantized").iterdir())


def test_preprocess_leaves_no_stored_shapes_for_the_quantizer_to_trip_on(tctx, make_reference, tmp_path):
    """onnxruntime 1.30's dynamic quantizer failed on the shapes quant_pre_process stores ("Inferred shape and
    existing shape differ" on a transposed Gemm weight); the pre-pass drops them, the quantizer infers its own."""
    import onnx

    from harness.techniques import _ort_quant
    from harness.techniques.quantization import reference_onnx

    src = reference_onnx(make_reference("mlp"), tctx)
    _ort_quant.preprocess(src, tmp_path / "pre.onnx")
    model = onnx.load(str(tmp_path / "pre.onnx"))
    assert len(model.graph.value_info) == 0
    assert [n.op_type for n in model.graph.node].count("Gemm") + [n.op_type for n in model.graph.node].count(
        "MatMul") >= 3  # the graph itself is still there


@pytest.mark.parametrize(
    ("machine", "flags", "saturates"),
    [
        ("x86_64", ("avx", "avx2", "fma"), True),  # VPMADDUBSW: 16-bit pairwise sums clip
        ("x86_64", ("avx2", "avx512f"), True),  # AVX-512 without VNNI too
        ("x86_64", ("avx2", "avx512f", "avx512_vnni"), False),
        ("x86_64", ("avx2", "avx_vnni"), False),
        ("aarch64", (), False),
    ],
)
def test_u8s8_saturation_is_decided_by_the_cpu(machine, flags, saturates, monkeypatch):
    from harness.techniques import _ort_quant

    monkeypatch.setattr("platform.machine", lambda: machine)  # read by harness.env.is_x86
    monkeypatch.setattr("harness.techniques._ort_quant.cpu_flags", lambda: flags)
    assert _ort_quant.saturates_u8s8() is saturates


@pytest.mark.parametrize("name", ["ort_dynamic_int8_per_tensor", "ort_static_int8_minmax"])
@pytest.mark.parametrize("saturates", [True, False])
def test_weight_range_follows_the_machine_and_is_recorded(name, saturates, tmp_path, make_reference, monkeypatch):
    ctx = Context(Cache(tmp_path), threads=1)
    monkeypatch.setattr("harness.techniques._ort_quant.saturates_u8s8", lambda: saturates)
    calls: list[bool] = []
    for step in ("quantize_dynamic", "quantize_static"):
        real = getattr(_ort_quant_module(), step)

        def spy(*args, _real=real, **kwargs):
            calls.append(kwargs["reduce_range"])
            return _real(*args, **kwargs)

        monkeypatch.setattr(f"harness.techniques._ort_quant.{step}", spy)
    artifact = apply(make_reference("mlp"), QUANT_PRESETS.get(name), ctx)
    assert artifact.proof["reduce_range"] == float(saturates)
    assert artifact.machine_choices == {"reduce_range": str(saturates).lower()}
    assert calls == [saturates]


def test_weight_range_set_in_the_config_is_no_machine_choice(tctx, make_reference, monkeypatch):
    monkeypatch.setattr("harness.techniques._ort_quant.saturates_u8s8", lambda: True)
    config = OrtDynamicInt8Config(name="full_range", reduce_range=False)
    artifact = apply(make_reference("mlp"), config, tctx)
    assert artifact.proof["reduce_range"] == 0.0 and artifact.machine_choices == {}
    auto = apply(make_reference("mlp"), dataclasses.replace(config, reduce_range=None), tctx)
    assert auto.key != artifact.key and auto.proof["reduce_range"] == 1.0


@pytest.mark.parametrize(("activation", "weight"), [("QUInt8", "QUInt8"), ("QInt8", "QInt8")])
def test_pairings_that_cannot_saturate_keep_full_range(activation, weight, tctx, make_reference, monkeypatch):
    monkeypatch.setattr("harness.techniques._ort_quant.saturates_u8s8", lambda: True)
    config = OrtStaticInt8Config(name="s", activation_type=activation, weight_type=weight)
    assert apply(make_reference("mlp"), config, tctx).proof["reduce_range"] == 0.0


def _ort_quant_module():
    from harness.techniques import _ort_quant

    return _ort_quant
