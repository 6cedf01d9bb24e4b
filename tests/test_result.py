"""RunResult: the one value reports render from; loading refuses truncated and foreign records by file name."""

from __future__ import annotations

import dataclasses
import json

import pytest

from harness.result import RUN_SCHEMA_VERSION, RunRecordError, RunResult
from tests.report import records


def test_a_record_round_trips_through_json(tmp_path):
    path = records.write(tmp_path, records.run())
    result = RunResult.load(path)
    assert result.source == str(path)
    assert result.commit == "abc123"
    again = RunResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()
    assert "source" not in result.to_dict()


def test_load_rejects_a_truncated_record_naming_the_file(tmp_path):
    path = records.write(tmp_path, records.run())
    path.write_text(path.read_text()[:200])
    with pytest.raises(RunRecordError, match=rf"^{path}: not valid JSON \(truncated or corrupt"):
        RunResult.load(path)


def test_load_rejects_unknown_schema_version_naming_the_file(tmp_path):
    path = records.write(tmp_path, records.run() | {"schema_version": 99})
    with pytest.raises(RunRecordError, match=rf"^{path}: unknown run record schema_version 99; this optbench "
                                             r"reads versions 1, 2, 3$"):
        RunResult.load(path)


def test_load_rejects_a_record_missing_fields_and_a_missing_file(tmp_path):
    path = records.write(tmp_path, {"schema_version": RUN_SCHEMA_VERSION, "cases": []})
    with pytest.raises(RunRecordError, match="missing started, finished, duration_s, environment"):
        RunResult.load(path)
    with pytest.raises(RunRecordError, match=r"nowhere\.json: cannot read"):
        RunResult.load(tmp_path / "nowhere.json")


def test_nan_figures_are_written_as_null():
    result = RunResult.from_dict(records.run([]) | {"duration_s": 1.0})
    result = dataclasses.replace(result, cases=({"case_id": "x", "record": {"metrics": {"speedup": float("nan")}}},))
    assert result.to_dict()["cases"][0]["record"]["metrics"]["speedup"] is None


def test_counts_and_failed_checks_list_every_failure_and_error():
    result = RunResult.from_dict(records.run())
    counts = result.counts()
    assert list(counts) == ["pass", "inconclusive", "fail", "known", "new", "error", "skipped"]
    assert counts["fail"] == 2 and counts["known"] == 2 and counts["error"] == 1 and counts["skipped"] == 1
    assert sum(counts.values()) == len(result.cases)
    failed = result.failed_checks()
    assert [f["case_id"] for f in failed] == ["digits_cnn-int8-onnxruntime", "cancer_mlp-int8-onnxruntime",
                                              "digits_cnn-int8-broken"]
    assert (failed[0]["metric"], failed[0]["expected"], failed[0]["current"], failed[0]["tolerance"]) == (
        "speedup", 1.8, 1.1, 0.35)
    assert failed[2]["message"] == "digits_cnn-int8-broken: ExportError: no"


def test_a_written_record_reads_back_equal_with_its_samples_and_without_them(tmp_path):
    """Training arms with grad_norm curves (500 steps) leave for the .samples.npz; read with samples they are back
    in place, read without they are empty and every figure is still there."""
    from harness.report import json_report

    result = RunResult.from_dict(records.run())
    path = json_report.write_run(result, tmp_path)
    assert (tmp_path / path.name.replace(".json", ".samples.npz")).exists()
    assert '"training":{"$json":' in path.read_text() and '"grad_norm":[' not in path.read_text()
    assert RunResult.load(path).to_dict() == result.to_dict()
    figures_only = RunResult.load(path, samples=False)
    trained = [i for i, c in enumerate(result.cases) if (c["record"] or {}).get("training")]
    assert trained and all(figures_only.cases[i]["record"]["training"] == {} for i in trained)
    assert [c["record"] and c["record"]["metrics"] for c in figures_only.cases] == \
        [c["record"] and c["record"]["metrics"] for c in result.cases]


def test_an_old_record_with_samples_inline_still_loads(tmp_path):
    """Schema version 1 (every sample inline, indented) as results/ holds from before."""
    data = records.run() | {"schema_version": 1}
    data["cases"][0]["record"]["latency"] = {"samples_s": [0.001] * 300, "rounds": 300}
    path = tmp_path / "run-20261128-190000.json"
    path.write_text(json.dumps(data, indent=2))
    loaded = RunResult.load(path)
    assert loaded.cases[0]["record"]["latency"]["samples_s"] == [0.001] * 300
    assert loaded.to_dict()["schema_version"] == RUN_SCHEMA_VERSION == 3


def test_a_record_whose_samples_file_is_gone_or_replaced_fails_in_one_line(tmp_path):
    import numpy as np

    from harness import run_samples
    from harness.report import json_report

    first = json_report.write_run(RunResult.from_dict(records.run()), tmp_path)
    second = json_report.write_run(RunResult.from_dict(records.run(commit="def456")), tmp_path)
    npz = [tmp_path / p.name.replace(".json", ".samples.npz") for p in (first, second)]
    npz[0].write_bytes(run_samples.encode({"s0": np.zeros(20)}))  # another run's samples
    with pytest.raises(RunRecordError, match=rf"^{first}: the samples file {npz[0]} is not the one written") as info:
        RunResult.load(first)
    assert "\n" not in str(info.value)
    npz[1].unlink()
    with pytest.raises(RunRecordError, match=rf"^{second}: its samples file {npz[1]} is missing"):
        RunResult.load(second)
    assert RunResult.load(second, samples=False).commit == "def456"  # the figures alone still read


def test_a_stored_case_leaves_out_only_what_expanding_restores():
    """Schema 3: a verdict without its case's id and its default fields, a record without the proof its metrics
    repeat; expanding gives the case back exactly, and a proof the metrics do not hold is kept."""
    from harness.gate import Verdict
    from harness.result import VERDICT_DEFAULTS, compact_case, expand_case

    defaults = {f.name: f.default for f in dataclasses.fields(Verdict) if f.default is not dataclasses.MISSING}
    assert defaults == VERDICT_DEFAULTS
    for case in records.run()["cases"]:
        # a verdict as the run makes it carries every field (the hand-made test records leave some out)
        case["verdicts"] = [{"case_id": case["case_id"], **defaults, **v} for v in case.get("verdicts") or []]
        if case.get("record"):
            case["record"]["proof"] = {k.removeprefix("proof."): v for k, v in case["record"]["metrics"].items()
                                       if k.startswith("proof.")}
        stored = compact_case(case)
        assert expand_case(stored) == case
        assert expand_case(case) == case
        assert all("case_id" not in v and "noisy" not in v for v in stored.get("verdicts") or [])
        assert len(json.dumps(stored)) < len(json.dumps(case)) or not case.get("verdicts")
    case = next(c for c in records.run()["cases"] if c.get("record"))
    case["record"]["proof"] = {"something_else": 1.0}
    assert compact_case(case)["record"]["proof"] == {"something_else": 1.0}


def test_report_declarations_cases_share_are_stored_once(tmp_path):
    from harness.report.json_report import write_run

    data = records.run()
    shared = {"section": "training", "figures": [{"key": "training.x", "label": "x", "format": "{:.2f}"}], "plots": []}
    for case in data["cases"]:
        case["report"] = shared
    result = RunResult.from_dict(data)
    path = write_run(result, tmp_path)
    stored = json.loads(path.read_text())
    assert stored["reports"] == [shared] and {c["report"] for c in stored["cases"]} == {0}
    assert RunResult.load(path).cases == result.cases
