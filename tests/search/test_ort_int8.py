"""The int8 search's pieces: MatMul groups, fp32 fallback by group, the Pareto front, and bad input."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.errors import ConfigError
from harness.onnx_export import count_ops
from harness.search.ort_int8 import (
    KINDS,
    OrtInt8SearchedConfig,
    matmul_groups,
    pareto,
    quantize,
    search,
    search_details,
)
from tests.techniques.conftest import build_reference, tctx  # noqa: F401 - fixture


def one_layer(path) -> None:
    """Six weighted MatMuls in a chain (one BERT layer's kinds, in order) and one activation-by-activation MatMul."""
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for i, kind in enumerate(KINDS):
        inits.append(numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32), f"w_{kind}"))
        nodes.append(helper.make_node("MatMul", [x, f"w_{kind}"], [f"h{i}"], name=f"mm_{kind}"))
        x = f"h{i}"
    nodes.append(helper.make_node("MatMul", [x, "xt"], ["y"], name="mm_attention"))
    nodes.insert(0, helper.make_node("Transpose", ["x"], ["xt"], name="t"))
    graph = helper.make_graph(nodes, "layer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_groups_are_kinds_in_graph_order_and_attention(tmp_path):
    one_layer(tmp_path / "m.onnx")
    groups = matmul_groups(onnx.load(str(tmp_path / "m.onnx")))
    assert groups["query"] == ["mm_query"] and groups["ffn_out"] == ["mm_ffn_out"]
    assert groups["attention"] == ["mm_attention"]


def test_a_group_kept_in_fp32_stays_a_float_matmul(tmp_path):
    one_layer(tmp_path / "m.onnx")
    settings = {"per_channel": True, "op_types": ("MatMul",), "weight_type": "QInt8", "reduce_range": True}
    quantize(tmp_path / "m.onnx", tmp_path / "all.onnx", keep_fp32=(), **settings)
    quantize(tmp_path / "m.onnx", tmp_path / "kept.onnx", keep_fp32=("query", "value"), **settings)
    all_q, kept = count_ops(tmp_path / "all.onnx"), count_ops(tmp_path / "kept.onnx")
    assert kept.get("MatMul", 0) == all_q.get("MatMul", 0) + 2
    assert kept["MatMulInteger"] == all_q["MatMulInteger"] - 2


def test_the_pareto_front_drops_dominated_points():
    points = [{"speedup": 2.0, "cosine": 0.99, "size_mib": 20}, {"speedup": 1.5, "cosine": 0.999, "size_mib": 50},
              {"speedup": 1.4, "cosine": 0.99, "size_mib": 55}, {"speedup": 2.0, "cosine": 0.99, "size_mib": 25}]
    assert pareto(points) == points[:2]


def test_unknown_groups_are_refused_naming_the_field():
    with pytest.raises(ConfigError, match="`keep_fp32` must hold groups among"):
        OrtInt8SearchedConfig(name="x", keep_fp32=("embeddings",))


@pytest.mark.parametrize("budget", [0.0, 1.5, -0.1])
def test_a_quality_budget_outside_0_1_is_refused(budget, tctx):  # noqa: F811 - the fixture
    with pytest.raises(ConfigError, match=r"`quality_budget` must be in \(0, 1\]"):
        search(build_reference("embedder"), tctx, quality_budget=budget)


def test_the_searched_preset_applies_to_the_searched_model_only():
    config = OrtInt8SearchedConfig(name="x", models=("minilm",))
    assert "searched on minilm only" in config.not_applicable(build_reference("mlp").spec)


def test_the_committed_search_record_reaches_the_report_as_trials_with_two_objectives():
    details = search_details("minilm")["search"]
    assert details["history"] and all(len(t["values"]) == 2 for t in details["history"])
    assert details["pareto"] and details["chosen"]["values"][1] >= details["quality_budget"]
    assert search_details("no_such_model") == {}
