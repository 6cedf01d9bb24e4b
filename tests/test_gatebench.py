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


def test_the_matmul_regression_keeps_conv_int8_and_leaves_matmul_and_gemm_fp32():
    from harness.gatebench_work import _without_matmul
    from harness.techniques.quantization import OrtDynamicInt8Config, OrtStaticInt8Config

    variant = _without_matmul(OrtStaticInt8Config(name="s"))
    assert variant is not None and variant.op_types == ("Conv",) and variant.name == "s_matmul_fp32"
    assert _without_matmul(OrtStaticInt8Config(name="s", op_types=("MatMul",))) is None  # nothing would stay int8
    assert _without_matmul(OrtDynamicInt8Config(name="d")) is None
