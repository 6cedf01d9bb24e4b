"""Run records of runs started at the same moment must not overwrite each other."""

import json
import types

from harness.report import json_report


def test_two_runs_started_at_the_same_moment_get_two_files(tmp_path):
    paths = []
    for name in ("first", "second", "third"):
        result = types.SimpleNamespace(started="2026-01-01T12:00:00Z", to_dict=lambda name=name: {"run": name})
        paths.append(json_report.write_run(result, tmp_path))  # type: ignore[arg-type]
    assert len(set(paths)) == 3
    assert [json.loads(p.read_text())["run"] for p in paths] == ["first", "second", "third"]
    assert paths[0].name == "run-20260101-120000.json" and paths[1].name == "run-20260101-120000-2.json"
