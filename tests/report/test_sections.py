"""Per-technique report sections, each on hand-made records of the schema its suite writes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.report import sections, training_table
from harness.report.sections import dataset_distillation, distillation, generic, pruning, search, training
from tests.report import records

REPORT = Path(sections.__file__).resolve().parents[1]


def _cases(technique):
    return [c | {"_source": "Test CPU", "_dir": ".", "_ref_quality": 0.97} for c in records.all_techniques()
            if (c.get("record") or {}).get("technique") == technique]


def _titles(section):
    return [f["layout"]["title"]["text"] for f in section.figures]


@pytest.mark.parametrize("technique", ["early_stopping", "gradient_clipping", "augmentation", "tuning"])
def test_training_techniques_show_seed_spread_and_learning_curves(technique):
    section = sections.renderer_for(technique, _cases(technique))(technique, _cases(technique))
    spread = section.figures[0]
    assert [t["name"] for t in spread["data"]] == ["technique", "control"]
    assert spread["data"][0]["y"] == [0.95, 0.96, 0.94] * 2  # every seed of both cases a point
    curves = [f for f in section.figures if "validation quality per epoch" in f["layout"]["title"]["text"]]
    assert len(curves) == 2
    stops = [t for t in curves[0]["data"] if t["mode"] == "markers"]
    assert len(stops) == 6  # one stop marker per arm and seed
    assert len(section.rows) == 2 and section.rows[0][0].startswith("digits_cnn")


def test_early_stopping_marks_the_stop_epoch_and_why():
    section = training.render("early_stopping", _cases("early_stopping"))
    curve = next(f for f in section.figures if "per epoch" in f["layout"]["title"]["text"])
    stop = next(t for t in curve["data"] if t["mode"] == "markers" and t["legendgroup"] == "technique")
    assert stop["x"] == [4]
    assert "stopped at epoch 4 (hook:early_stopping)" in stop["hovertemplate"]


def test_gradient_clipping_draws_downsampled_gradient_norm_traces():
    section = training.render("gradient_clipping", _cases("gradient_clipping"))
    norms = [f for f in section.figures if "gradient norm" in f["layout"]["title"]["text"]]
    assert len(norms) == 2
    trace = norms[0]["data"][0]
    assert 100 <= len(trace["y"]) <= 121 and trace["x"][-1] == 499  # 500 steps sampled, the last one kept
    assert norms[0]["layout"]["yaxis"]["type"] == "log"


def test_pruning_plots_quality_against_measured_sparsity_and_flops_beside_speedup():
    section = pruning.render("pruning", _cases("pruning"))
    quality, speed = section.figures
    trace = quality["data"][0]
    assert trace["x"] == [0.25, 0.5, 0.75]
    assert trace["y"] == pytest.approx([0.935, 0.91, 0.885])
    predicted = next(t for t in speed["data"] if "FLOPs" in t["name"])
    assert predicted["y"] == pytest.approx([1 / 0.75, 2.0, 4.0], rel=1e-3)
    assert section.rows[0][3:6] == ("0.25", "-", "1.33")


def test_structured_pruning_is_plotted_against_channels_removed_and_its_macs_ratio():
    cases = _cases("pruning")[:1]
    rec = cases[0]["record"]
    rec["config"] = {"method": "structured", "finetune_epochs": 2}
    rec["proof"] = {"sparsity": 0.0, "channels_removed": 0.5, "macs_ratio": 3.2}
    section = pruning.render("pruning", cases)
    assert section.figures[0]["data"][0]["x"] == [0.5]
    assert next(t for t in section.figures[1]["data"] if "FLOPs" in t["name"])["y"] == [3.2]
    assert "(structured + fine-tuning)" in section.figures[0]["data"][0]["name"]


def test_distillation_compares_student_scratch_and_teacher():
    section = distillation.render("distillation", _cases("distillation"))
    bars = {t["name"]: t["y"] for t in section.figures[0]["data"]}
    assert bars["student (distilled)"] == pytest.approx([0.95, 0.95])
    assert bars["student from scratch"] == pytest.approx([0.93, 0.93])
    assert bars["teacher"] == [0.96, 0.96]  # the summary's teacher_quality
    case = _cases("distillation")[0]
    case["record"]["training"]["summary"] = {}
    assert distillation._teacher(case) == 0.97  # else the fp32 case beside it


def test_dataset_distillation_embeds_the_image_grid_as_a_data_uri(tmp_path):
    """The image path is relative to the run record's directory (or, written from the repo root, its parent)."""
    records.write(tmp_path, records.run())
    cases = [c | {"_dir": str(tmp_path)} for c in _cases("dataset_distillation")]
    section = dataset_distillation.render("dataset_distillation", cases)
    assert len(section.images) == 2
    assert section.images[0]["src"].startswith("data:image/png;base64,iVBORw0KGgo")
    elsewhere = [c | {"_dir": str(tmp_path / "x" / "y")} for c in cases]
    missing = dataset_distillation.render("dataset_distillation", elsewhere)
    assert missing.images == [] and "images/distilled.png not found beside the run record" in missing.note


def test_search_draws_its_history_and_pareto_front():
    section = search.render("search", _cases("search"))
    history, front = section.figures[:2]
    best = next(t for t in history["data"] if t["name"] == "best so far")
    assert best["y"] == pytest.approx([0.9 + i / 100 for i in range(8)])
    pareto = next(t for t in front["data"] if t["name"] == "Pareto front")
    assert len(pareto["x"]) == 3
    assert front["layout"]["xaxis"]["title"]["text"] == "quality"
    assert "chose: lr = 0.008" in section.note


