"""The int8 search's pieces: MatMul groups, fp32 fallback by group, the Pareto front, and bad input."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from harness.cache import Cache
from harness.errors import ConfigError
from harness.metrics.quality import EmbeddingFidelity
from harness.onnx_export import count_ops
from harness.techniques.base import Context, Reference
from harness.techniques.searched_int8 import (
    KINDS,
    OrtInt8SearchedConfig,
    matmul_groups,
    pareto,
    quantize,
    search,
    search_details,
)
from model_zoo.spec import ModelSpec, Split, Splits, Task
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
    ref = build_reference("mlp")  # its calibration inputs are read only where smoothing runs
    quantize(tmp_path / "m.onnx", tmp_path / "all.onnx", ref, OrtInt8SearchedConfig(name="a", **settings))
    quantize(tmp_path / "m.onnx", tmp_path / "kept.onnx", ref,
             OrtInt8SearchedConfig(name="k", keep_fp32=("query", "value"), **settings))
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
    from model_zoo.traits import traits_of

    config = OrtInt8SearchedConfig(name="x", models=("minilm",))
    spec = build_reference("mlp").spec
    reason = config.not_applicable(spec, traits_of(spec))
    assert reason == ("holds what a search found for minilm; search this model with "
                      "`python -m harness search int8 --model toy_mlp`")


def test_the_committed_search_record_reaches_the_report_as_trials_with_two_objectives():
    details = search_details("minilm")["search"]
    assert details["history"] and all(len(t["values"]) == 2 for t in details["history"])
    assert details["pareto"] and details["chosen"]["values"][1] >= details["quality_budget"]
    assert search_details("no_such_model") == {}


OUTLIER = 50.0


class OutlierLayer(nn.Module):
    """One layer's six weighted MatMuls (in KINDS order) and attention, with two planted weak spots for dynamic
    int8's per-tensor activation scale: the input's feature 0 is 50x the rest (query's input) and ffn_in makes a
    50x feature (ffn_out's input). Both MatMuls ignore that feature, so in fp32 it costs nothing; in int8 it
    coarsens every other feature. Neither alone in fp32 holds a 0.998 cosine; the two together do."""

    def __init__(self) -> None:
        super().__init__()
        self.mm = nn.ModuleList(nn.Linear(16, 16, bias=False) for _ in KINDS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for linear in self.mm:
            h = linear(h)
        scores = torch.softmax(h @ h.transpose(1, 2) / 4, -1)
        return (scores @ h).mean(1)


def _outlier_inputs(n: int) -> tuple[torch.Tensor]:
    x = torch.randn(n, 4, 16, generator=torch.Generator().manual_seed(n))
    x[..., 0] *= OUTLIER
    return (x,)


def outlier_reference() -> Reference:
    torch.manual_seed(0)
    module = OutlierLayer().eval()
    with torch.no_grad():
        module.mm[KINDS.index("query")].weight[:, 0] = 0
        module.mm[KINDS.index("ffn_in")].weight[0] *= OUTLIER
        module.mm[KINDS.index("ffn_out")].weight[:, 0] = 0
    x = _outlier_inputs(64)[0]
    zeros = np.zeros(16, dtype=np.int64)
    splits = Splits(Split((x[:32],), np.zeros(32, dtype=np.int64)), Split((x[32:48],), zeros),
                    Split((x[48:],), zeros))
    spec = ModelSpec(name="toy_outlier_layer", task=Task.CLASSIFICATION, build=OutlierLayer, data=lambda: splits,
                     example_inputs=_outlier_inputs, quality=EmbeddingFidelity(), recipe=None, input_names=("x",))
    return Reference(spec=spec, module=module, key="toy-outlier-layer-v1", splits=splits)


def test_the_search_keeps_the_sensitive_matmuls_in_fp32_until_the_budget_holds(tmp_path):
    budget = 0.998
    result = search(outlier_reference(), Context(Cache(tmp_path), 1), quality_budget=budget, smooth_alphas=())
    candidates = result["candidates"]
    plain = [c for c in candidates if not c["settings"].get("keep_fp32")]
    singles = [c for c in candidates if len(c["settings"].get("keep_fp32", [])) == 1]
    assert plain and singles and all(c["cosine"] < budget for c in plain + singles)  # int8 alone misses it
    for sensitivity in result["sensitivity"].values():  # per weight type
        ranked = sorted(sensitivity, key=lambda g: -sensitivity[g])
        assert set(ranked[:2]) == {"query", "ffn_out"}, sensitivity
    chosen = result["chosen"]
    assert chosen["met"] and chosen["cosine_low"] >= budget
    assert {g.partition(".")[0] for g in chosen["settings"]["keep_fp32"]} == {"query", "ffn_out"}
    assert chosen["speedup"] == max(c["speedup"] for c in candidates if c["cosine_low"] >= budget)
    # judged on the interval: a candidate whose mean is within the budget but not its lower bound is not chosen
    assert all(c["cosine_low"] <= c["cosine"] for c in candidates)


def test_smoothing_the_outlier_features_away_needs_no_matmul_in_fp32(tmp_path):
    """The layer's two weak spots are outlier input features, which smoothing divides out: stage 1b meets the budget
    with every MatMul in int8, so no fallback runs and the choice keeps nothing in fp32."""
    budget = 0.998
    result = search(outlier_reference(), Context(Cache(tmp_path), 1), quality_budget=budget, smooth_alphas=(0.5,))
    smoothed = [c for c in result["candidates"] if c["settings"].get("smooth_alpha")]
    assert smoothed and all(c["cosine_low"] >= budget for c in smoothed)
    assert all(not s for s in result["sensitivity"].values())  # no stage 2
    chosen = result["chosen"]
    assert chosen["met"] and chosen["settings"]["smooth_alpha"] == 0.5 and not chosen["settings"].get("keep_fp32")


def test_a_written_search_record_names_the_machine_class_it_was_measured_on():
    from harness import env
    from harness.search.cli import with_machine

    record = with_machine({"chosen": {"speedup": 2.0}}, threads=1)
    assert record["chosen"] == {"speedup": 2.0}
    assert record["machine_class"] == env.machine_class(env.capture(1))
    assert record["machine"] == env.describe(env.capture(1))
