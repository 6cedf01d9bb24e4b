"""Run records of runs started at the same moment must not overwrite each other."""

import datetime as dt
import json
import types

from harness.report import json_report


def test_two_runs_started_at_the_same_moment_get_two_files(tmp_path, monkeypatch):
    started = dt.datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    monkeypatch.setattr(json_report, "build_run", lambda session: {"run": session.name})
    paths = []
    for name in ("first", "second", "third"):
        session = types.SimpleNamespace(name=name, started=started,
                                        options=types.SimpleNamespace(results_dir=tmp_path))
        paths.append(json_report.write_run(session))
    assert len(set(paths)) == 3
    assert [json.loads(p.read_text())["run"] for p in paths] == ["first", "second", "third"]
    assert paths[0].name == "run-20260101-120000-123456.json" and paths[1].name.endswith("-2.json")
