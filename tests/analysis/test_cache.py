"""The analysis figures' cache: a second run reads what the first computed; anything the figures depend on —
the artifact, a setting, the analysis code — makes a new key, and a broken entry is recomputed, never trusted."""

import dataclasses
import importlib
import json
import logging
import sys
import types

import pytest

from harness.analysis import detectors, drift, drift_case, interpretability, interpretability_case, run, shifts
from harness.analysis.run import AnalysisRun, Analyzer
from harness.cache import Cache
from harness.context import Context

MACHINE = "x86_64-avx2-2cpu-1t"


def _prep(tmp_path, artifact_key="art-1", weights="w-1"):
    """What figures_key reads of a prepared case, and nothing more (a stand-in for Prepared)."""
    case = types.SimpleNamespace(suite="drift", id="m-int8-torch_eager", backend="torch_eager",
                                 config=types.SimpleNamespace(to_dict=lambda: {"name": "int8", "source": "q/int8"}))
    spec = types.SimpleNamespace(throughput_batch=64, feature_names=("a", "b"), class_names=None)
    reference = types.SimpleNamespace(spec=spec, key="ref-1", weights_digest=weights)
    artifact = types.SimpleNamespace(key=artifact_key, weights="", machine_choices={})
    return types.SimpleNamespace(case=case, reference=reference, artifact=artifact,
                                 ctx=Context(Cache(tmp_path / "cache"), 1, 0))


class Counting:
    """An analyzer that counts its calls; its settings and modules are set per test."""

    def __init__(self, settings=None, modules=()):
        self.calls = 0
        self.current = settings if settings is not None else {"trials": 100, "seed": 0}
        self.analyzer = Analyzer(self.analyze, lambda: dict(self.current), modules)

    def analyze(self, prep, analysis_run):
        self.calls += 1
        return {"drift.worst_excess": 0.125, "detector.ks.fpr": 0.04}, {"points": [{"shift": "blur", "severity": 3}],
                                                                         "settings": {"seeds": (0, 1)}}


def test_a_second_run_reads_the_figures_the_first_computed(tmp_path):
    counting = Counting()
    first = AnalysisRun().figures(_prep(tmp_path), counting.analyzer, MACHINE)
    second = AnalysisRun().figures(_prep(tmp_path), counting.analyzer, MACHINE)  # a new run: no memo is shared
    assert counting.calls == 1
    assert first[1].pop("cache") == {"key": second[1]["cache"]["key"], "hit": False}
    assert second[1].pop("cache")["hit"] is True
    assert first == second  # computed figures went through the same JSON round trip (the tuple is a list in both)
    assert first[1]["settings"] == {"seeds": [0, 1]} and "analysis_s" in first[1]
    assert len(list((tmp_path / "cache" / run.NAMESPACE).glob("*.json"))) == 1


@pytest.mark.parametrize("change", ["artifact", "reference weights", "setting", "machine"])
def test_what_the_figures_depend_on_makes_a_new_key(tmp_path, change):
    counting = Counting()
    AnalysisRun().figures(_prep(tmp_path), counting.analyzer, MACHINE)
    prep, machine = _prep(tmp_path), MACHINE
    if change == "artifact":
        prep = _prep(tmp_path, artifact_key="art-2")
    elif change == "reference weights":
        prep = _prep(tmp_path, weights="w-2")
    elif change == "setting":
        counting.current["trials"] = 500
    else:
        machine = "x86_64-avx512-2cpu-1t"
    _, details = AnalysisRun().figures(prep, counting.analyzer, machine)
    assert counting.calls == 2 and details["cache"]["hit"] is False


def test_editing_an_analysis_module_recomputes(tmp_path, monkeypatch):
    source = tmp_path / "src" / "optbench_cache_probe.py"
    source.parent.mkdir()
    source.write_text("LIMIT = 1\n")
    monkeypatch.syspath_prepend(str(source.parent))
    module = importlib.import_module("optbench_cache_probe")
    monkeypatch.setitem(sys.modules, "optbench_cache_probe", module)
    counting = Counting(modules=(module,))
    AnalysisRun().figures(_prep(tmp_path), counting.analyzer, MACHINE)
    AnalysisRun().figures(_prep(tmp_path), counting.analyzer, MACHINE)
    assert counting.calls == 1
    source.write_text("LIMIT = 2  # an edit\n")
    AnalysisRun().figures(_prep(tmp_path), counting.analyzer, MACHINE)
    assert counting.calls == 2


@pytest.mark.parametrize("content", ["{not json", '{"format": 1, "proof": {"a": "x"}, "details": {}}',
                                     '{"format": 0, "proof": {}, "details": {}}'])
def test_a_broken_entry_is_recomputed_and_said(tmp_path, caplog, content):
    counting = Counting()
    prep = _prep(tmp_path)
    key = run.figures_key(prep, counting.analyzer, MACHINE)
    Cache(tmp_path / "cache").path(run.NAMESPACE, key, ".json").write_text(content)
    with caplog.at_level(logging.WARNING, logger="harness.analysis.run"):
        proof, _ = AnalysisRun().figures(prep, counting.analyzer, MACHINE)
    assert counting.calls == 1 and proof["drift.worst_excess"] == 0.125
    assert "unusable" in caplog.text
    entry = json.loads(Cache(tmp_path / "cache").path(run.NAMESPACE, key, ".json").read_text())
    assert entry["proof"] == proof  # rewritten


def _registered():
    analysis = AnalysisRun()
    interpretability_case.register(analysis)
    drift_case.register(analysis)
    return analysis.analyzers


def test_the_suites_settings_are_read_at_the_call(monkeypatch):
    analyzers = _registered()
    before = {suite: a.settings() for suite, a in analyzers.items()}
    json.dumps(before)  # JSON-able, as make_key needs
    monkeypatch.setattr(drift_case, "DETECTOR", dataclasses.replace(drift_case.DETECTOR, null_trials=7))
    monkeypatch.setattr(interpretability_case, "SETTINGS",
                        dataclasses.replace(interpretability_case.SETTINGS, seeds=(3,)))
    after = {suite: a.settings() for suite, a in analyzers.items()}
    assert all(after[s] != before[s] for s in before)


def test_each_suites_code_key_covers_the_modules_its_figures_come_from(monkeypatch):
    analyzers = _registered()
    needs = {"interpretability": (interpretability, interpretability_case, run),
             "drift": (drift, drift_case, detectors, shifts, interpretability, run)}
    for suite, modules in needs.items():
        before = analyzers[suite].code_key()
        for module in modules:
            real = run.source_hash
            with monkeypatch.context() as m:
                m.setattr(run, "source_hash", lambda obj, real=real, module=module:
                          "edited" if obj is module else real(obj))
                assert analyzers[suite].code_key() != before, f"{suite}: editing {module.__name__} keeps the key"
