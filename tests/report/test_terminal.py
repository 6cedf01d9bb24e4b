"""The end-of-run table: header naming the environment and baseline, one row per measured case."""

from harness import env
from harness.report import terminal


def _case(case_id, status, record=None, is_reference=False):
    model, config, backend = case_id.split("-")
    return {"case_id": case_id, "model": model, "config": config, "backend": backend, "status": status,
            "is_reference": is_reference, "message": f"{case_id}: why", "record": record}


def _record(p50, speedup, quality, rss=2**30, device_peak=None):
    return {"metrics": {"latency.p50_s": p50, "speedup": speedup, "throughput.items_per_s": 1000.0,
                        "memory.peak_rss_bytes": rss, "memory.delta_rss_bytes": 2**20, "size_bytes": 2048},
            "memory": {"device_peak_bytes": device_peak}, "quality": {"metric": "accuracy", "value": quality}}


def _run(baseline_env):
    here = env.capture(1)
    return {"environment": here, "cases": [
        _case("m-fp32-eager", "pass", _record(0.002, None, 0.97), is_reference=True),
        _case("m-int8-eager", "fail", _record(0.001, 2.0, 0.95)),
        _case("m-int8-gpu", "skipped"),
        _case("m-bad-eager", "error"),
    ], "baselines": {"quantization": {"path": "b.json", "environment": baseline_env,
                                      "compared": ["quality", "size"] if baseline_env else []}}}


def test_rows_show_speedup_peak_memory_and_quality_change():
    lines = terminal.render(_run(None))
    table = lines[lines.index(next(x for x in lines if x.startswith("case"))):]
    assert table[0].split() == ["case", "p50", "b1", "speedup", "thr", "thrpt/s", "peak", "mem", "Δ", "mem", "size",
                                "quality", "Δ", "quality", "verdict"]
    ref, int8, bad = (next(x for x in table if x.startswith(c)) for c in ("m-fp32", "m-int8-eager", "m-bad"))
    assert "1 (ref)" in ref and "1.0 GiB" in ref
    assert "2.00x" in int8 and "-0.0200" in int8 and int8.endswith("fail")
    assert bad.split()[1:] == ["-"] * 9 + ["error"]
    assert not any(x.startswith("m-int8-gpu") for x in table)
    assert lines[-1] == "skipped 1 case: m-int8-gpu: why"


def test_device_peak_memory_is_shown_for_gpu_cases():
    run = _run(None)
    run["cases"][1]["record"]["memory"]["device_peak_bytes"] = 3 * 2**20
    int8 = next(x for x in terminal.render(run) if x.startswith("m-int8-eager"))
    assert "3.0 MiB" in int8


def test_header_names_this_machine_and_the_baselines_machine():
    lines = terminal.header(_run(None))
    assert lines[0] == f"measured on: {env.describe(env.capture(1))}"
    assert lines[1] == "baseline quantization: none yet (b.json)"
    other = env.capture(1) | {"cpu": "Other CPU", "cpu_flags": ["avx2"]}
    lines = terminal.header(_run(other))
    assert lines[1].startswith("baseline quantization: taken on Other CPU [avx2]")
    assert lines[1].endswith("; not gated: speedup, latency")


def test_header_says_where_quality_was_judged_loosely_or_not_at_all():
    run = _run(env.capture(1))
    weights = {"check": "quality", "source": "baseline", "status": "pass", "basis": "other weights",
               "message": "compared within 0.0213, the wider of quality_abs and the sampling error: weights differ"}
    choice = {"check": "quality", "source": "baseline", "status": "skip", "basis": "other choices",
              "message": "not compared: made with other machine-dependent settings (reduce_range true here, ...)"}
    plain = {"check": "quality", "source": "baseline", "status": "pass", "basis": "same", "message": ""}
    run["cases"][0]["verdicts"] = [weights, plain]
    run["cases"][1]["verdicts"] = [weights, choice]
    assert terminal.header(run)[-1] == (
        "quality vs baseline: within sampling error for 2 cases (reference weights differ from the baseline's, or it "
        "records none); "
        "not compared for 1 case (made with other machine-dependent settings, e.g. ORT's weight range)")
    run["cases"][0]["verdicts"] = run["cases"][1]["verdicts"] = [plain]
    assert not terminal.header(run)[-1].startswith("quality vs baseline")
