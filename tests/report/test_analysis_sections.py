"""The interpretability, drift and cost sections, on hand-made records of the schema those suites write, rendered
alone and through the whole page from a RunResult."""

from __future__ import annotations

import json
import re

import pytest

from harness.report import html
from harness.report.sections import cost, drift, interpretability, render_all
from harness.result import RunResult
from tests.report import records

XSS = "<script>alert(1)</script>"
RULES = ["IF worst radius <= 16.8 AND worst concave points <= 0.136 THEN benign (55% of the probe set)",
         "IF worst radius > 16.8 THEN malignant (35% of the probe set)"]
PRICES = [{"name": "gh_runner_2core", "usd_per_hour": 0.48, "instance": "GitHub runner", "region": "hosted",
           "source": "https://example.com/gh", "date": "2026-12-01"},
          {"name": "aws_c7i_large", "usd_per_hour": 0.08925, "instance": "c7i.large", "region": "us-east-1",
           "source": "https://example.com/aws", "date": "2026-12-01"}]


def _cases(*recs):
    return [records.case(r) | {"_source": "Test CPU"} for r in recs]


def _interp(model, config, cross, rules=RULES):
    proof = {"interp.fidelity": 0.969, "interp.leaves": 6.0, "interp.identical_seeds": 1.0,
             "interp.cross_fidelity": cross, "interp.own_fidelity": 0.95, "interp.rule_overlap": 0.5,
             "interp.agreement_drop": 0.01, "interp.accuracy_drop": 0.0, "interp.excess": 0.969 - cross}
    return records.record(model, "interpretability", config, "torch_eager", proof=proof,
                          details={"analysis": {"reference_rules": rules, "variant_rules": rules[:1]}})


def test_interpretability_prints_each_models_rules_once_and_draws_cross_fidelity_per_variant():
    cases = _cases(_interp("cancer_mlp", "int8", 0.96), _interp("cancer_mlp", "pruned", 0.90),
                   _interp("digits_cnn", "int8", 0.55, rules=["IF cell (1, 1) > 0.2 THEN 0 (40% of the probe set)"]))
    section = interpretability.render("interpretability", cases)
    assert section.lines[:3] == ["cancer_mlp: fidelity 0.969, 6 rules, same rules over 100% of the seeds",
                                 f"  {RULES[0]}", f"  {RULES[1]}"]
    assert sum(line.startswith("cancer_mlp:") for line in section.lines) == 1
    assert section.lines[3].startswith("digits_cnn: fidelity") and len(section.lines) == 5
    (bars,) = section.figures
    by_model = {t["name"]: (t["x"], t["y"]) for t in bars["data"]}
    assert by_model["cancer_mlp"] == (["int8", "pruned"], [0.96, 0.90])
    assert section.rows[1][:4] == ("cancer_mlp-pruned-torch_eager", "Test CPU", "0.969", "0.900")
    assert section.rows[1][-2:] == ("0.069", "pass")


def _drift(config, variant, worst_excess, detector=None):
    points = [{"shift": shift, "severity": s, "reference": 0.9 - 0.1 * s, "variant": variant(s),
               "disagreement": 0.1, "excess": 0.0, "excess_low": 0.0, "excess_high": 0.0}
              for shift in ("blur", "contrast") for s in (3, 1, 2)]  # out of order: the curve sorts them
    proof = {"drift.clean_loss": 0.0, "drift.worst_excess": worst_excess, "detector.ks.fpr": 0.05,
             "detector.mmd.fpr": 0.0}
    table = detector or {"ks": {"fpr": 0.04, "fpr_high": 0.058, "window": 200.0, "trials": 100.0,
                                "null_trials": 500.0, "blur.s1": 0.99, "blur.s3": 1.0, "contrast.s3": 0.9},
                         "mmd": {"fpr": 0.036, "fpr_high": 0.053, "window": 200.0, "trials": 100.0,
                                 "null_trials": 500.0, "blur.s3": 1.0, "contrast.s3": 0.35}}
    details = {"analysis": {"points": points, "clean": {"reference": 0.97, "variant": variant(0)},
                            "worst": {"shift": "contrast", "severity": 3}, "reference_detector": table}}
    return records.record("digits_cnn", "drift", config, "torch_eager", proof=proof, details=details)


def test_drift_draws_accuracy_against_severity_per_shift_with_the_reference_dashed():
    cases = _cases(_drift("int8", lambda s: 0.96 - 0.1 * s, 0.01), _drift("pruned", lambda s: 0.95 - 0.2 * s, 0.2))
    section = drift.render("drift", cases)
    titles = [f["layout"]["title"]["text"] for f in section.figures]
    assert titles == ["digits_cnn: accuracy against blur severity", "digits_cnn: accuracy against contrast severity"]
    reference, int8, pruned = section.figures[0]["data"]
    assert reference["name"] == "fp32 reference" and reference["line"]["dash"] == "dash"
    assert reference["x"] == [0, 1, 2, 3] and reference["y"] == pytest.approx([0.97, 0.8, 0.7, 0.6])
    assert (int8["name"], pruned["name"]) == ("int8", "pruned")
    assert pruned["y"] == pytest.approx([0.95, 0.75, 0.55, 0.35])
    assert section.rows[1] == ("digits_cnn-pruned-torch_eager", "Test CPU", "0.000", "contrast s3", "0.200",
                               "0.05", "0.00", "pass")


