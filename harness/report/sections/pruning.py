"""Pruning: quality against measured sparsity across a model's pruning cases, and the FLOPs the pruned graph
should save beside the speedup actually measured."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from harness.report.figures import PALETTE, figure, fmt, metric
from harness.report.sections import Case, Section, register

COLUMNS = ("case", "measured on", "method", "sparsity", "channels removed", "FLOPs predict", "speedup", "quality",
           "verdict")


def _proof(case: Case, key: str) -> float | None:
    value = ((case.get("record") or {}).get("proof") or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def _method(case: Case) -> str:
    """The pruning method, and whether the pruned model was fine-tuned: each such family is one curve."""
    config = (case.get("record") or {}).get("config") or {}
    return str(config.get("method") or "") + (" + fine-tuning" if config.get("finetune_epochs") else "")


def _amount(case: Case) -> float | None:
    """How much was pruned: the share of channels removed for structured pruning, else the measured sparsity."""
    if _method(case).startswith("structured") and _proof(case, "channels_removed") is not None:
        return _proof(case, "channels_removed")
    return _proof(case, "sparsity")


def predicted_speedup(case: Case) -> float | None:
    """The speedup the pruned graph's arithmetic predicts: reference MACs / pruned MACs (``proof.macs_ratio``), or
    1 / ``proof.flops_ratio`` (pruned / reference FLOPs)."""
    macs = _proof(case, "macs_ratio")
    if macs is not None:
        return macs
    flops = _proof(case, "flops_ratio")
    return 1 / flops if flops else None


@register("pruning")
def render(technique: str, cases: Sequence[Case]) -> Section:
    section = Section(technique, "pruning", columns=COLUMNS,
                      note="sparsity, channels removed and MACs are measured on the pruned artifact; structured "
                           "pruning is plotted against the share of channels removed")
    quality, speed = [], []
    groups: dict[tuple[str, str, str], list[Case]] = {}
    for case in cases:
        groups.setdefault((case["model"], case["backend"], _method(case)), []).append(case)
        section.rows.append((case["case_id"], case.get("_source", ""), _method(case),
                             fmt(_proof(case, "sparsity"), ".2f"), fmt(_proof(case, "channels_removed"), ".2f"),
                             fmt(predicted_speedup(case), ".2f"), fmt(metric(case, "speedup"), ".2f"),
                             fmt(metric(case, "quality.value"), ".4f"), case.get("status", "")))
    for i, ((model, backend, method), group) in enumerate(sorted(groups.items())):
        group = sorted((c for c in group if _amount(c) is not None), key=lambda c: _amount(c))
        if not group:
            continue
        color = PALETTE[i % len(PALETTE)]
        label = f"{model} on {backend}" + (f" ({method})" if method else "")
        ids = [c["case_id"] for c in group]
        xs = [_amount(c) for c in group]
        quality.append(go.Scatter(x=xs, y=[metric(c, "quality.value") for c in group], mode="lines+markers",
                                  name=label, text=ids, line={"color": color},
                                  hovertemplate="%{text}<br>pruned %{x:.2f}: %{y:.4f}<extra></extra>"))
        speed.append(go.Scatter(x=xs, y=[metric(c, "speedup") for c in group], mode="lines+markers",
                                name=f"{label}: measured speedup", text=ids, line={"color": color},
                                hovertemplate="%{text}<br>measured %{y:.2f}x<extra></extra>"))
        predicted = [(_amount(c), predicted_speedup(c)) for c in group if predicted_speedup(c) is not None]
        if predicted:
            speed.append(go.Scatter(x=[p[0] for p in predicted], y=[p[1] for p in predicted], mode="lines+markers",
                                    name=f"{label}: FLOPs predict", line={"color": color, "dash": "dot"},
                                    hovertemplate="FLOPs predict %{y:.2f}x<extra></extra>"))
    if quality:
        section.figures.append(figure(quality, "quality against how much was pruned", xaxis_title="sparsity",
                                      yaxis_title="test quality"))
        section.figures.append(figure(speed, "speedup: measured vs what the FLOPs predict", xaxis_title="sparsity",
                                      yaxis_title="speedup over fp32 (x)"))
    return section
