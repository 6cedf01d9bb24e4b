"""Small helpers the report's sections share: Plotly figures as compact JSON-able dicts, and case lookups."""

from __future__ import annotations

import functools
import html
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import plotly.io as pio

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac")


def _round(value: Any) -> Any:
    """Five significant digits: a report needs no more, and the file stays small."""
    if isinstance(value, float):
        if not math.isfinite(value) or value == 0:
            return None if not math.isfinite(value) else 0.0
        return round(value, max(0, 4 - math.floor(math.log10(abs(value)))))
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    return value


_OWN_MARKUP = re.compile(r"&lt;(br|/?extra)&gt;")


def _plotly_text(value: Any) -> Any:
    """Plotly reads every string as a little HTML (``<b>``, ``<a href>``, ``<br>``) and decodes entities, so names
    from the records (models, cases, machines) are escaped to show as written; only the ``<br>`` and ``<extra>``
    the report writes itself stay markup."""
    if isinstance(value, str):
        return _OWN_MARKUP.sub(r"<\1>", html.escape(value, quote=False))
    if isinstance(value, dict):
        return {k: _plotly_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plotly_text(v) for v in value]
    return value


def figure(traces: Iterable[Any], title: str = "", height: int = 380, **layout: Any) -> dict[str, Any]:
    """A Plotly figure as a plain dict for the page's JSON: traces validated by plotly.graph_objects, the layout
    a plain dict (the page applies one shared template, :func:`template`, instead of one copy per figure)."""
    lay: dict[str, Any] = {"title": {"text": title, "x": 0.01}, "height": height, "hovermode": "closest",
                           "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}
    for key, value in layout.items():  # plotly's magic underscores: xaxis_title="ms" → {"xaxis": {"title": "ms"}}
        head, _, rest = key.partition("_")
        if rest and head in ("xaxis", "yaxis"):
            lay.setdefault(head, {})[rest] = {"text": value} if rest == "title" else value
        else:
            lay[key] = value
    return _round(_plotly_text({"data": [t.to_plotly_json() for t in traces], "layout": lay}))


@functools.cache
def template() -> dict[str, Any]:
    """Plotly's ``plotly_white`` template, shared by every figure of the page."""
    return pio.templates["plotly_white"].to_plotly_json()


def downsample(values: Sequence[float | None], at_most: int = 120) -> tuple[list[int], list[float | None]]:
    """Every k-th point (and the last), so a long trace keeps its shape in a small page."""
    if len(values) <= at_most:
        return list(range(len(values))), list(values)
    step = math.ceil(len(values) / at_most)
    idx = list(range(0, len(values), step))
    if idx[-1] != len(values) - 1:
        idx.append(len(values) - 1)
    return idx, [values[i] for i in idx]


def metric(case: dict[str, Any], name: str) -> float | None:
    value = ((case.get("record") or {}).get("metrics") or {}).get(name)
    return float(value) if isinstance(value, int | float) else None


def fmt(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)
