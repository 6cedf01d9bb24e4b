"""Pruning: quality against measured sparsity across a model's pruning cases, and the FLOPs the pruned graph
should save beside the speedup actually measured."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from harness.report.figures import PALETTE, figure, fmt, metric
from harness.report.sections import Case, Section, register

COLUMNS = ("case", "measured on", "sparsity", "FLOPs ratio", "speedup", "quality", "verdict")


def _proof(case: Case, key: str) -> float | None:
    value = ((case.get("record") or {}).get("proof") or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


@register("pruning")
def render(technique: str, cases: Sequence[Case]) -> Section:
    section = Section(technique, "pruning", note="sparsity and FLOPs are measured on the pruned artifact",
                      columns=COLUMNS)
    quality, speed = [], []
    groups: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        groups.setdefault((case["model"], case["backend"]), []).append(case)
        section.rows.append((case["case_id"], case.get("_source", ""), fmt(_proof(case, "sparsity"), ".2f"),
                             fmt(_proof(case, "flops_ratio"), ".3f"), fmt(metric(case, "speedup"), ".2f"),
                             fmt(metric(case, "quality.value"), ".4f"), case.get("status", "")))
    for i, ((model, backend), group) in enumerate(sorted(groups.items())):
        group = sorted((c for c in group if _proof(c, "sparsity") is not None), key=lambda c: _proof(c, "sparsity"))
        if not group:
            continue
        color, label = PALETTE[i % len(PALETTE)], f"{model} on {backend}"
        ids = [c["case_id"] for c in group]
        quality.append(go.Scatter(x=[_proof(c, "sparsity") for c in group],
                                  y=[metric(c, "quality.value") for c in group], mode="lines+markers", name=label,
                                  text=ids, hovertemplate="%{text}<br>sparsity %{x:.2f}: %{y:.4f}<extra></extra>",
                                  line={"color": color}))
        flops = [(c, _proof(c, "flops_ratio")) for c in group]
        speed.append(go.Scatter(x=[_proof(c, "sparsity") for c in group], y=[metric(c, "speedup") for c in group],
                                mode="lines+markers", name=f"{label}: measured speedup", text=ids,
                                hovertemplate="%{text}<br>measured %{y:.2f}x<extra></extra>", line={"color": color}))
        speed.append(go.Scatter(x=[_proof(c, "sparsity") for c, f in flops if f],
                                y=[1 / f for _, f in flops if f], mode="lines+markers",
                                name=f"{label}: 1 / FLOPs ratio", line={"color": color, "dash": "dot"},
                                hovertemplate="FLOPs predict %{y:.2f}x<extra></extra>"))
    if quality:
        section.figures.append(figure(quality, "quality against measured sparsity", xaxis_title="sparsity",
                                      yaxis_title="test quality"))
        section.figures.append(figure(speed, "speedup: measured vs what the FLOPs predict", xaxis_title="sparsity",
                                      yaxis_title="speedup over fp32 (x)"))
    return section
