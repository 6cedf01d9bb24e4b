"""SmoothQuant-style smoothing: the graph computes the same function, one division per smoothed tensor shared by
its readers, SmoothQuant's scales, evener channels, shared weights copied, and dynamic int8 that gains from it."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from harness.errors import ConfigError
from harness.techniques import _smooth, apply
from harness.techniques.quantization import OrtDynamicInt8Config
from model_zoo.spec import Split, Splits

OUTLIER = 50.0


def _weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"w1": rng.standard_normal((8, 8)), "w2": rng.standard_normal((8, 8)),
            "w3": rng.standard_normal((4, 8)), "b3": rng.standard_normal(4)}


def _graph(path) -> None:
    """x feeds two MatMuls (one division for both); y1 feeds a Gemm with transB; y2 feeds a MatMul that shares
    w1 with x's first MatMul (so smoothing must give it a copy)."""
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in _weights().items()]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["y1"], name="mm1"),
             helper.make_node("MatMul", ["x", "w2"], ["y2"], name="mm2"),
             helper.make_node("Gemm", ["y1", "w3", "b3"], ["y3"], name="gemm", transB=1),
             helper.make_node("MatMul", ["y2", "w1"], ["y4"], name="mm4")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
                              [helper.make_tensor_value_info("y3", TensorProto.FLOAT, ["n", 4]),
                               helper.make_tensor_value_info("y4", TensorProto.FLOAT, ["n", 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _inputs(n: int, seed: int) -> tuple[torch.Tensor]:
    x = torch.randn(n, 8, generator=torch.Generator().manual_seed(seed))
    x[:, 2] *= OUTLIER
    return (x,)


def _run(path, x: torch.Tensor) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.numpy()})


@pytest.fixture
def graphs(tmp_path):
    _graph(tmp_path / "m.onnx")
    _smooth.smooth(tmp_path / "m.onnx", tmp_path / "s.onnx", 0.5, _inputs(64, 1), ("x",))
    return tmp_path / "m.onnx", tmp_path / "s.onnx"


def test_smoothing_keeps_the_function(graphs):
    x = _inputs(32, 2)[0]
    for before, after in zip(_run(graphs[0], x), _run(graphs[1], x), strict=True):
        np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)


def test_each_smoothed_tensor_is_divided_once_and_its_readers_share_the_result(graphs):
    model = onnx.load(str(graphs[1]))
    assert _smooth.count(model) == 3  # x (read by two MatMuls), y1 and y2
    readers = {n.name: n.input[0] for n in model.graph.node if n.op_type in ("MatMul", "Gemm")}
    assert readers["mm1"] == readers["mm2"] == "x_smoothed"
    assert readers["gemm"] == "y1_smoothed" and readers["mm4"] == "y2_smoothed"


def test_a_weight_shared_by_two_smoothed_nodes_gets_a_copy_for_each(graphs):
    model = onnx.load(str(graphs[1]))
    weights = {n.name: n.input[1] for n in model.graph.node if n.op_type == "MatMul"}
    assert weights["mm1"] != weights["mm4"]
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert not np.allclose(inits[weights["mm1"]], inits[weights["mm4"]])  # each scaled by its own input's s
    assert "w1" in weights.values()  # the last reader keeps the original name: nothing is left unused


def test_scales_are_smoothquants_from_the_channel_maxima_and_the_largest_weight_row(graphs):
    alpha = 0.5
    x = _inputs(64, 1)[0].numpy()
    w = _weights()
    w_max = np.maximum(np.abs(w["w1"]).max(axis=1), np.abs(w["w2"]).max(axis=1))  # rows of x's two readers
    s = np.abs(x).max(axis=0) ** alpha / w_max ** (1 - alpha)
    s = np.maximum(s / np.median(s), 1.0)  # relative to the median; channels below it are left as they are
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(graphs[1])).graph.initializer}
    np.testing.assert_allclose(inits[f"x{_smooth.INVERSE_SUFFIX}"], 1 / s, rtol=1e-5)
    assert (1 / s < 1).sum() >= 1  # the outlier channel is divided


def test_channels_quiet_on_calibration_are_never_multiplied_up(tmp_path):
    _graph(tmp_path / "m.onnx")
    (x,) = _inputs(64, 1)
    x[:, 5] = 0  # silent while calibrating; a ReLU that rarely fires
    _smooth.smooth(tmp_path / "m.onnx", tmp_path / "s.onnx", 0.9, (x,), ("x",))
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(tmp_path / "s.onnx")).graph.initializer}
    inverse = inits[f"x{_smooth.INVERSE_SUFFIX}"]
    assert inverse[5] == 1.0 and inverse.max() == 1.0 and inverse[2] < 1.0


def test_smoothing_evens_out_the_channel_maxima(graphs):
    x = _inputs(64, 1)[0].numpy()
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(graphs[1])).graph.initializer}
    smoothed = x * inits[f"x{_smooth.INVERSE_SUFFIX}"]

    def spread(a: np.ndarray) -> float:
        m = np.abs(a).max(axis=0)
        return float(m.max() / m.min())
    assert spread(smoothed) < spread(x) / 4


def test_alpha_zero_leaves_the_file_as_it_is(tmp_path):
    _graph(tmp_path / "m.onnx")
    with _smooth.smoothed(tmp_path / "m.onnx", 0.0, _inputs(8, 1), ("x",), ("MatMul",)) as src:
        assert src == tmp_path / "m.onnx"


def _outlier_reference(make_reference):
    """The toy MLP with its input feature 3 fifty times the rest, in every split."""
    ref = make_reference("mlp")

    def scaled(split: Split) -> Split:
        x = split.inputs[0].clone()
        x[:, 3] *= OUTLIER
        return Split((x,), split.targets)

    splits = Splits(scaled(ref.splits.train), scaled(ref.splits.val), scaled(ref.splits.test))
    return dataclasses.replace(ref, splits=splits, key="toy-mlp-outlier")


def test_dynamic_int8_with_smoothing_is_closer_to_fp32_on_an_input_with_an_outlier_channel(tctx, make_reference):
    ref = _outlier_reference(make_reference)
    x = ref.splits.test.inputs[0]
    with torch.no_grad():
        fp32 = ref.module(x).numpy()

    def error(config: OrtDynamicInt8Config) -> tuple[float, dict[str, float]]:
        artifact = apply(ref, config, tctx)
        (out,) = _run(artifact.onnx_path, x)
        return float(np.linalg.norm(out - fp32) / np.linalg.norm(fp32)), artifact.proof

    plain, plain_proof = error(OrtDynamicInt8Config(name="plain", per_channel=True))
    smooth, proof = error(OrtDynamicInt8Config(name="smooth", per_channel=True, smooth_alpha=0.5))
    assert smooth < 0.8 * plain, (smooth, plain)
    assert proof["smoothed_tensors"] == 3  # the inputs of the MLP's three Linear layers
    assert "smoothed_tensors" not in plain_proof


@pytest.mark.parametrize(("changes", "message"), [
    ({"smooth_alpha": 1.5}, "`smooth_alpha` must be in [0, 1], got 1.5"),
    ({"smooth_alpha": -0.1}, "`smooth_alpha` must be in [0, 1], got -0.1"),
    ({"smooth_alpha": 0.5, "op_types": ("Conv",)},
     "`smooth_alpha` smooths the inputs of MatMul and Gemm nodes; `op_types` quantizes none of them, got Conv"),
])
def test_bad_smoothing_settings_are_refused_naming_the_field(changes, message):
    with pytest.raises(ConfigError) as info:
        OrtDynamicInt8Config(name="c", **changes)
    assert str(info.value) == message