def test_drift_states_the_reference_detectors_false_positives_with_their_bound_once_per_model():
    section = drift.render("drift", _cases(_drift("int8", lambda s: 0.9, 0.0), _drift("pruned", lambda s: 0.9, 0.0)))
    assert section.lines == [
        "digits_cnn: the reference's drift detectors, windows of 200, 500 clean draws, 100 per shift",
        "  ks: false positives 0.040 (95 % upper bound 0.058); power at severity 3: blur 1.00, contrast 0.90",
        "  mmd: false positives 0.036 (95 % upper bound 0.053); power at severity 3: blur 1.00, contrast 0.35"]
    old = _drift("int8", lambda s: 0.9, 0.0, detector={"ks": {"fpr": 0.0, "window": 200.0, "trials": 20.0,
                                                               "blur.s3": 1.0}})
    assert drift.render("drift", _cases(old)).lines[1] == ("  ks: false positives 0.000 (95 % upper bound -); "
                                                          "power at severity 3: blur 1.00")


def _cost(config, items_per_s, quality):
    proof = {"cost.items_per_s": items_per_s}
    proof |= {f"cost.usd_per_1m.{p['name']}": p["usd_per_hour"] * 1e6 / (3600 * items_per_s) for p in PRICES}
    return records.record("cancer_mlp", "cost", config, "onnxruntime", quality=quality, proof=proof,
                          details={"analysis": {"source": "this run's quantization case", "prices": PRICES}})


def test_cost_has_a_column_per_price_and_a_pareto_front_of_quality_against_cost():
    cases = _cases(_cost("fast", 10000.0, 0.94), _cost("slow_worse", 2000.0, 0.93), _cost("slow_better", 1000.0, 0.96),
                   _cost("fast_worse", 10000.0, 0.92))  # as cheap as fast and worse: dominated too
    section = cost.render("cost", cases)
    assert section.columns[3:5] == ("$/1M gh_runner_2core", "$/1M aws_c7i_large")
    assert section.rows[0][2:5] == ("10,000", "0.0133", "0.00248")
    assert all(p["source"] in section.note and p["date"] in section.note for p in PRICES)
    (scatter,) = section.figures
    points, front = scatter["data"]
    assert len(points["x"]) == 4 and scatter["layout"]["xaxis"]["type"] == "log"
    assert front["name"] == "Pareto front"
    # slow_worse (dearer and worse than fast) and fast_worse are off it; figures keep 5 significant digits
    assert front["x"] == pytest.approx([0.48e6 / 3600 / 10000, 0.48e6 / 3600 / 1000], rel=1e-4)


def test_a_cost_case_without_throughput_is_a_row_and_no_point():
    priced, unpriced = _cost("fast", 10000.0, 0.94), _cost("training", 1.0, 0.9)
    unpriced["proof"] = {"cost.train.saved_run_s": 3.0}
    unpriced["metrics"] = {k: v for k, v in unpriced["metrics"].items() if not k.startswith("proof.cost.usd")}
    section = cost.render("cost", _cases(priced, unpriced))
    assert len(section.rows) == 2 and section.rows[1][3] == "-"
    assert len(section.figures[0]["data"][0]["x"]) == 1


def _run_with_analysis():
    hostile = [f"IF {XSS} <= 0.5 THEN benign (50% of the probe set)"]
    cases = [records.case(_interp("cancer_mlp", "int8", 0.96, rules=hostile)),
             records.case(_drift("int8", lambda s: 0.9, 0.0)), records.case(_cost("fast", 10000.0, 0.94))]
    return RunResult.from_dict(json.loads(json.dumps(records.run(cases))))


def test_the_page_shows_the_three_sections_with_rules_as_escaped_text():
    result = _run_with_analysis()
    assert [s.technique for s in render_all(result.cases)] == ["cost", "drift", "interpretability"]
    page = html.render([result])
    assert XSS not in page and "IF &lt;script&gt;alert(1)&lt;/script&gt; &lt;= 0.5 THEN benign" in page
    rules = re.findall(r'<pre class="rules">(.*?)</pre>', page, re.S)
    assert len(rules) == 2  # interpretability's rules and drift's detector figures
    assert "false positives 0.040 (95 % upper bound 0.058)" in rules[0] + rules[1]
    for title in ("interpretability: do the reference", "drift: quality under shifted inputs",
                  "cost: dollars per million inferences"):
        assert title in page


def test_drift_draws_an_embedding_models_cosine_curves_and_its_shifted_sentences():
    points = [{"shift": "typos", "severity": s, "reference": 1 - 0.15 * s, "variant": 0.99 - 0.15 * s,
               "disagreement": 0.01, "excess": 0.01, "excess_low": 0.0, "excess_high": 0.02} for s in (1, 2, 3)]
    quality = "cosine to the reference's embedding of the clean sentence"
    table = {"ks": {"fpr": 0.05, "fpr_high": 0.07, "window": 200.0, "trials": 100.0, "null_trials": 500.0,
                    "typos.s3": 1.0}}
    details = {"analysis": {"points": points, "clean": {"reference": 1.0, "variant": 0.995}, "quality": quality,
                            "worst": {"shift": "typos", "severity": 3}, "reference_detector": table,
                            "examples": {"typos.s1": "Teh cat.", "typos.s3": "Teh cta."}}}
    record = records.record("minilm", "drift", "int8", "torch_eager", proof={"drift.worst_excess": 0.01},
                            details=details)
    section = drift.render("drift", _cases(record))
    (fig,) = section.figures
    assert fig["layout"]["title"]["text"] == f"minilm: {quality} against typos severity"
    assert fig["layout"]["yaxis"]["title"]["text"] == quality
    assert fig["data"][0]["y"] == pytest.approx([1.0, 0.85, 0.7, 0.55])
    assert section.lines[-1] == "minilm: typos at severity 3: 'Teh cta.'"
