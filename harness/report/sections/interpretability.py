"""Interpretability: the reference's rules as text, per model, and each variant's cross-fidelity to them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from harness.report.figures import PALETTE, figure, fmt, metric
from harness.report.sections import Case, Section, register

COLUMNS = ("case", "measured on", "fidelity (ref rules)", "cross-fidelity", "own fidelity", "rule overlap",
           "agreement drop", "accuracy drop", "excess", "verdict")


def _analysis(case: Case) -> dict[str, Any]:
    return ((case.get("record") or {}).get("details") or {}).get("analysis") or {}


@register("interpretability")
def render(technique: str, cases: Sequence[Case]) -> Section:
    section = Section(technique, "interpretability: do the reference's rules survive?", columns=COLUMNS,
                      note="a depth-3 tree fitted to the reference's predictions (rules below, thresholds in the "
                           "model's input units); cross-fidelity: how often the variant agrees with those rules on "
                           "held-out rows; excess: the fall of cross-fidelity beyond the accuracy drop (contract <= "
                           "0.01, docs/analysis.md)")
    seen: set[str] = set()
    bars: dict[str, tuple[list[str], list[float | None]]] = {}
    for case in cases:
        a = _analysis(case)
        if case["model"] not in seen and a.get("reference_rules"):
            seen.add(case["model"])
            section.lines.append(f"{case['model']}: fidelity {fmt(metric(case, 'proof.interp.fidelity'), '.3f')}, "
                                 f"{fmt(metric(case, 'proof.interp.leaves'), '.0f')} rules, same rules over "
                                 f"{fmt(metric(case, 'proof.interp.identical_seeds'), '.0%')} of the seeds")
            section.lines += [f"  {rule}" for rule in a["reference_rules"]]
        section.rows.append((case["case_id"], case.get("_source", ""),
                             *(fmt(metric(case, f"proof.interp.{k}"), ".3f") for k in
                               ("fidelity", "cross_fidelity", "own_fidelity", "rule_overlap", "agreement_drop",
                                "accuracy_drop", "excess")), case.get("status", "")))
        names, values = bars.setdefault(case["model"], ([], []))
        names.append(case["config"])
        values.append(metric(case, "proof.interp.cross_fidelity"))
    traces = [go.Bar(x=names, y=values, name=model, marker_color=PALETTE[i % len(PALETTE)],
                     hovertemplate="%{x}: %{y:.3f}<extra>" + model + "</extra>")
              for i, (model, (names, values)) in enumerate(sorted(bars.items()))]
    if traces:
        section.figures.append(figure(traces, "cross-fidelity per variant (agreement with the reference's rules)",
                                      barmode="group", yaxis_title="cross-fidelity", yaxis_range=[0, 1]))
    return section
