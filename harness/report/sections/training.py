"""Training-time techniques (early stopping, clipping, augmentation, tuning...): technique against control with
the seed spread, learning curves with the epoch each run stopped, and gradient-norm traces where the technique
declares them (``report_plots = ("grad_norm",)``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from harness.report import training_table
from harness.report.figures import PALETTE, downsample, figure
from harness.report.sections import Case, Section, declared_plots, register, search


def _arms(case: Case) -> dict[str, Any]:
    return ((case.get("record") or {}).get("training") or {}).get("arms") or {}


def seed_spread(cases: Sequence[Case], title: str = "test quality per seed: technique vs control") -> dict[str, Any]:
    """One box of per-seed quality per arm and case, every seed shown as a point."""
    names = sorted({a for c in cases for a in _arms(c)}, key=lambda a: (a != "technique", a != "control", a))
    traces = []
    for i, arm in enumerate(names):
        xs, ys, text = [], [], []
        for case in cases:
            data = _arms(case).get(arm)
            if not data:
                continue
            for seed, q in zip(data.get("seeds", []), data.get("quality", []), strict=False):
                xs.append(case["case_id"])
                ys.append(q)
                text.append(f"{case['case_id']}<br>{arm}, seed {seed}")
        traces.append(go.Box(x=xs, y=ys, name=arm, boxpoints="all", jitter=0.3, pointpos=0, text=text,
                             hoverinfo="text+y", marker_color=PALETTE[i % len(PALETTE)]))
    return figure(traces, title, boxmode="group", yaxis_title="test quality")


def learning_curves(case: Case) -> dict[str, Any]:
    """Validation quality per epoch of every arm and seed; an ✕ marks the epoch each run stopped and why."""
    traces = []
    for i, (arm, data) in enumerate(sorted(_arms(case).items())):
        color = PALETTE[i % len(PALETTE)]
        for j, (seed, stats) in enumerate(zip(data.get("seeds", []), data.get("stats", []), strict=False)):
            curve = stats.get("val_quality") or []
            if not curve:
                continue
            epochs = list(range(1, len(curve) + 1))
            traces.append(go.Scatter(x=epochs, y=curve, mode="lines", line={"color": color, "width": 1.5},
                                     name=arm, legendgroup=arm, showlegend=j == 0,
                                     hovertemplate=f"{arm} seed {seed}<br>epoch %{{x}}: %{{y:.4f}}<extra></extra>"))
            reason = stats.get("stop_reason", "")
            traces.append(go.Scatter(x=[len(curve)], y=[curve[-1]], mode="markers", legendgroup=arm,
                                     showlegend=False, marker={"symbol": "x", "size": 10, "color": color},
                                     hovertemplate=f"{arm} seed {seed} stopped at epoch {len(curve)} "
                                                   f"({reason})<extra></extra>"))
    return figure(traces, f"{case['case_id']}: validation quality per epoch (✕ = stop)", height=320,
                  xaxis_title="epoch", yaxis_title="validation quality")


def grad_norms(case: Case) -> dict[str, Any] | None:
    """Total gradient norm per step (before clipping) of each arm's first seed, on a log scale."""
    traces = []
    for i, (arm, data) in enumerate(sorted(_arms(case).items())):
        stats = (data.get("stats") or [{}])[0]
        norms = stats.get("grad_norm") or []
        if not norms:
            continue
        steps, values = downsample(norms)
        traces.append(go.Scatter(x=steps, y=values, mode="lines", name=f"{arm} (seed {data.get('seeds', [0])[0]})",
                                 line={"color": PALETTE[i % len(PALETTE)], "width": 1}))
    if not traces:
        return None
    return figure(traces, f"{case['case_id']}: gradient norm per step", height=300, xaxis_title="step (sampled)",
                  yaxis_title="total grad norm", yaxis_type="log")


@register("training")
def render(technique: str, cases: Sequence[Case]) -> Section:
    trained = [c for c in cases if (c.get("record") or {}).get("training")]
    section = Section(technique, technique.replace("_", " "),
                      note="quality over seeds; effect = technique − control, paired over seeds, with its 95 % CI",
                      columns=training_table.COLUMNS, rows=training_table.rows({"cases": trained}))
    if not trained:
        return section
    section.figures.append(seed_spread(trained))
    studied = [c for c in cases if ((c.get("record") or {}).get("details") or {}).get("search")]
    searched = search.render(technique, studied)
    section.figures += searched.figures  # tuning: its Optuna study's history and front, where recorded
    section.note += searched.note
    plots = declared_plots(trained)
    for case in trained:
        section.figures.append(learning_curves(case))
        if "grad_norm" in plots:
            norms = grad_norms(case)
            if norms is not None:
                section.figures.append(norms)
    return section
