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
                                             rf"reads version {RUN_SCHEMA_VERSION}"):
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
