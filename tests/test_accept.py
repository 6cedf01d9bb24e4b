"""Accepting a baseline from the median of several run records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import accept, baselines
from harness.baselines import BaselineEntry, BaselineFile
from harness.result import RUN_SCHEMA_VERSION

ENV = {"arch": "x86_64", "cpu": "EPYC", "cpu_flags": ["avx2"], "logical_cores": 2, "threads": 1, "gpu": None}


def _case(case_id: str, speedup: float, *, identity=None, contract="pass") -> dict:
    return {"case_id": case_id, "suite": "quantization", "status": "pass",
            "record": {"metrics": {"speedup": speedup, "quality.value": 0.97, "size_bytes": 1000.0,
                                   "memory.peak_rss_bytes": 1e9, "proof.int8_ops": 3.0},
                       "identity": identity or {"weights": "aaaa"}, "config": {"name": "int8"}},
            "verdicts": [{"check": "quality_retention", "source": "contract", "status": contract}]}


def _run(tmp_path: Path, name: str, cases: list[dict], environment=None) -> Path:
    path = tmp_path / f"run-{name}.json"
    path.write_text(json.dumps({"schema_version": RUN_SCHEMA_VERSION, "environment": environment or ENV,
                                "started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:01:00Z",
                                "duration_s": 60.0, "cases": cases}))
    return path


def test_baseline_is_the_median_of_the_runs_and_keeps_other_cases(tmp_path):
    base_dir = tmp_path / "baselines"
    baselines.save(baselines.baseline_path(base_dir, "quantization"),
                   BaselineFile.single("quantization", ENV | {"cpu": "old"},
                                       {"other": BaselineEntry({"speedup": 9.0})}))
    runs = [_run(tmp_path, str(i), [_case("m-int8-ort", s, contract=c)])
            for i, (s, c) in enumerate([(0.50, "pass"), (0.35, "fail"), (0.34, "pass")])]
    shown: list[str] = []
    (written,) = accept.accept(runs, base_dir, show=shown.append, accept_known=("m-int8-*:quality_retention",))
    loaded = baselines.load(written)
    assert loaded is not None
    cls = loaded.for_environment(ENV)
    assert cls is not None and cls.environment == ENV
    entry = cls.cases["m-int8-ort"]
    assert entry.metrics == {"speedup": 0.35, "quality.value": 0.97, "size_bytes": 1000.0, "proof.int8_ops": 3.0}
    assert entry.accepted_failures == {"quality_retention"}  # unmet in one of the runs: a finding to accept
    assert entry.identity == {"weights": "aaaa"}
    assert entry.runs == 3 and entry.spread == {"speedup": pytest.approx(0.08 / 0.35, abs=1e-3)}  # half-range
    assert cls.cases["other"].metrics == {"speedup": 9.0}
    assert "    m-int8-ort: new" in shown


def test_an_unmet_contract_is_refused_unless_named_and_nothing_is_written(tmp_path, capsys):
    base_dir = tmp_path / "baselines"
    runs = [_run(tmp_path, "a", [_case("m-int8-ort", 0.5, contract="fail"), _case("m-fp16-ort", 0.9)]),
            _run(tmp_path, "b", [_case("m-int8-ort", 0.5, contract="known")])]
    assert accept.main([*map(str, runs), "--baseline-dir", str(base_dir)]) == 2
    err = capsys.readouterr().err
    assert "1 unmet contract(s) not accepted as findings: m-int8-ort:quality_retention" in err
    assert "--accept-known CASE:CHECK (nothing was written)" in err
    assert not baselines.baseline_path(base_dir, "quantization").exists()
    assert accept.main([*map(str, runs), "--baseline-dir", str(base_dir), "--accept-known", "quality_retention"]) == 0
    cls = baselines.load(baselines.baseline_path(base_dir, "quantization")).for_environment(ENV)
    assert cls.cases["m-int8-ort"].accepted_failures == {"quality_retention"}
    assert cls.cases["m-fp16-ort"].accepted_failures == frozenset()


def test_dry_run_shows_the_change_and_writes_nothing(tmp_path):
    base_dir = tmp_path / "baselines"
    path = baselines.baseline_path(base_dir, "quantization")
    baselines.save(path, BaselineFile.single("quantization", ENV, {"m-int8-ort": BaselineEntry({"speedup": 1.0})}))
    before = path.read_text()
    shown: list[str] = []
    assert accept.accept([_run(tmp_path, "a", [_case("m-int8-ort", 0.5)])], base_dir, dry_run=True,
                         show=shown.append) == []
    assert path.read_text() == before
    assert "      speedup: 1 -> 0.5 (-50.0%)" in shown
    assert any("would fail: m-int8-ort: speedup dropped" in line for line in shown)


@pytest.mark.parametrize(
    ("second", "problem"),
    [
        ({"environment": ENV | {"cpu_flags": ["avx2", "avx512_vnni"]}}, "measured on another machine class"),
        ({"identity": {"weights": "bbbb"}}, "case m-int8-ort has identity"),
    ],
)
def test_runs_that_cannot_make_one_baseline_are_refused_and_the_file_is_untouched(tmp_path, second, problem):
    base_dir = tmp_path / "baselines"
    path = baselines.baseline_path(base_dir, "quantization")
    baselines.save(path, BaselineFile.single("quantization", ENV, {"x": BaselineEntry({"speedup": 1.0})}))
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
    assert err.startswith(f"error: {bad}: not valid JSON (truncated or corrupt run record?)") and err.count("\n") == 1
    old = tmp_path / "run-old.json"
    old.write_text('{"schema_version": 99, "cases": []}')
    assert accept.main([str(old), "--baseline-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{old}: unknown run record schema_version 99; this optbench reads versions 1, 2, 3" in err


def test_keep_wider_spread_never_forgets_the_noise_the_class_showed_before(tmp_path):
    base_dir = tmp_path / "baselines"
    baselines.save(baselines.baseline_path(base_dir, "quantization"), BaselineFile.single(
        "quantization", ENV, {"m-int8-ort": BaselineEntry({"speedup": 0.4}, spread={"speedup": 0.5})}))
    runs = [_run(tmp_path, str(i), [_case("m-int8-ort", s)]) for i, s in enumerate([0.40, 0.41, 0.42])]
    accept.accept(runs, base_dir, show=lambda _: None)
    cls = baselines.load(baselines.baseline_path(base_dir, "quantization")).for_environment(ENV)
    assert cls.cases["m-int8-ort"].spread["speedup"] < 0.1  # the three runs alone
    accept.accept(runs, base_dir, show=lambda _: None, keep_wider_spread=True)
    cls = baselines.load(baselines.baseline_path(base_dir, "quantization")).for_environment(ENV)
    assert cls.cases["m-int8-ort"].spread["speedup"] < 0.1  # the entry just written is the old one now
    baselines.save(baselines.baseline_path(base_dir, "quantization"), BaselineFile.single(
        "quantization", ENV, {"m-int8-ort": BaselineEntry({"speedup": 0.4}, spread={"speedup": 0.5})}))
    accept.accept(runs, base_dir, show=lambda _: None, keep_wider_spread=True)
    cls = baselines.load(baselines.baseline_path(base_dir, "quantization")).for_environment(ENV)
    assert cls.cases["m-int8-ort"].spread["speedup"] == 0.5 and cls.cases["m-int8-ort"].metrics["speedup"] == 0.41


def test_accepting_some_suites_leaves_the_others_alone(tmp_path):
    base_dir = tmp_path / "baselines"
    other = {**_case("m-kd-ort", 2.0), "suite": "distillation"}
    runs = [_run(tmp_path, "a", [_case("m-int8-ort", 0.5), other])]
    assert accept.main([*map(str, runs), "--baseline-dir", str(base_dir), "--suites", "distillation"]) == 0
    assert baselines.baseline_path(base_dir, "distillation").exists()
    assert not baselines.baseline_path(base_dir, "quantization").exists()


def test_entries_every_run_reported_stale_are_dropped(tmp_path):
    base_dir = tmp_path / "baselines"
    path = baselines.baseline_path(base_dir, "quantization")
    baselines.save(path, BaselineFile.single("quantization", ENV, {"m-gone-ort": BaselineEntry({"speedup": 1.0}),
                                                                   "m-kept-ort": BaselineEntry({"speedup": 1.0})}))
    runs = []
    for name, stale in (("a", ["m-gone-ort"]), ("b", ["m-gone-ort", "m-kept-ort"])):
        run = _run(tmp_path, name, [_case("m-int8-ort", 0.5)])
        data = json.loads(run.read_text())
        data["baselines"] = {"quantization": {"stale": stale}}
        run.write_text(json.dumps(data))
        runs.append(run)
    accept.accept(runs, base_dir, show=lambda _: None)
    assert set(baselines.load(path).for_environment(ENV).cases) == {"m-kept-ort", "m-int8-ort"}


def test_the_spread_across_weights_is_recorded_and_kept_by_later_acceptance(tmp_path, capsys):
    base_dir = tmp_path / "baselines"
    path = baselines.baseline_path(base_dir, "quantization")
    baselines.save(path, BaselineFile.single("quantization", ENV, {
        "m-int8-ort": BaselineEntry({"speedup": 0.5, "quality.value": 0.96}, spread={"speedup": 0.1})}))
    runs = []
    for i, q in enumerate((0.96, 0.93, 0.88)):  # three seed offsets: three weights
        case = _case("m-int8-ort", 0.5, identity={"weights": f"w{i}"})
        case["record"]["metrics"]["quality.value"] = q
        runs.append(_run(tmp_path, str(i), [case]))
    assert accept.main([*map(str, runs[:2]), "--baseline-dir", str(base_dir), "--weights-spread"]) == 0
    assert "2 weights, fewer than 3: left alone" in capsys.readouterr().out
    assert accept.main([*map(str, runs), "--baseline-dir", str(base_dir), "--weights-spread"]) == 0
    entry = baselines.load(path).for_environment(ENV).cases["m-int8-ort"]
    assert entry.spread == {"speedup": 0.1, "quality.value": pytest.approx(0.0404, abs=1e-4),
                            "quality.value.weights": 3.0}
    assert entry.metrics["quality.value"] == 0.96  # figures untouched
    accept.accept([_run(tmp_path, "later", [_case("m-int8-ort", 0.6)])], base_dir, show=lambda _: None)
    assert baselines.load(path).for_environment(ENV).cases["m-int8-ort"].spread["quality.value"] == pytest.approx(
        0.0404, abs=1e-4)  # one machine's runs cannot re-measure it: kept


def test_shard_records_of_one_run_are_accepted_merged_and_refused_across_commits(tmp_path, capsys):
    base_dir = tmp_path / "baselines"
    one = _run(tmp_path, "s1", [_case("m-int8-ort", 1.5)])
    two = _run(tmp_path, "s2", [_case("m-int8-torch", 2.5)])
    assert accept.main([str(one), str(two), "--merge", "--baseline-dir", str(base_dir)]) == 0
    assert "from the median of 2 shard record(s) merged into one run" in capsys.readouterr().out
    cases = json.loads(baselines.baseline_path(base_dir, "quantization").read_text())["classes"]
    (cls,) = cases.values()
    assert {k: v["metrics"]["speedup"] for k, v in cls["cases"].items()} == {"m-int8-ort": 1.5, "m-int8-torch": 2.5}
    assert all(v["runs"] == 1 for v in cls["cases"].values())
    other = json.loads(two.read_text()) | {"commit": "def456"}
    two.write_text(json.dumps(other))
    assert accept.main([str(one), str(two), "--merge", "--baseline-dir", str(base_dir)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {two}: commit def456 differs from {one}'s unknown; merge shards of one commit, or pass "
                   "--allow-mixed\n")
    assert accept.main([str(one), str(two), "--merge", "--allow-mixed", "--baseline-dir", str(base_dir)]) == 0


def test_a_contract_figure_on_one_draw_gets_its_spread_across_weights_in_the_entry_its_class_is_judged_against(
        tmp_path, capsys):
    base_dir = tmp_path / "baselines"
    path = baselines.baseline_path(base_dir, "interpretability")
    avx2 = ENV | {"cpu_flags": ["avx2"]}
    baselines.save(path, BaselineFile.single("interpretability", avx2, {
        "m-pruned-torch": BaselineEntry({"quality.value": 0.99, "proof.interp.excess": 0.015})}))
    amx = ENV | {"cpu_flags": ["avx2", "amx_int8"]}  # a class with no entry of its own
    runs = []
    for i, excess in enumerate((0.0445, 0.0056, -0.0014, -0.007)):  # four seed offsets: four weights
        case = _case("m-pruned-torch", 1.0, identity={"weights": f"w{i}"})
        case["suite"] = "interpretability"
        case["record"]["metrics"]["proof.interp.excess"] = excess
        case["verdicts"] = [{"check": "rules_kept", "source": "contract", "status": "pass",
                             "metric": "proof.interp.excess", "across_weights": True},
                            {"check": "size", "source": "baseline", "status": "pass", "metric": "size_bytes"}]
        runs.append(_run(tmp_path, str(i), [case], environment=amx))
    assert accept.main([*map(str, runs), "--baseline-dir", str(base_dir), "--weights-spread"]) == 0
    out = capsys.readouterr().out
    assert "proof.interp.excess across 4 weights -0.0070 to 0.0445, spread 0.0233" in out
    assert "the entry this class is judged against" in out
    saved = baselines.load(path)
    assert saved.for_environment(amx) is None  # no entry of the runs' class was made up
    entry = saved.for_environment(avx2).cases["m-pruned-torch"]
    assert baselines.across_weights(entry.spread) == {"proof.interp.excess": (pytest.approx(0.0233, abs=1e-4), 4),
                                                      "quality.value": (0.0, 4)}
    assert "size_bytes" not in entry.spread  # a figure of no contract on one draw is not spread across weights