def test_a_technique_that_declares_no_section_gets_the_generic_table_or_the_training_one():
    chain = sections.render_all(_cases("chain"))
    assert [(s.technique, s.figures, len(s.rows)) for s in chain] == [("chain", [], 2)]
    for report in (None, records.declared("no_such_section")):  # a record written before declarations; a typo
        novel = [c | {"record": c["record"] | {"technique": "novel"}, "report": report}
                 for c in _cases("early_stopping")]
        (section,) = sections.render_all(novel)
        assert section.technique == "novel" and section.figures  # it has a training section: curves and spread
        assert section.rows[0][-1] == ""  # and no figures it did not declare


def test_the_section_is_the_one_declared_never_the_technique_name():
    as_generic = [c | {"report": records.declared()} for c in _cases("pruning")]
    (section,) = sections.render_all(as_generic)
    assert section.technique == "pruning" and section.columns == generic.COLUMNS and not section.figures
    renamed = [c | {"record": c["record"] | {"technique": "my_sparsifier"}} for c in _cases("pruning")]
    (section,) = sections.render_all(renamed)
    assert section.technique == "my_sparsifier" and section.columns == pruning.COLUMNS and len(section.figures) == 2


def test_the_training_table_shows_the_declared_figures_in_the_declared_order():
    case = _cases("early_stopping")[0]
    case["record"]["training"]["summary"] = {"epochs_saved": 0.33, "best_epoch": 4.0, "regime_exercised": 1.0}
    assert training_table.rows({"cases": [case]})[0][-1] == "epochs saved 33%; best epoch 4.0"
    case["report"] = records.declared("training", (("training.best_epoch", "best", "{:.0f}"),
                                                   ("training.regime_exercised", "regime", "{:.0%}")))
    assert training_table.rows({"cases": [case]})[0][-1] == "best 4; regime 100%"
    case["record"]["metrics"]["training.best_epoch"] = 7.0  # the record's metric first, then the summary
    assert training_table.rows({"cases": [case]})[0][-1] == "best 7; regime 100%"
    case["report"]["figures"][0]["format"] = "{:.0q}"  # a record edited by hand: shown, not a crash
    assert training_table.rows({"cases": [case]})[0][-1] == "best 7; regime 100%"


def test_gradient_norms_are_drawn_only_for_a_technique_that_declares_them():
    def norms(plots):
        cases = [c | {"report": records.declared("training", plots=plots)} for c in _cases("gradient_clipping")]
        return [f for f in training.render("x", cases).figures if "gradient norm" in f["layout"]["title"]["text"]]

    assert len(norms(("grad_norm",))) == 2 and norms(()) == []


def test_the_generic_table_adds_a_column_of_declared_figures_only_where_declared():
    plain = generic.render("chain", _cases("chain"))
    assert plain.columns == generic.COLUMNS
    declaring = [c | {"report": records.declared(figures=(("speedup", "speedup", "{:.1f}x"),))}
                 for c in _cases("chain")]
    section = generic.render("chain", declaring)
    assert section.columns[-2:] == ("figures", "verdict") and section.rows[0][-2] == "speedup 2.5x"


def test_no_report_module_compares_a_technique_name():
    """The report draws what techniques declare: an ``if technique == ...`` (or ``in (...)``) is refused."""
    offenders = []
    for path in sorted(REPORT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                names = [n for n in (node.left, *node.comparators) if isinstance(n, ast.Name | ast.Attribute)]
                if any(getattr(n, "id", getattr(n, "attr", "")) == "technique" for n in names):
                    offenders.append(f"{path.relative_to(REPORT)}:{node.lineno}")
    assert offenders == []


def test_a_second_renderer_for_a_section_is_refused():
    with pytest.raises(ValueError, match="'pruning' is already registered"):
        sections.register("pruning")(pruning.render)


def test_tuning_shows_its_study_beside_the_seed_spread():
    cases = _cases("tuning")
    cases[0]["record"]["details"] = {"search": records.search_details()}
    titles = _titles(training.render("tuning", cases))
    assert titles[0] == "test quality per seed: technique vs control"
    assert "digits_cnn-tuned-torch_eager: optimisation history" in titles


def test_a_tuning_record_draws_each_samplers_best_so_far():
    """The tuning suite's details: a TPE history with pruned trials (value None) and one study per sampler/seed."""
    history = [{"trial": 0, "value": 0.9, "state": "complete", "params": {"lr": 0.01}},
               {"trial": 1, "value": None, "state": "pruned", "params": {"lr": 0.1}},
               {"trial": 2, "value": 0.95, "state": "complete", "params": {"lr": 0.003}}]
    details = {"search": {"history": history, "best_params": [{"lr": 0.003}],
                          "studies": {"tpe": [{"history": history}], "random": [{"history": history[:1]}]}}}
    cases = _cases("tuning")[:1]
    cases[0]["record"]["details"] = details
    section = training.render("tuning", cases)
    by_title = {f["layout"]["title"]["text"]: f for f in section.figures}
    trials = by_title["digits_cnn-tuned-torch_eager: optimisation history"]["data"][0]
    assert trials["x"] == [0, 2]  # the pruned trial has no value to draw
    best = by_title["digits_cnn-tuned-torch_eager: best so far, per sampler and seed"]["data"]
    assert [(t["name"], t["y"]) for t in best] == [("random", [0.9]), ("tpe", [0.9, 0.95])]
    assert "best of study 1: lr = 0.003" in section.note
