"""Shard records merge into the run they split, and records of other commits or machines are refused by name."""

from __future__ import annotations

import pytest

from harness.merge import MergeError, merge
from harness.result import RunResult
from tests.report import records


def _shards(commit2: str = "abc123", env2: dict | None = None) -> list[RunResult]:
    cases = records.all_techniques()
    half = len(cases) // 2
    one = records.run(cases[:half], started="2026-11-28T19:00:00Z") | {"duration_s": 50.0, "notes": ["n1", "n2"]}
    two = records.run(cases[half:], started="2026-11-28T19:00:05Z", commit=commit2, environment=env2)
    two |= {"finished": "2026-11-28T19:02:00Z", "duration_s": 70.0, "notes": ["n2", "n3"]}
    one["baselines"] = {"quantization": {"stale": ["a", "b"]}}
    two["baselines"] = {"quantization": {"stale": ["b"]}, "pruning": {"stale": []}}
    return [RunResult.from_dict(one, "shard-1.json"), RunResult.from_dict(two, "shard-2.json")]


def test_shards_merge_into_one_run_of_every_case():
    shards = _shards()
    merged = merge(list(reversed(shards)))
    assert [c["case_id"] for c in merged.cases] == [c["case_id"] for c in records.all_techniques()]
    assert (merged.started, merged.finished, merged.duration_s) == ("2026-11-28T19:00:00Z", "2026-11-28T19:02:00Z",
                                                                    70.0)
    assert merged.commit == "abc123" and merged.notes == ("n1", "n2", "n3")
    assert [s["source"] for s in merged.shards] == ["shard-1.json", "shard-2.json"]
    assert [s["cases"] for s in merged.shards] == [len(s.cases) for s in shards]
    assert merged.baselines["quantization"]["stale"] == ["b"] and "pruning" in merged.baselines
    assert RunResult.from_dict(merged.to_dict()).shards == merged.shards


def test_shards_of_another_commit_are_refused_in_one_line_unless_mixing_is_allowed():
    shards = _shards(commit2="def456")
    with pytest.raises(MergeError, match=r"^shard-2.json: commit def456 differs from shard-1.json's abc123; merge "
                                         r"shards of one commit, or pass --allow-mixed$"):
        merge(shards)
    merged = merge(shards, allow_mixed=True)
    assert any("merged across commits" in n for n in merged.notes)


def test_shards_of_another_machine_class_are_refused_unless_mixing_is_allowed():
    shards = _shards(env2=records.ENV | {"threads": 2})
    with pytest.raises(MergeError, match=r"^shard-2.json: measured on another machine class than shard-1.json "
                                         r"\(threads differ\); merge shards of one machine class"):
        merge(shards)
    assert any("merged across machine classes" in n for n in merge(shards, allow_mixed=True).notes)


def test_a_case_in_two_records_is_refused_even_when_mixing_is_allowed():
    run = records.run()
    twice = [RunResult.from_dict(run, "run-a.json"), RunResult.from_dict(run, "run-b.json")]
    with pytest.raises(MergeError, match=r"^run-b.json: case digits_cnn-fp32-torch_eager of suite quantization is "
                                         r"also in run-a.json; shards of one run hold each case once"):
        merge(twice, allow_mixed=True)


def test_nothing_to_merge_says_what_was_expected():
    with pytest.raises(MergeError, match="no run records to merge; give the shard records"):
        merge([])
