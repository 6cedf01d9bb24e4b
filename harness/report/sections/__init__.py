"""Per-technique sections of the HTML report: one section per technique, drawn by the section its config
declares (``report_section``: the run record's case ``report``, with the figures and pictures it declares). The
report reads no technique name: a case that declares nothing (or a section this report does not have) gets the
training section when its record carries ``training``, else the generic table — so a new suite shows up the day
it lands."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

Case = dict[str, Any]  # a run record's case dict, plus "_source" (where it was measured)


@dataclasses.dataclass
class Section:
    """What the template draws for one technique: a title, a note, figures and one table."""

    technique: str
    title: str
    note: str = ""
    figures: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    columns: tuple[str, ...] = ()
    rows: list[tuple[str, ...]] = dataclasses.field(default_factory=list)
    images: list[dict[str, str]] = dataclasses.field(default_factory=list)  # {"src": data URI, "caption": ...}
    lines: list[str] = dataclasses.field(default_factory=list)  # preformatted text (extracted rules)


Renderer = Callable[[str, Sequence[Case]], Section]
RENDERERS: dict[str, Renderer] = {}


def register(name: str) -> Callable[[Renderer], Renderer]:
    """Register the renderer of the section ``name`` (what a config's ``report_section`` names); a second one
    for a name is refused."""

    def wrap(fn: Renderer) -> Renderer:
        if name in RENDERERS:
            raise ValueError(f"a report section {name!r} is already registered")
        RENDERERS[name] = fn
        return fn

    return wrap


def technique_of(case: Case) -> str:
    return str((case.get("record") or {}).get("technique") or case.get("suite") or "unknown")


def declaration(case: Case) -> dict[str, Any]:
    """What the case's technique declared for the report (``{}`` for a record written without one)."""
    report = case.get("report")
    return report if isinstance(report, dict) else {}


def declared_plots(cases: Sequence[Case]) -> set[str]:
    """The optional pictures the cases' techniques declared (``report_plots``)."""
    return {str(p) for c in cases for p in declaration(c).get("plots") or ()}


def section_name(cases: Sequence[Case]) -> str:
    """The section the cases' technique declared, where this report has it; else training or generic."""
    for case in cases:
        name = declaration(case).get("section")
        if isinstance(name, str) and name in RENDERERS:
            return name
    return "training" if any((c.get("record") or {}).get("training") for c in cases) else "generic"


def renderer_for(technique: str, cases: Sequence[Case]) -> Renderer:
    return RENDERERS[section_name(cases)]


def render_all(cases: Sequence[Case]) -> list[Section]:
    """One section per technique present among the measured cases (references fold into the generic table)."""
    by_technique: dict[str, list[Case]] = {}
    for case in cases:
        if case.get("record") is not None:
            by_technique.setdefault(technique_of(case), []).append(case)
    return [renderer_for(t, cs)(t, cs) for t, cs in sorted(by_technique.items())]


from harness.report.sections import (  # noqa: E402 - registration needs RENDERERS defined first
    cost,
    dataset_distillation,
    distillation,
    drift,
    generic,
    interpretability,
    pruning,
    search,
    training,
)

__all__ = ["RENDERERS", "Section", "cost", "dataset_distillation", "declaration", "declared_plots", "distillation",
           "drift", "generic", "interpretability", "pruning", "register", "render_all", "search", "section_name",
           "training"]
