"""Drift: quality against severity per shift (reference and variants), fragility and the detectors' power."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from harness.report.figures import PALETTE, figure, fmt, metric
from harness.report.sections import Case, Section, register

COLUMNS = ("case", "measured on", "clean loss", "worst shift", "excess loss", "KS fpr", "MMD fpr", "verdict")


def _detector_lines(model: str, table: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The reference's detectors on one model: false-positive rate with its 95 % upper bound, and power per
    shift at the highest severity measured."""
    first = next(iter(table.values()), {})
    severities = [int(m.group(1)) for k in first if (m := re.search(r"\.s(\d+)$", k))]
    if not severities:
        return []
    top = max(severities)
    lines = [f"{model}: the reference's drift detectors, windows of {fmt(first.get('window'), '.0f')}, "
             f"{fmt(first.get('null_trials'), '.0f')} clean draws, {fmt(first.get('trials'), '.0f')} per shift"]
    for name, figures in sorted(table.items()):
        power = ", ".join(f"{k.removesuffix(f'.s{top}')} {fmt(v, '.2f')}" for k, v in sorted(figures.items())
                          if k.endswith(f".s{top}"))
        lines.append(f"  {name}: false positives {fmt(figures.get('fpr'), '.3f')} (95 % upper bound "
                     f"{fmt(figures.get('fpr_high'), '.3f')}); power at severity {top}: {power}")
    return lines


def _example_lines(model: str, examples: Mapping[str, Any]) -> list[str]:
    """A shifted sentence per text shift at the highest severity (what the shifts do, read at a glance)."""
    top = [(k, v) for k, v in sorted(examples.items()) if k.endswith(".s3")]
    return [f"{model}: {k.removesuffix('.s3')} at severity 3: {v!r}" for k, v in top]


@register("drift")
def render(technique: str, cases: Sequence[Case]) -> Section:
    section = Section(technique, "drift: quality under shifted inputs", columns=COLUMNS,
                      note="quality per shift and severity (dashed: the fp32 reference): test accuracy, or for an "
                           "embedding model the mean cosine to the reference's embedding of the clean sentence; "
                           "excess loss: the worst loss beyond the reference at severity <= 3 (contract <= 0.02 "
                           "where the clean loss is < 0.01); fpr: the variant's detectors' false-positive rate on "
                           "clean windows (20 draws; the reference's, over more draws, in the text below)")
    curves: dict[tuple[str, str], list[go.Scatter]] = {}
    quality: dict[str, str] = {}
    seen: set[str] = set()
    for case in cases:
        a = ((case.get("record") or {}).get("details") or {}).get("analysis") or {}
        if a.get("quality"):  # an embedding model names its quality; a classifier's is test accuracy
            quality.setdefault(case["model"], str(a["quality"]))
        if case["model"] not in seen and a.get("reference_detector"):
            seen.add(case["model"])
            section.lines += _detector_lines(case["model"], a["reference_detector"])
            section.lines += _example_lines(case["model"], a.get("examples") or {})
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
        title, axis = (quality[model],) * 2 if model in quality else ("accuracy", "test accuracy")
        section.figures.append(figure(traces, f"{model}: {title} against {shift} severity", height=320,
                                      xaxis_title="severity (0 = clean)", yaxis_title=axis))
    return section
