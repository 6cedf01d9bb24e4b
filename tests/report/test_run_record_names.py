"""Run records of runs started at the same moment must not overwrite each other."""

import json
import types

from harness.report import json_report


def test_two_runs_started_at_the_same_moment_get_two_files(tmp_path):
    paths = []
    names = [f"run {i}" for i in range(12)]
    for name in names:
        result = types.SimpleNamespace(started="2026-01-01T12:00:00Z", to_dict=lambda name=name: {"run": name})
        paths.append(json_report.write_run(result, tmp_path))  # type: ignore[arg-type]
    assert len(set(paths)) == len(names)
    assert [json.loads(p.read_text())["run"] for p in paths] == names
    assert paths[0].name == "run-20260101-120000.json" and paths[1].name == "run-20260101-120000_002.json"


def test_run_records_sort_by_name_in_the_order_they_were_written(tmp_path):
    """Tools and people pick the latest run as the last name in sorted order; a collision suffix must keep that."""
    later = types.SimpleNamespace(started="2026-01-01T12:00:01Z", to_dict=lambda: {"run": "later"})
    paths = [json_report.write_run(types.SimpleNamespace(started="2026-01-01T12:00:00Z",
                                                         to_dict=lambda i=i: {"run": i}), tmp_path) for i in range(11)]
    paths.append(json_report.write_run(later, tmp_path))  # type: ignore[arg-type]
    assert sorted(tmp_path.glob("run-*.json")) == paths
