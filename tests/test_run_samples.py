"""Raw samples leave the record for its .samples.npz and come back exactly where they were."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness import run_samples


def _record() -> dict:
    timings = [0.001 + i * 1e-7 for i in range(40)]
    return {"started": "2026-01-01T00:00:00Z", "seeds": [0, 1, 2],
            "cases": [{"case_id": "a", "record": {
                "latency": {"samples_s": timings, "rounds": 40},
                "paired": {"reference_s": [1.5] * 3},  # short: stays
                "training": {"curves": [[0.5 + i / 100 for i in range(20)], [None, *([0.25] * 19)]],
                             "steps": list(range(30)), "labels": ["label"] * 400, "mixed": [1, 2.5] * 10,
                             "flags": [True] * 20}}}]}


def test_long_numeric_lists_leave_and_come_back_exactly():
    data = _record()
    compact, arrays = run_samples.split(data)
    assert compact["cases"][0]["record"]["training"] == {run_samples.JSON_MARKER: "s4"}  # long: moved out too
    rec, training = compact["cases"][0]["record"], json.loads(arrays["s4"].tobytes())
    assert rec["latency"]["samples_s"] == {run_samples.MARKER: "s0"} and rec["latency"]["rounds"] == 40
    assert rec["paired"]["reference_s"] == [1.5] * 3  # shorter than MIN_LENGTH
    assert training["curves"] == [{run_samples.MARKER: "s1"}, {run_samples.MARKER: "s2"}]
    assert training["labels"] == ["label"] * 400 and training["mixed"] == [1, 2.5] * 10
    assert training["flags"] == [True] * 20  # bools are not numbers here
    assert compact["seeds"] == [0, 1, 2] and len(arrays) == 5
    assert arrays["s0"].dtype == np.float64 and arrays["s3"].dtype == np.int64
    back = run_samples.read_blob(run_samples.encode(arrays))
    restored = run_samples.attach(compact, back.__getitem__)
    assert restored == data
    assert type(restored["cases"][0]["record"]["training"]["steps"][0]) is int
    assert restored["cases"][0]["record"]["training"]["curves"][1][0] is None  # JSON null survives as NaN


def test_large_report_tables_leave_as_json_and_small_ones_stay():
    big = {"analysis": {"rows": [{"name": f"rule {i}", "support": i} for i in range(200)]}}
    data = {"cases": [{"case_id": "a", "record": {"details": big, "training": None, "config": big}},
                      {"case_id": "b", "record": {"details": {"student": "half width"}}}]}
    compact, arrays = run_samples.split(data)
    assert compact["cases"][0]["record"]["details"] == {run_samples.JSON_MARKER: "s0"}
    assert compact["cases"][0]["record"]["config"] == big  # only the report's tables move
    assert compact["cases"][1]["record"]["details"] == {"student": "half width"}
    back = run_samples.read_blob(run_samples.encode(arrays))
    assert run_samples.attach(compact, back.__getitem__) == data
    figures = run_samples.without_samples(compact)
    assert figures["cases"][0]["record"]["details"] == {} and figures["cases"][1] == data["cases"][1]


def test_a_record_without_cases_is_left_alone():
    data = {"run": "x", "values": [0.5] * 50}
    assert run_samples.split(data) == (data, {})


def test_a_missing_or_foreign_samples_file_is_one_line_naming_both_files(tmp_path):
    record = tmp_path / "run-1.json"
    with pytest.raises(run_samples.SamplesError, match=rf"^{record}: its samples file .*run-1.samples.npz is missing"):
        run_samples.read(tmp_path / "run-1.samples.npz", None, record)
    blob = run_samples.encode({"s0": np.arange(20.0)})
    (tmp_path / "run-1.samples.npz").write_bytes(blob)
    with pytest.raises(run_samples.SamplesError, match="is not the one written with this record"):
        run_samples.read(tmp_path / "run-1.samples.npz", "0" * 64, record)
    assert run_samples.read(tmp_path / "run-1.samples.npz", run_samples.digest(blob), record)["s0"][19] == 19.0
    (tmp_path / "run-1.samples.npz").write_bytes(b"not a zip")
    with pytest.raises(run_samples.SamplesError, match=r"is not a readable \.npz archive") as info:
        run_samples.read(tmp_path / "run-1.samples.npz", None, record)
    assert "\n" not in str(info.value)


def test_the_samples_file_sits_beside_its_record(tmp_path):
    assert run_samples.sidecar_path(tmp_path / "run-20260101-120000_002.json") == \
        tmp_path / "run-20260101-120000_002.samples.npz"
