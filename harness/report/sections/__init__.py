"""Per-technique sections of the HTML report: one small renderer per technique, keyed by the record's
``technique`` field. A technique without its own renderer gets the training renderer when its records carry a
``training`` section, else the generic table — so a new suite shows up the day it lands."""

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


def register(*techniques: str) -> Callable[[Renderer], Renderer]:
    """Register a renderer for the named techniques; a second one for a name is refused."""

    def wrap(fn: Renderer) -> Renderer:
        for name in techniques:
            if name in RENDERERS:
                raise ValueError(f"a report section for technique {name!r} is already registered")
            RENDERERS[name] = fn
        return fn

    return wrap


def technique_of(case: Case) -> str:
    return str((case.get("record") or {}).get("technique") or case.get("suite") or "unknown")


def renderer_for(technique: str, cases: Sequence[Case]) -> Renderer:
    if technique in RENDERERS:
        return RENDERERS[technique]
    if any((c.get("record") or {}).get("training") for c in cases):
        return RENDERERS["training"]
    return RENDERERS["generic"]


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

__all__ = ["RENDERERS", "Section", "cost", "dataset_distillation", "distillation", "drift", "generic",
           "interpretability", "pruning", "register", "render_all", "search", "training"]
