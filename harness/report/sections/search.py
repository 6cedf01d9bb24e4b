"""Search (Optuna): the optimisation history with the best value so far, and the trials' Pareto front."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from harness.report.figures import PALETTE, figure
from harness.report.sections import Case, Section, generic, register


def _values(trial: dict[str, Any]) -> list[float]:
    if isinstance(trial.get("values"), list):
        return [float(v) for v in trial["values"] if isinstance(v, int | float)]
    if isinstance(trial.get("value"), int | float):
        return [float(trial["value"])]
    return []


def _number(trial: dict[str, Any], default: int) -> int:
    for key in ("number", "trial"):
        if isinstance(trial.get(key), int):
            return int(trial[key])
    return default


def _hover(trial: dict[str, Any]) -> str:
    params = trial.get("params") or {}
    return "<br>".join(f"{k} = {v}" for k, v in sorted(params.items()))


def history(case: Case, trials: list[dict[str, Any]], direction: str) -> dict[str, Any]:
    points = [(_number(t, i), _values(t)[0], _hover(t)) for i, t in enumerate(trials) if _values(t)]
    best, running = [], None
    for _, v, _ in points:
        running = v if running is None else (max(running, v) if direction == "maximize" else min(running, v))
        best.append(running)
    traces = [go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="markers", name="trial",
                         text=[p[2] for p in points], marker={"color": PALETTE[0]}),
              go.Scatter(x=[p[0] for p in points], y=best, mode="lines", name="best so far",
                         line={"color": PALETTE[1], "shape": "hv"})]
    return figure(traces, f"{case['case_id']}: optimisation history", height=320, xaxis_title="trial",
                  yaxis_title="objective")


def _best_so_far(values: list[float], direction: str) -> list[float]:
    out: list[float] = []
    for v in values:
        out.append(v if not out else (max(out[-1], v) if direction == "maximize" else min(out[-1], v)))
    return out


def studies(case: Case, by_sampler: dict[str, Any], direction: str) -> dict[str, Any]:
    """Best value so far per trial of every sampler's study and seed (e.g. TPE against random search)."""
    traces = []
    for i, (sampler, runs) in enumerate(sorted(by_sampler.items())):
        for j, run in enumerate(r for r in runs if isinstance(r, dict)):
            done = [t for t in run.get("history") or [] if isinstance(t, dict) and _values(t)]
            if not done:
                continue
            traces.append(go.Scatter(x=[_number(t, k) for k, t in enumerate(done)],
                                     y=_best_so_far([_values(t)[0] for t in done], direction), mode="lines",
                                     name=sampler, legendgroup=sampler, showlegend=j == 0,
                                     line={"color": PALETTE[i % len(PALETTE)], "shape": "hv"},
                                     hovertemplate=f"{sampler} study {j + 1}<br>trial %{{x}}: best %{{y:.4f}}"
                                                   "<extra></extra>"))
    return figure(traces, f"{case['case_id']}: best so far, per sampler and seed", height=320,
                  xaxis_title="trial", yaxis_title="objective")


def pareto(case: Case, trials: list[dict[str, Any]], front: list[dict[str, Any]], names: list[str]) -> dict:
    two = [t for t in trials if len(_values(t)) >= 2]
    best = [t for t in front if len(_values(t)) >= 2]
    traces = [go.Scatter(x=[_values(t)[0] for t in two], y=[_values(t)[1] for t in two], mode="markers",
                         name="trials", text=[_hover(t) for t in two], marker={"color": PALETTE[7], "opacity": 0.6}),
              go.Scatter(x=[_values(t)[0] for t in best], y=[_values(t)[1] for t in best], mode="markers+lines",
                         name="Pareto front", text=[_hover(t) for t in best],
                         marker={"color": PALETTE[3], "size": 10})]
    return figure(traces, f"{case['case_id']}: trials and their Pareto front", height=340,
                  xaxis_title=names[0] if names else "objective 1", yaxis_title=names[1] if len(names) > 1 else
                  "objective 2")


@register("search")
def render(technique: str, cases: Sequence[Case]) -> Section:
    section = generic.render(technique, cases)
    section.title = "search"
    for case in cases:
        search = ((case.get("record") or {}).get("details") or {}).get("search") or {}
        trials = [t for t in search.get("history") or [] if isinstance(t, dict)]
        if not trials:
            continue
        direction = str(search.get("direction", "maximize"))
        section.figures.append(history(case, trials, direction))
        if isinstance(search.get("studies"), dict) and search["studies"]:
            section.figures.append(studies(case, search["studies"], direction))
        front = [t for t in search.get("pareto") or [] if isinstance(t, dict)]
        if any(len(_values(t)) >= 2 for t in trials):
            section.figures.append(pareto(case, trials, front, list(search.get("objectives") or [])))
        chosen = search.get("chosen")
        if chosen:
            section.note += f" {case['case_id']} chose: {_hover(chosen).replace('<br>', ', ')}."
        for i, params in enumerate(p for p in search.get("best_params") or [] if isinstance(p, dict)):
            listed = ", ".join(f"{k} = {v}" for k, v in sorted(params.items()))
            section.note += f" {case['case_id']} best of study {i + 1}: {listed}."
    return section
