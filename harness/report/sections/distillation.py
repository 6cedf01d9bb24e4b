"""Knowledge distillation: the student trained with the teacher's soft targets, the same student trained from
scratch, and the teacher, side by side over seeds; then the training section's curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from harness.report.figures import PALETTE, figure
from harness.report.sections import Case, Section, register
from harness.report.sections import training as training_section


def _teacher(case: Case) -> float | None:
    """The teacher's quality: its own arm, a summary figure, or the model's fp32 reference case in the run."""
    training = (case.get("record") or {}).get("training") or {}
    arm = (training.get("arms") or {}).get("teacher")
    if arm and arm.get("mean") is not None:
        return float(arm["mean"])
    for source in (training.get("summary") or {}, (case.get("record") or {}).get("details") or {}):
        if isinstance(source.get("teacher_quality"), int | float):
            return float(source["teacher_quality"])
    return case.get("_ref_quality")


def comparison(cases: Sequence[Case]) -> dict[str, Any]:
    bars: dict[str, tuple[list[str], list[float | None], list[float | None]]] = {}
    for case in cases:
        arms = ((case.get("record") or {}).get("training") or {}).get("arms") or {}
        for label, arm in (("student (distilled)", "technique"), ("student from scratch", "control")):
            data = arms.get(arm) or {}
            xs, ys, err = bars.setdefault(label, ([], [], []))
            xs.append(case["case_id"])
            ys.append(data.get("mean"))
            err.append(data.get("std"))
        xs, ys, err = bars.setdefault("teacher", ([], [], []))
        xs.append(case["case_id"])
        ys.append(_teacher(case))
        err.append(None)
    traces = [go.Bar(x=xs, y=ys, name=label, error_y={"type": "data", "array": err, "visible": True},
                     marker_color=PALETTE[i % len(PALETTE)]) for i, (label, (xs, ys, err)) in enumerate(bars.items())]
    return figure(traces, "student vs scratch vs teacher (test quality, mean ± sd over seeds)", barmode="group",
                  yaxis_title="test quality")


@register("distillation")
def render(technique: str, cases: Sequence[Case]) -> Section:
    students = [c for c in cases if not c.get("is_reference")]
    section = training_section.render(technique, students)
    section.title = "knowledge distillation"
    if any((c.get("record") or {}).get("training") for c in students):
        section.figures.insert(0, comparison(students))
    return section
