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
    original = BaselineFile.single("suite", env, cases, "2026-01-01T00:00:00Z")
    baselines.save(path, original)
    loaded = baselines.load(path)
    assert loaded == original


def test_file_is_sorted_and_reviewable(tmp_path):
    path = tmp_path / "s.json"
    baselines.save(path, BaselineFile.single("s", {"cpu": "x"}, {"b": BaselineEntry({"z": 1.0, "a": 2.0}),
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
        ('{"schema_version": 99, "cases": {}}', "schema_version 99, expected 2"),
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
    baselines.save(path, BaselineFile.single("s", {}, {"a": BaselineEntry({"x": 1.0})}))
    before = path.read_text()
    real_write_text = type(path).write_text

    def crash_mid_write(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(type(path), "write_text", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        baselines.save(path, BaselineFile.single("s", {}, {"b": BaselineEntry({"y": 2.0})}))
    monkeypatch.undo()
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]  # no temporary file left behind


ENV_A = {"arch": "x86_64", "cpu": "EPYC", "cpu_flags": ["avx2"], "logical_cores": 2, "threads": 1, "gpu": None,
         "libraries": {"torch": "2.13.0", "onnxruntime": "1.32.0"}}
ENV_B = ENV_A | {"cpu": "Xeon", "cpu_flags": ["avx2", "avx512f", "avx512_vnni"], "logical_cores": 8}


def _single(env, cases):
    return baselines.merged(None, "s", env, cases)


def test_merge_keeps_cases_not_run():
    old = _single(ENV_A, {"a": BaselineEntry({"x": 1.0}), "b": BaselineEntry({"x": 2.0})})
    new = baselines.merged(old, "s", ENV_A | {"cpu": "other EPYC"}, {"b": BaselineEntry({"x": 3.0})})
    (cls,) = new.classes.values()
    assert cls.cases["a"].metrics == {"x": 1.0} and cls.cases["b"].metrics == {"x": 3.0}
    assert cls.environment["cpu"] == "other EPYC" and cls.taken_at


def test_partial_update_on_another_machine_class_cannot_relabel_other_cases():
    """Accepting one case on an AVX-512 runner adds that class; the AVX2 class's figures keep their environment."""
    old = _single(ENV_A, {"a": BaselineEntry({"speedup": 1.0}), "b": BaselineEntry({"speedup": 2.0})})
    new = baselines.merged(old, "s", ENV_B, {"b": BaselineEntry({"speedup": 3.0})})
    a_cls, b_cls = new.for_environment(ENV_A), new.for_environment(ENV_B)
    assert a_cls is not None and b_cls is not None and len(new.classes) == 2
    assert a_cls.environment == ENV_A and a_cls.cases["b"].metrics == {"speedup": 2.0} and "a" in a_cls.cases
    assert b_cls.environment == ENV_B and set(b_cls.cases) == {"b"}
    entry, same = new.entry("a", ENV_B)
    assert entry is not None and entry.metrics == {"speedup": 1.0} and not same  # quality/size gate; speed not
    entry, same = new.entry("b", ENV_B)
    assert entry is not None and entry.metrics == {"speedup": 3.0} and same


def test_v1_file_is_migrated_on_read_into_one_class_and_saved_as_v2(tmp_path):
    path = tmp_path / "suite.json"
    v1_env = {k: v for k, v in ENV_A.items() if k != "arch"}  # v1 read flags by hand and recorded no arch
    path.write_text(json.dumps({"schema_version": 1, "suite": "suite", "taken_at": "2026-01-01T00:00:00Z",
                                "environment": v1_env,
                                "cases": {"m-int8": {"metrics": {"speedup": 2.0}, "identity": {"weights": "w"},
                                                     "accepted_contract_failures": ["x"], "config": {}}}}))
    loaded = baselines.load(path)
    assert loaded is not None
    (key, cls), = loaded.classes.items()
    assert cls.environment["arch"] == "x86_64" and key == baselines.machine_class(ENV_A)
    assert cls.cases["m-int8"] == BaselineEntry({"speedup": 2.0}, frozenset({"x"}), {}, {"weights": "w"})
    assert loaded.entry("m-int8", ENV_A) == (cls.cases["m-int8"], True)
    baselines.save(path, loaded)
    assert json.loads(path.read_text())["schema_version"] == 2 and baselines.load(path) == loaded


def test_committed_baselines_load_in_the_current_schema():
    from pathlib import Path

    for path in sorted(Path(__file__).parents[1].glob("results/baselines/*.json")):
        loaded = baselines.load(path)
        assert loaded is not None and loaded.classes, path


def test_diff_shows_old_to_new_per_case_and_figure_and_what_would_fail():
    old = _single(ENV_A, {"a": BaselineEntry({"speedup": 2.0, "size_bytes": 100.0}),
                          "gone": BaselineEntry({"speedup": 1.0})})
    new = baselines.merged(old, "s", ENV_A, {"a": BaselineEntry({"speedup": 1.0, "size_bytes": 100.0}),
                                             "fresh": BaselineEntry({})})
    lines = baselines.diff_lines(old, new)
    text = "\n".join(lines)
    assert f"class {baselines.machine_class(ENV_A)}:" in lines[0]
    assert "    speedup: 2 -> 1 (-50.0%)" in lines and "size_bytes" not in text  # unchanged figures not listed
    assert any(line.startswith("    would fail: a: speedup dropped beyond its threshold") for line in lines)
    assert "  fresh: new" in lines
    assert baselines.diff_lines(new, new) == ["no change"]


def test_diff_command_prints_the_diff_and_refuses_a_bad_file(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    baselines.save(a, _single(ENV_A, {"c": BaselineEntry({"speedup": 2.0})}))
    baselines.save(b, _single(ENV_A, {"c": BaselineEntry({"speedup": 2.2})}))
    assert baselines.main(["diff", str(a), str(b)]) == 0
    assert "    speedup: 2 -> 2.2 (+10.0%)" in capsys.readouterr().out
    b.write_text("{")
    assert baselines.main(["diff", str(a), str(b)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
