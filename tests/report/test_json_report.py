"""The run record on disk: compact, one case per line, its samples beside it, and only the newest N kept."""

from __future__ import annotations

import json

import pytest

from harness.report import json_report
from harness.result import RunResult
from tests.report import records


def test_the_record_is_compact_json_with_one_case_per_line(tmp_path):
    result = RunResult.from_dict(records.run())
    path = json_report.write_run(result, tmp_path)
    lines = path.read_text().splitlines()
    assert len(lines) == len(result.cases) + 2  # the run's fields, one line per case, the closing bracket
    assert all(json.loads(line.rstrip(","))["case_id"] for line in lines[1:-1])
    data = json.loads(path.read_text())
    assert data["samples"]["file"] == path.name.replace(".json", ".samples.npz") and data["samples"]["arrays"] > 0
    assert len(path.read_bytes()) < len(json.dumps(result.to_dict(), indent=2)) / 2


def test_a_record_with_nothing_long_has_no_samples_file(tmp_path):
    result = RunResult.from_dict(records.run([records.case(records.record("m", "quantization", "fp32", "ort"))]))
    path = json_report.write_run(result, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert "samples" not in json.loads(path.read_text())
    assert RunResult.load(path).to_dict() == result.to_dict()


def _runs(directory, n: int) -> list:
    result = RunResult.from_dict(records.run())
    return [json_report.write_run(result, directory) for _ in range(n)]


def test_pruning_keeps_the_newest_records_with_their_samples_and_nothing_else_goes(tmp_path):
    paths = _runs(tmp_path, 5)
    for other in ("report.html", "history.sqlite", "run-mine.json", "run-20200101-000000.json.bak"):
        (tmp_path / other).write_text("x")
    orphan = tmp_path / "run-20000101-000000.samples.npz"  # its record deleted by hand long ago
    orphan.write_bytes(b"x")
    deleted = json_report.prune_runs(tmp_path, 2)
    assert json_report.run_records(tmp_path) == paths[-2:]
    for path in paths[-2:]:
        assert RunResult.load(path).commit == "abc123"  # each kept record still has its samples
    assert set(deleted) == {*paths[:3], *(p.with_name(p.name.replace(".json", ".samples.npz")) for p in paths[:3]),
                            orphan}
    assert all((tmp_path / other).exists() for other in ("report.html", "history.sqlite", "run-mine.json"))


def test_keeping_zero_keeps_every_record_and_a_negative_count_is_refused(tmp_path):
    paths = _runs(tmp_path, 3)
    assert json_report.prune_runs(tmp_path, 0) == []
    assert json_report.prune_runs(tmp_path, 5) == []
    assert json_report.run_records(tmp_path) == paths
    with pytest.raises(ValueError, match="keep must be >= 0"):
        json_report.prune_runs(tmp_path, -1)
    assert json_report.prune_runs(tmp_path / "missing", 1) == []
