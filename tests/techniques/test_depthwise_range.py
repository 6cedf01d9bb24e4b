"""Depthwise convolutions keep 8-bit weights where reduce_range gives the rest 7 (their MLAS kernel widens to 16
bits and cannot saturate): which convs count as depthwise, the file ORT writes, GPTQ's grid, the proof and the key."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from harness.techniques import _ort_quant, apply
from harness.techniques.quantization import OrtStaticInt8Config

STATIC = OrtStaticInt8Config(name="static", op_types=None)


def _conv(group: int) -> onnx.NodeProto:
    return helper.make_node("Conv", ["x", "w"], ["y"], group=group)


@pytest.mark.parametrize(("shape", "group", "depthwise"), [
    ((8, 1, 3, 3), 8, True),  # one filter of one channel per group
    ((16, 1, 3, 3), 8, False),  # channel multiplier 2: two filters per group, the GEMM path
    ((8, 2, 3, 3), 4, False),  # grouped, two input channels per group
    ((8, 8, 3, 3), 1, False),  # dense
    ((1, 1, 3, 3), 1, False),  # one channel in, one out: dense, not depthwise
])
def test_depthwise_is_one_filter_of_one_channel_per_group(shape, group, depthwise):
    assert _ort_quant.is_depthwise(_conv(group), shape) is depthwise


def test_matmul_is_never_depthwise():
    assert not _ort_quant.is_depthwise(helper.make_node("MatMul", ["x", "w"], ["y"]), (8, 1))


def _int8_convs(path) -> dict[str, np.ndarray]:
    """The int8 integers of each conv weight in the QDQ file, by weight name."""
    model = onnx.load(str(path))
    return {i.name[: -len("_quantized")]: numpy_helper.to_array(i) for i in model.graph.initializer
            if i.name.endswith("_quantized") and i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4}


def _scales(path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("_scale")}


@pytest.mark.parametrize("weight_rounding", ["nearest", "gptq"])
def test_depthwise_weights_keep_8_bits_per_channel_where_the_rest_get_7(weight_rounding, tctx, make_reference,
                                                                     monkeypatch):
    monkeypatch.setattr("harness.techniques._ort_quant.saturates_u8s8", lambda: True)
    artifact = apply(make_reference("dwcnn"), dataclasses.replace(STATIC, weight_rounding=weight_rounding), tctx)
    convs = _int8_convs(artifact.onnx_path)
    depthwise = ["conv.2.weight"]  # TinyDepthwiseCNN's second conv; the first reads one channel but is dense
    dense = [name for name in convs if name not in depthwise]
    assert depthwise[0] in convs and len(dense) == 2
    q = convs[depthwise[0]]
    assert 64 < np.abs(q).max() <= 127  # the 8-bit grid is used
    assert _scales(artifact.onnx_path)[f"{depthwise[0]}_scale"].shape == (8,)  # still one scale per channel
    assert all(np.abs(convs[n]).max() <= 64 for n in dense)  # the GEMM convs stay on 7 bits
    assert artifact.proof["depthwise_8bit"] == 1.0 and artifact.proof["reduce_range"] == 1.0


def test_explicit_reduce_range_gives_every_weight_7_bits(tctx, make_reference, monkeypatch):
    monkeypatch.setattr("harness.techniques._ort_quant.saturates_u8s8", lambda: True)
    forced = apply(make_reference("dwcnn"), dataclasses.replace(STATIC, reduce_range=True), tctx)
    assert forced.proof["depthwise_8bit"] == 0.0
    assert all(np.abs(q).max() <= 64 for q in _int8_convs(forced.onnx_path).values())


def test_without_saturation_every_weight_has_8_bits(tctx, make_reference, monkeypatch):
    monkeypatch.setattr("harness.techniques._ort_quant.saturates_u8s8", lambda: False)
    artifact = apply(make_reference("dwcnn"), STATIC, tctx)
    assert artifact.proof["reduce_range"] == 0.0 and artifact.proof["depthwise_8bit"] == 1.0
    assert all(np.abs(q).max() > 64 for q in _int8_convs(artifact.onnx_path).values())


def test_the_rule_is_in_the_key_of_a_model_with_depthwise_convs_only(tctx, make_reference, monkeypatch):
    """A file written before the rule (or without a depthwise conv) is not reused for one written with it, and a
    model without depthwise convs keeps its key and its file."""
    monkeypatch.setattr("harness.techniques._ort_quant.saturates_u8s8", lambda: True)
    keys = {name: apply(make_reference(name), STATIC, tctx).key for name in ("cnn", "dwcnn")}
    monkeypatch.setattr("harness.techniques._ort_quant.has_depthwise", lambda path: False)
    assert apply(make_reference("cnn"), STATIC, tctx).key == keys["cnn"]
    assert apply(make_reference("dwcnn"), STATIC, tctx).key != keys["dwcnn"]


def test_proof_counts_depthwise_convs_beyond_the_7_bit_grid(tmp_path):
    """``depthwise_8bit`` reads the file: a depthwise weight whose integers stay within 64 of the zero point is
    not counted, one beyond is, and a dense conv never is."""
    def model(dw_max: int, dense_max: int):
        dw = np.zeros((4, 1, 3, 3), np.int8)
        dw[0, 0, 0, 0] = dw_max
        dense = np.zeros((4, 4, 1, 1), np.int8)
        dense[0, 0, 0, 0] = dense_max
        inits = [numpy_helper.from_array(dw, "dw_quantized"), numpy_helper.from_array(np.ones(4, np.float32), "dw_s"),
                 numpy_helper.from_array(np.zeros(4, np.int8), "dw_z"),
                 numpy_helper.from_array(dense, "dense_quantized"),
                 numpy_helper.from_array(np.ones(4, np.float32), "dense_s"),
                 numpy_helper.from_array(np.zeros(4, np.int8), "dense_z")]
        nodes = [helper.make_node("DequantizeLinear", ["dw_quantized", "dw_s", "dw_z"], ["dw_w"], axis=0),
                 helper.make_node("Conv", ["x", "dw_w"], ["h"], group=4, pads=[1, 1, 1, 1]),
                 helper.make_node("DequantizeLinear", ["dense_quantized", "dense_s", "dense_z"], ["dense_w"], axis=0),
                 helper.make_node("Conv", ["h", "dense_w"], ["y"])]
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                                              [1, 4, 5, 5])],
                                  [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], inits)
        path = tmp_path / f"m{dw_max}_{dense_max}.onnx"
        onnx.save(helper.make_model(graph), str(path))
        return path

    assert _ort_quant.depthwise_8bit(model(64, 127)) == 0
    assert _ort_quant.depthwise_8bit(model(-65, 127)) == 1
    assert _ort_quant.depthwise_8bit(model(127, 0)) == 1
