"""``python -m harness.report --merge``: shard records become one record, one history entry and one page."""

from __future__ import annotations

import pytest

from harness import history
from harness.report import json_report
from harness.report.__main__ import main
from harness.result import RunResult
from tests.report import records


def _shards(tmp_path, commit2: str = "abc123") -> list:
    cases = records.all_techniques()
    shard_dir = tmp_path / "shards"
    return [json_report.write_run(RunResult.from_dict(records.run(part, started=started, commit=commit)), shard_dir)
            for part, started, commit in ((cases[:9], "2026-11-28T19:00:00Z", "abc123"),
                                          (cases[9:], "2026-11-28T19:00:03Z", commit2))]


def test_merging_shards_writes_one_record_one_history_run_and_one_page(tmp_path, capsys):
    shards = _shards(tmp_path)
    out, results = tmp_path / "report.html", tmp_path / "results"
    assert main([*map(str, shards), "--merge", "--record-dir", str(results), "-o", str(out)]) == 0
    (merged,) = json_report.run_records(results)
    assert f"merged 2 shard record(s), {len(records.all_techniques())} cases, into {merged}" in capsys.readouterr().out
    run = RunResult.load(merged)  # with its samples: the training curves are back
    assert [c["case_id"] for c in run.cases] == [c["case_id"] for c in records.all_techniques()]
    assert run.to_dict()["cases"] == RunResult.from_dict(records.run()).to_dict()["cases"]
    assert [s["source"] for s in run.shards] == list(map(str, shards))
    assert history.count_rows(history.default_url(results)) == (1, len(run.cases))
    assert out.exists()


def test_merging_shards_of_two_commits_is_refused_in_one_line_and_writes_nothing(tmp_path, capsys):
    shards = _shards(tmp_path, commit2="def456")
    out, results = tmp_path / "report.html", tmp_path / "results"
    assert main([*map(str, shards), "--merge", "--record-dir", str(results), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"optbench report: {shards[1]}: commit def456 differs from {shards[0]}'s abc123; merge shards of "
                   "one commit, or pass --allow-mixed\n")
    assert not out.exists() and not results.exists()
    assert main([*map(str, shards), "--merge", "--allow-mixed", "--record-dir", str(results), "-o", str(out),
                 "--history", "off"]) == 0
    assert len(json_report.run_records(results)) == 1 and not (results / "history.sqlite").exists()


def test_allow_mixed_without_merge_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(tmp_path / "x.json"), "--allow-mixed"])
    assert info.value.code == 2 and "--allow-mixed qualifies --merge: give --merge too" in capsys.readouterr().err
