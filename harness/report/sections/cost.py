"""Cost: dollars per million inferences per price, and quality against cost with its Pareto front."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from harness.report.figures import PALETTE, figure, fmt, metric
from harness.report.sections import Case, Section, register


def _analysis(case: Case) -> dict[str, Any]:
    return ((case.get("record") or {}).get("details") or {}).get("analysis") or {}


def _front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other is cheaper and at least as good as (lower x, higher y)."""
    return sorted((i for i, (x, y) in enumerate(points)
                   if not any(x2 <= x and y2 >= y and (x2 < x or y2 > y) for x2, y2 in points)),
                  key=lambda i: points[i][0])


@register("cost")
def render(technique: str, cases: Sequence[Case]) -> Section:
    prices = next((_analysis(c).get("prices") for c in cases if _analysis(c).get("prices")), []) or []
    names = [p["name"] for p in prices]
    section = Section(technique, "cost: dollars per million inferences", rows=[],
                      columns=("case", "measured on", "items/s", *(f"$/1M {n}" for n in names), "quality",
                               "throughput from", "verdict"),
                      note="price/hour x 1e6 / (3600 x throughput at the model's batch), the throughput measured "
                           "by the source case; prices: " + "; ".join(
                               f"{p['name']} ${p['usd_per_hour']:.4g}/h ({p['instance']}, {p['region']}, "
                               f"{p['source']}, {p['date']})" for p in prices))
    by_model: dict[str, list[Case]] = {}
    for case in cases:
        section.rows.append((case["case_id"], case.get("_source", ""),
                             fmt(metric(case, "proof.cost.items_per_s"), ",.0f"),
                             *(fmt(metric(case, f"proof.cost.usd_per_1m.{n}"), ".3g") for n in names),
                             fmt(metric(case, "quality.value"), ".4f"), str(_analysis(case).get("source", "")),
                             case.get("status", "")))
        if names and metric(case, f"proof.cost.usd_per_1m.{names[0]}") is not None:
            by_model.setdefault(case["model"], []).append(case)
    for i, (model, group) in enumerate(sorted(by_model.items())):
        key = f"proof.cost.usd_per_1m.{names[0]}"
        points = [(metric(c, key), metric(c, "quality.value")) for c in group]
        usable = [(c, p) for c, p in zip(group, points, strict=True) if p[1] is not None]
        if not usable:
            continue
        xy = [(float(p[0]), float(p[1])) for _, p in usable]  # type: ignore[arg-type]
        front = [usable[j][0] for j in _front(xy)]
        traces = [go.Scatter(x=[p[0] for p in xy], y=[p[1] for p in xy], mode="markers", name=model,
                             text=[c["case_id"] for c, _ in usable], marker={"color": PALETTE[i % len(PALETTE)]},
                             hovertemplate="%{text}<br>$%{x:.3g} per 1M, quality %{y:.4f}<extra></extra>"),
                  go.Scatter(x=[metric(c, key) for c in front], y=[metric(c, "quality.value") for c in front],
                             mode="lines+markers", name="Pareto front", line={"color": "#222", "dash": "dash",
                                                                              "shape": "hv"})]
        section.figures.append(figure(traces, f"{model}: quality against cost at {names[0]}",
                                      xaxis_title=f"$ per 1M inferences at {names[0]} (log)", xaxis_type="log",
                                      yaxis_title="test quality"))
    return section
