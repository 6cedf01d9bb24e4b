"""The gate benchmark's own pieces: slowdown injection, figures of one measurement, the table."""

import time

import pytest

from harness import gatebench
from harness.gate import Tolerances


def test_slowed_makes_each_call_last_the_stated_factor():
    def call():
        time.sleep(0.004)

    assert gatebench.slowed(call, 1.0) is call
    slow = gatebench.slowed(call, 1.5)
    start = time.perf_counter()
    slow()
    assert time.perf_counter() - start >= 0.0055  # 4 ms measured, then 2 ms more of busy-waiting


def test_figures_pair_rounds_and_give_per_call_times():
    medians, samples, per_call = gatebench.figures([[1.0, 2.0], [2.0, 4.0], [2.0, 4.0]], block=4)
    assert medians == {"speedup": 2.0, "latency.normalized": 0.5}
    assert samples["speedup"] == [2.0, 2.0] and list(per_call) == [0.25, 0.5]


def test_table_names_k_conditions_and_rules():
    bench = gatebench.Bench("m-int8-ort", (lambda: None,) * 3, 1, {"speedup": 2.0}, {"speedup": 0.01})
    fails = {bench.case_id: {c: dict.fromkeys(gatebench.RULES, 0) for c in gatebench.CONDITIONS}}
    fails[bench.case_id]["opt +20%"]["optbench"] = 2
    result = {"fails": fails, "runs_failed": {c: dict.fromkeys(gatebench.RULES, 0) for c in gatebench.CONDITIONS},
              "retries": 0}
    lines = gatebench.render([bench], result, 2, Tolerances(speedup_rel=0.10, latency_rel=0.10), 12.0)
    assert lines[0].startswith("gatebench: K=2 trials per condition, 1 cases") and "took 12 s" in lines[0]
    assert lines[0].endswith("minimum effects: speedup 10%, latency 10%")
    row = next(line for line in lines if line.strip().startswith("m-int8-ort"))
    assert "10%/35%" in row and "100%|0%|0%" in row


def test_unknown_case_is_refused_naming_it(tmp_path):
    with pytest.raises(SystemExit, match=r"unknown case\(s\) nope"):
        gatebench.prepare(["nope"], 1, None, 2, 0.01)  # type: ignore[arg-type]


def test_a_bad_tolerance_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit):
        gatebench.main(["--tolerance", "speedup=0.1"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "tolerance must be NAME=VALUE with NAME one of" in err and "'speedup=0.1'" in err


def test_added_work_makes_every_kth_call_twice():
    from harness.gatebench_work import every_kth_twice

    calls = []
    fn = every_kth_twice(lambda: calls.append(1), 20)
    for _ in range(100):
        fn()
    assert len(calls) == 105  # +5 %, as the counted worker's extra_every=20 adds it


def _two_matmuls(path, small=16, large=64):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((small, large)).astype(np.float32), "w_small")
    w2 = numpy_helper.from_array(rng.standard_normal((large, large)).astype(np.float32), "w_large")
    nodes = [helper.make_node("MatMul", ["x", "w_small"], ["h"], name="first"),
             helper.make_node("MatMul", ["h", "w_large"], ["y"], name="second")]
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, small])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, large])], [w1, w2])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_the_matmul_regression_picks_the_matmul_with_the_largest_weight(tmp_path):
    import onnx

    from harness.gatebench_work import largest_matmul

    model = onnx.load(str(_two_matmuls(tmp_path / "m.onnx")))
    assert largest_matmul(model) == ["second"]
    model.graph.node.pop()
    model.graph.node.pop()
    assert largest_matmul(model) == []


def test_the_quantizer_leaves_the_excluded_matmul_in_float_and_quantizes_the_rest(tmp_path):
    from harness.gatebench_work import largest_matmul
    from harness.onnx_export import count_ops
    from harness.techniques import _ort_quant

    src = _two_matmuls(tmp_path / "m.onnx")
    both, one = tmp_path / "both.onnx", tmp_path / "one.onnx"
    kwargs = {"per_channel": False, "op_types": ("MatMul",), "weight_type": "QInt8", "reduce_range": False}
    _ort_quant.quantize_dynamic(src, both, **kwargs)
    _ort_quant.quantize_dynamic(src, one, exclude=largest_matmul, **kwargs)
    assert count_ops(both).get("MatMulInteger") == 2 and count_ops(both).get("MatMul", 0) == 0
    assert count_ops(one).get("MatMulInteger") == 1 and count_ops(one).get("MatMul") == 1
