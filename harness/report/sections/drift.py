"""Drift: quality against severity per shift (reference and variants), fragility and the detectors' power."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from harness.report.figures import PALETTE, figure, fmt, metric
from harness.report.sections import Case, Section, register

COLUMNS = ("case", "measured on", "clean loss", "worst shift", "excess loss", "KS fpr", "MMD fpr", "verdict")


@register("drift")
def render(technique: str, cases: Sequence[Case]) -> Section:
    section = Section(technique, "drift: quality under shifted inputs", columns=COLUMNS,
                      note="test accuracy per shift and severity (dashed: the fp32 reference); excess loss: the "
                           "worst loss beyond the reference at severity <= 3 (contract <= 0.02 where the clean loss "
                           "is < 0.01); fpr: the detectors' false-positive rate on clean windows")
    curves: dict[tuple[str, str], list[go.Scatter]] = {}
    for case in cases:
        a = ((case.get("record") or {}).get("details") or {}).get("analysis") or {}
        worst = a.get("worst") or {}
        section.rows.append((case["case_id"], case.get("_source", ""),
                             fmt(metric(case, "proof.drift.clean_loss"), ".3f"),
                             f"{worst.get('shift', '-')} s{worst.get('severity', '-')}",
                             fmt(metric(case, "proof.drift.worst_excess"), ".3f"),
                             fmt(metric(case, "proof.detector.ks.fpr"), ".2f"),
                             fmt(metric(case, "proof.detector.mmd.fpr"), ".2f"), case.get("status", "")))
        by_shift: dict[str, list[dict[str, float]]] = {}
        for p in a.get("points") or []:
            by_shift.setdefault(str(p["shift"]), []).append(p)
        clean = a.get("clean") or {}
        for shift, points in by_shift.items():
            points = sorted(points, key=lambda p: p["severity"])
            traces = curves.setdefault((case["model"], shift), [])
            if not traces:
                traces.append(go.Scatter(x=[0] + [p["severity"] for p in points],
                                         y=[clean.get("reference")] + [p["reference"] for p in points],
                                         mode="lines+markers", name="fp32 reference",
                                         line={"color": "#222", "dash": "dash"}))
            color = PALETTE[len(traces) % len(PALETTE)]
            traces.append(go.Scatter(x=[0] + [p["severity"] for p in points],
                                     y=[clean.get("variant")] + [p["variant"] for p in points],
                                     mode="lines+markers", name=case["config"], line={"color": color},
                                     hovertemplate="%{x}: %{y:.3f}<extra>" + case["case_id"] + "</extra>"))
    for (model, shift), traces in sorted(curves.items()):
        section.figures.append(figure(traces, f"{model}: accuracy against {shift} severity", height=320,
                                      xaxis_title="severity (0 = clean)", yaxis_title="test accuracy"))
    return section
