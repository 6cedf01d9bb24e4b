"""Accepting a baseline from the median of several run records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import accept, baselines
from harness.baselines import BaselineEntry, BaselineFile
from harness.result import RUN_SCHEMA_VERSION

ENV = {"cpu": "EPYC", "cpu_flags": ["avx2"], "logical_cores": 2, "threads": 1, "gpu": None}


def _case(case_id: str, speedup: float, *, identity=None, contract="pass") -> dict:
    return {"case_id": case_id, "suite": "quantization", "status": "pass",
            "record": {"metrics": {"speedup": speedup, "quality.value": 0.97, "size_bytes": 1000.0,
                                   "memory.peak_rss_bytes": 1e9, "proof.int8_ops": 3.0},
                       "identity": identity or {"weights": "aaaa"}, "config": {"name": "int8"}},
            "verdicts": [{"check": "quality_retention", "source": "contract", "status": contract}]}


def _run(tmp_path: Path, name: str, cases: list[dict], environment=None) -> Path:
    path = tmp_path / f"run-{name}.json"
    path.write_text(json.dumps({"schema_version": RUN_SCHEMA_VERSION, "environment": environment or ENV,
                                "cases": cases}))
    return path


def test_baseline_is_the_median_of_the_runs_and_keeps_other_cases(tmp_path):
    base_dir = tmp_path / "baselines"
    baselines.save(baselines.baseline_path(base_dir, "quantization"),
                   BaselineFile("quantization", {"cpu": "old"}, {"other": BaselineEntry({"speedup": 9.0})}))
    runs = [_run(tmp_path, str(i), [_case("m-int8-ort", s, contract=c)])
            for i, (s, c) in enumerate([(0.50, "pass"), (0.35, "fail"), (0.34, "pass")])]
    (written,) = accept.accept(runs, base_dir)
    loaded = baselines.load(written)
    assert loaded is not None and loaded.environment == ENV
    entry = loaded.cases["m-int8-ort"]
    assert entry.metrics == {"speedup": 0.35, "quality.value": 0.97, "size_bytes": 1000.0, "proof.int8_ops": 3.0}
    assert entry.accepted_failures == {"quality_retention"}  # unmet in one of the runs: a finding to accept
    assert entry.identity == {"weights": "aaaa"}
    assert loaded.cases["other"].metrics == {"speedup": 9.0}


@pytest.mark.parametrize(
    ("second", "problem"),
    [
        ({"environment": ENV | {"cpu_flags": ["avx2", "avx512_vnni"]}}, "measured on another machine"),
        ({"identity": {"weights": "bbbb"}}, "case m-int8-ort has identity"),
    ],
)
def test_runs_that_cannot_make_one_baseline_are_refused_and_the_file_is_untouched(tmp_path, second, problem):
    base_dir = tmp_path / "baselines"
    path = baselines.baseline_path(base_dir, "quantization")
    baselines.save(path, BaselineFile("quantization", ENV, {"x": BaselineEntry({"speedup": 1.0})}))
    before = path.read_text()
    first = _run(tmp_path, "a", [_case("m-int8-ort", 1.0)])
    other = _run(tmp_path, "b", [_case("m-int8-ort", 1.0, identity=second.get("identity"))],
                 environment=second.get("environment"))
    with pytest.raises(accept.AcceptError) as info:
        accept.accept([first, other], base_dir)
    assert str(other) in str(info.value) and problem in str(info.value) and "\n" not in str(info.value)
    assert path.read_text() == before


def test_command_line_reports_a_bad_record_in_one_line(tmp_path, capsys):
    bad = tmp_path / "run-bad.json"
    bad.write_text('{"schema_version": 1, "cases": [')
    assert accept.main([str(bad), "--baseline-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: run record {bad}: cannot be read as JSON") and err.count("\n") == 1
    old = tmp_path / "run-old.json"
    old.write_text('{"schema_version": 99, "cases": []}')
    assert accept.main([str(old), "--baseline-dir", str(tmp_path)]) == 2
    assert "schema_version 99, expected 1" in capsys.readouterr().err
