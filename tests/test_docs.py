"""docs/results.md is generated from the committed baselines, generic over suites, and cannot drift from them."""

from __future__ import annotations

import json

from harness import docs


def _baseline(directory, suite, cases):
    (directory / f"{suite}.json").write_text(json.dumps({
        "schema_version": 1, "suite": suite, "taken_at": "2026-11-28T19:00:00Z",
        "environment": {"cpu": "Test CPU", "cpu_flags": ["avx2"], "logical_cores": 2, "threads": 1},
        "cases": cases}))


def test_every_suite_gets_a_table_with_its_technique_figures(tmp_path):
    _baseline(tmp_path, "quantization", {
        "m-fp32-ort": {"metrics": {"latency.p50_s": 0.002, "size_bytes": 4096, "quality.value": 0.97}},
        "m-int8-ort": {"metrics": {"latency.p50_s": 0.001, "speedup": 1.9, "size_bytes": 1024, "quality.value": 0.95,
                                   "proof.int8_nodes": 7}, "accepted_contract_failures": ["quality_retention"]}})
    _baseline(tmp_path, "a_new_suite", {"m-x-eager": {"metrics": {"speedup": 1.1, "training.effect.mean": 0.01,
                                                                  "training.effect.ci_low": -0.01,
                                                                  "training.effect.ci_high": 0.03,
                                                                  "training.epochs_saved": 0.5}}})
    page = docs.render(tmp_path)
    assert page.index("## a_new_suite") < page.index("## quantization")
    assert "| m-fp32-ort | 2.000 ms | 1 (ref) | 4.0 KiB | 0.9700 |  |  |  |" in page
    assert "| m-int8-ort | 1.000 ms | 1.90× | 1.0 KiB | 0.9500 |  | quality_retention | int8_nodes 7 |" in page
    assert "effect vs control +0.0100 [-0.0100, +0.0300]; epochs_saved 0.5 |" in page
    assert "Test CPU [avx2], 2 CPUs, 1 thread(s)" in page


def test_every_machine_class_gets_its_table_the_fullest_first(tmp_path):
    """A class holding only the cases other classes cannot run (bf16 where only its CPU has bf16 instructions) is
    shown beside the full class, not instead of it."""
    def cls(cpu, flags, taken_at, cases):
        return {"environment": {"cpu": cpu, "cpu_flags": flags, "logical_cores": 2, "threads": 1},
                "taken_at": taken_at, "cases": cases}
    full = cls("Old CPU", ["avx2"], "2026-11-28T19:00:00Z",
               {"m-fp32-ort": {"metrics": {"latency.p50_s": 0.002}}, "m-int8-ort": {"metrics": {"speedup": 1.9}}})
    partial = cls("New CPU", ["avx2", "avx512_bf16"], "2026-12-02T10:00:00Z",
                  {"m-bf16-eager": {"metrics": {"speedup": 2.3}}})
    (tmp_path / "quantization.json").write_text(json.dumps({
        "schema_version": 2, "suite": "quantization", "classes": {"new": partial, "old": full}}))
    page = docs.render(tmp_path)
    old, new = page.index("### Old CPU [avx2]"), page.index("### New CPU [avx2,avx512_bf16]")
    assert old < page.index("| m-int8-ort |") < new < page.index("| m-bf16-eager |  | 2.30× |")
    assert "Taken 2026-11-28T19:00:00Z: 2 case(s)." in page
    assert "Taken 2026-12-02T10:00:00Z: 1 case(s); this class's other cases are gated against another" in page


def test_a_foreign_baseline_is_named(tmp_path, capsys):
    (tmp_path / "bad.json").write_text(json.dumps({"schema_version": 7}))
    assert docs.main(["--baselines", str(tmp_path), "-o", str(tmp_path / "out.md")]) == 2
    assert f"{tmp_path / 'bad.json'}: unknown baseline schema_version 7" in capsys.readouterr().err


def test_check_fails_when_the_page_is_stale(tmp_path):
    _baseline(tmp_path, "s", {"m-a-b": {"metrics": {"speedup": 1.0}}})
    out = tmp_path / "results.md"
    assert docs.main(["--baselines", str(tmp_path), "-o", str(out), "--check"]) == 1
    assert docs.main(["--baselines", str(tmp_path), "-o", str(out)]) == 0
    assert docs.main(["--baselines", str(tmp_path), "-o", str(out), "--check"]) == 0


def test_the_committed_results_page_matches_the_committed_baselines():
    """If this fails, regenerate it: python -m harness.docs"""
    assert docs.main(["--check"]) == 0
