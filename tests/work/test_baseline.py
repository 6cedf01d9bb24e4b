"""The work baseline: entries from separate counting runs, kept per counting environment."""

from __future__ import annotations

import json

import pytest

from harness.errors import BaselineError
from harness.work import baseline
from harness.work.figures import WorkFigures

ENV = {"valgrind": "valgrind-3.19.0", "presented_cpu": "Intel(R) Core(TM) i7-4910MQ CPU @ 2.90GHz", "isa": "avx2",
       "python": "3.11.7", "torch": "2.13.0", "onnxruntime": "1.32.0", "numpy": "2.4.6"}


def fig(instr: float) -> WorkFigures:
    return WorkFigures(instr, calls=20, repeats=3, spread=0.0, estimated_cycles=2 * instr)


def test_entries_are_the_median_and_spread_of_the_runs_cases_counted_in_all():
    runs = [{"a": fig(100.0), "b": fig(5.0)}, {"a": fig(102.0)}, {"a": fig(101.0), "b": fig(5.0)}]
    entries = baseline.entries_from_runs(runs)
    assert list(entries) == ["a"]  # b was not counted in every run
    assert entries["a"].instructions == 101.0 and entries["a"].runs == 3 and entries["a"].estimated_cycles == 202.0
    assert entries["a"].spread == pytest.approx(1.4826 / 101, abs=1e-5)  # a robust sd (1.4826 x MAD) / median


def test_save_merge_and_load_keep_other_environments(tmp_path):
    path = baseline.work_path(tmp_path)
    other = {**ENV, "onnxruntime": "1.31.0"}
    first = baseline.merged(None, other, {"a": baseline.WorkEntry(90.0, 0.0, 1)})
    baseline.save(path, baseline.merged(first, ENV, {"a": baseline.WorkEntry(100.0, 0.01, 3)}))
    loaded = baseline.load(path)
    assert loaded is not None
    assert loaded.entry("a", ENV).instructions == 100.0
    assert loaded.entry("a", other).instructions == 90.0
    assert loaded.entry("a", {**ENV, "torch": "2.14.0"}) is None  # another counting environment: not gated
    assert baseline.load(tmp_path / "absent.json") is None


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", "is corrupt"),
    (json.dumps({"schema_version": 7, "environments": {}}), "has schema_version 7; expected 1"),
    (json.dumps({"schema_version": 1, "environments": {"k": {"environment": {}}}}), "is corrupt"),
])
def test_a_bad_work_baseline_is_refused_in_one_line(tmp_path, content, expected):
    path = baseline.work_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(BaselineError, match=expected) as info:
        baseline.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
