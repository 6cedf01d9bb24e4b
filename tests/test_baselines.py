import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import baselines
from harness.baselines import BaselineEntry, BaselineFile
from harness.errors import BaselineError

names = st.text(st.characters(categories=["Ll", "Nd"], include_characters="_-."), min_size=1, max_size=20)
numbers = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64))
entries = st.builds(
    BaselineEntry,
    metrics=st.dictionaries(names, numbers, max_size=6),
    accepted_failures=st.frozensets(names, max_size=3),
    config=st.dictionaries(names, st.one_of(st.integers(), names, st.booleans()), max_size=3),
    identity=st.dictionaries(names, names, max_size=3),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(cases=st.dictionaries(names, entries, max_size=5), env=st.dictionaries(names, names, max_size=3))
def test_save_load_round_trip(tmp_path, cases, env):
    path = tmp_path / "suite.json"
    original = BaselineFile("suite", env, cases, "2026-01-01T00:00:00Z")
    baselines.save(path, original)
    loaded = baselines.load(path)
    assert loaded == original


def test_file_is_sorted_and_reviewable(tmp_path):
    path = tmp_path / "s.json"
    baselines.save(path, BaselineFile("s", {"cpu": "x"}, {"b": BaselineEntry({"z": 1.0, "a": 2.0}),
                                                          "a": BaselineEntry({})}))
    text = path.read_text()
    assert text.endswith("\n") and text.index('"a"') < text.index('"b"')
    assert json.loads(text)["schema_version"] == baselines.SCHEMA_VERSION


def test_missing_file_is_none(tmp_path):
    assert baselines.load(tmp_path / "absent.json") is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"schema_version": 1, "cases": {', "is not valid JSON"),
        ("", "is empty"),
        ("[]", "must hold a JSON object"),
        ('{"schema_version": 99, "cases": {}}', "schema_version 99, expected 1"),
        ('{"cases": {}}', "schema_version None"),
        ('{"schema_version": 1}', "no `cases` object"),
        ('{"schema_version": 1, "cases": {"x": 3}}', "cases['x'] must be an object"),
        ('{"schema_version": 1, "cases": {"x": {"metrics": {"speedup": "fast"}}}}', "must be a number or null"),
        ('{"schema_version": 1, "cases": {"x": {"metrics": {}, "identity": {"weights": 7}}}}',
         "identity must be an object of strings"),
    ],
)
def test_corrupt_or_unknown_baseline_names_file_and_problem_and_is_untouched(tmp_path, content, problem):
    path = tmp_path / "quantization.json"
    path.write_text(content)
    with pytest.raises(BaselineError) as info:
        baselines.load(path)
    message = str(info.value)
    assert str(path) in message and problem in message and "\n" not in message
    assert path.read_text() == content


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    baselines.save(path, BaselineFile("s", {}, {"a": BaselineEntry({"x": 1.0})}))
    before = path.read_text()
    real_write_text = type(path).write_text

    def crash_mid_write(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(type(path), "write_text", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        baselines.save(path, BaselineFile("s", {}, {"b": BaselineEntry({"y": 2.0})}))
    monkeypatch.undo()
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]  # no temporary file left behind


def test_merge_keeps_cases_not_run():
    old = BaselineFile("s", {"cpu": "old"}, {"a": BaselineEntry({"x": 1.0}), "b": BaselineEntry({"x": 2.0})})
    new = baselines.merged(old, "s", {"cpu": "new"}, {"b": BaselineEntry({"x": 3.0})})
    assert new.cases["a"].metrics == {"x": 1.0} and new.cases["b"].metrics == {"x": 3.0}
    assert new.environment == {"cpu": "new"} and new.taken_at
