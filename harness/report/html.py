"""The HTML report: one self-contained page (Plotly's JavaScript inlined once, no network) rendered from run
records through Jinja2 templates with autoescaping. Several records (CI shards, machines) merge into one page,
every figure labelled with where it was measured."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import gzip
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from harness import env
from harness.cache import atomic_write
from harness.report.figures import PALETTE, figure, fmt, metric, template
from harness.report.sections import render_all
from harness.result import STATUSES, RunResult

logger = logging.getLogger(__name__)

MODEL_COLUMNS = ("case", "measured on", "p50 b1 (ms)", "speedup", "size vs fp32", "peak mem vs fp32", "quality",
                 "Δ quality", "verdict")


@functools.cache
def template_environment() -> jinja2.Environment:
    jenv = jinja2.Environment(loader=jinja2.PackageLoader("harness.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    jenv.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "sort_keys": False}
    return jenv


@functools.cache
def plotly_js_gzip_base64() -> str:
    """Plotly's JavaScript (4.8 MB), gzipped and base64-encoded (2 MB): the page inflates it once with the
    browser's DecompressionStream, which keeps a report of the full suites within 5 MB."""
    return base64.b64encode(gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=6, mtime=0)).decode("ascii")


def _label(result: RunResult, index: int, many: bool) -> str:
    """Where a record was measured, short enough for a legend: the machine, plus the record's name when several
    records came from the same machine."""
    return f"#{index + 1} {result.machine()}" if many else result.machine()


def merged_cases(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """Every case of every record, each tagged with where it was measured and the record's directory."""
    many = len(results) > 1
    out = []
    for i, result in enumerate(results):
        label = _label(result, i, many)
        base = str(Path(result.source).parent) if result.source else "."
        out.extend({**case, "_source": label, "_run": i, "_dir": base} for case in result.cases)
    return out


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower x = latency, higher y = quality)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _reference(case: dict[str, Any], cases: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    for other in cases:
        if (other.get("is_reference") and other.get("record") and other["model"] == case["model"]
                and other["backend"] == case["backend"] and other["_run"] == case["_run"]):
            return other
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def model_section(model: str, cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Quality against latency (Pareto front highlighted), speedup / size / memory against fp32, and a table."""
    measured = [c for c in cases if c.get("record") and metric(c, "latency.p50_s") is not None
                and metric(c, "quality.value") is not None]
    traces: list[Any] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for case in measured:
        groups.setdefault((case["backend"], case["_source"]), []).append(case)
    many = len({c["_source"] for c in measured}) > 1
    for i, ((backend, source), group) in enumerate(sorted(groups.items())):
        traces.append(go.Scatter(
            x=[metric(c, "latency.p50_s") * 1e3 for c in group], y=[metric(c, "quality.value") for c in group],
            mode="markers", name=f"{backend} ({source})" if many else backend,
            text=[f"{c['case_id']}<br>measured on {c['_source']}<br>{c['status']}" for c in group],
            hovertemplate="%{text}<br>p50 %{x:.3f} ms, quality %{y:.4f}<extra></extra>",
            marker={"size": 10, "color": PALETTE[i % len(PALETTE)],
                    "symbol": ["diamond" if c.get("is_reference") else "circle" for c in group]}))
    points = [(metric(c, "latency.p50_s") * 1e3, metric(c, "quality.value")) for c in measured]
    front = [measured[i] for i in pareto_front(points)]  # type: ignore[arg-type]
    if front:
        traces.append(go.Scatter(
            x=[metric(c, "latency.p50_s") * 1e3 for c in front], y=[metric(c, "quality.value") for c in front],
            mode="lines+markers", name="Pareto front", text=[c["case_id"] for c in front],
            hovertemplate="Pareto: %{text}<extra></extra>",
            line={"color": "#222", "dash": "dash", "shape": "hv"},
            marker={"size": 16, "color": "rgba(0,0,0,0)", "line": {"color": "#222", "width": 2}}))
    figures = []
    if measured:
        low, high = min(p[1] for p in points), max(p[1] for p in points)
        pad = max((high - low) * 0.08, 0.002)
        figures.append(figure(traces, f"{model}: quality against median latency at batch 1 (◆ = fp32 reference)",
                              xaxis_title="p50 latency, batch 1 (ms, log)", xaxis_type="log",
                              yaxis_title="test quality", yaxis_range=[low - pad, high + pad]))
    rows, names, speed, size, mem = [], [], [], [], []
    for case in cases:
        ref = _reference(case, cases)
        size_r = _ratio(metric(case, "size_bytes"), metric(ref, "size_bytes")) if ref else None
        mem_r = _ratio(metric(case, "memory.peak_rss_bytes"), metric(ref, "memory.peak_rss_bytes")) if ref else None
        q, q_ref = metric(case, "quality.value"), metric(ref, "quality.value") if ref else None
        p50 = metric(case, "latency.p50_s")
        rows.append((case["case_id"], case["_source"], fmt(p50 * 1e3 if p50 is not None else None, ".3f"),
                     "1 (ref)" if case.get("is_reference") else fmt(metric(case, "speedup"), ".2f"),
                     fmt(size_r, ".2f"), fmt(mem_r, ".2f"), fmt(q, ".4f"),
                     "" if case.get("is_reference") or q is None or q_ref is None else f"{q - q_ref:+.4f}",
                     case["status"]))
        if case.get("record") and not case.get("is_reference"):
            names.append(case["case_id"] + (f" ({case['_source']})" if many else ""))
            speed.append(metric(case, "speedup"))
            size.append(size_r)
            mem.append(mem_r)
    if names:
        bars = [go.Bar(y=names, x=values, name=label, orientation="h", marker_color=PALETTE[i],
                       hovertemplate="%{y}: %{x:.2f}x<extra>" + label + "</extra>")
                for i, (label, values) in enumerate((("speedup", speed), ("size / fp32", size),
                                                     ("peak memory / fp32", mem)))]
        figures.append(figure(bars, f"{model}: against the fp32 reference on the same backend (1 = same)",
                              height=max(260, 60 + 26 * len(names) * 1.4), barmode="group",
                              xaxis_title="ratio (x)", yaxis_automargin=True, legend={"orientation": "h"}))
    return {"name": model, "figures": figures, "columns": MODEL_COLUMNS, "rows": rows}


def _history_points(results: Sequence[RunResult], history: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Trend points: the history store's rows when given, else one point per case per run record."""
    if history:
        return history
    points = []
    for i, result in enumerate(sorted(results, key=lambda r: r.started)):
        for case in result.cases:
            points.append({"run": i, "started": result.started, "commit": result.commit, "machine": result.machine(),
                           "case_id": case["case_id"], "suite": case.get("suite"),
                           "latency_p50_s": metric(case, "latency.p50_s"),
                           "quality": metric(case, "quality.value"), "speedup": metric(case, "speedup")})
    return points


def history_figures(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per suite: each case's median latency and quality over recent runs; hover names the commit."""
    by_suite: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for p in points:
        by_suite.setdefault(str(p.get("suite") or "run"), {}).setdefault(p["case_id"], []).append(p)
    figures = []
    for suite, by_case in sorted(by_suite.items()):
        for column, title, scale in (("latency_p50_s", "p50 latency at batch 1 (ms)", 1e3),
                                     ("quality", "test quality", 1.0)):
            traces = []
            for i, (case_id, series) in enumerate(sorted(by_case.items())):
                series = [p for p in series if p.get(column) is not None]
                if not series:
                    continue
                traces.append(go.Scatter(
                    x=[p["started"] for p in series], y=[p[column] * scale for p in series], mode="lines+markers",
                    name=case_id, line={"color": PALETTE[i % len(PALETTE)]},
                    text=[f"{case_id}<br>commit {p.get('commit') or 'unknown'}<br>{p.get('machine') or ''}"
                          for p in series], hovertemplate="%{text}<br>%{x}: %{y:.4g}<extra></extra>"))
            if traces:
                figures.append(figure(traces, f"{suite}: {title} per run", height=340, xaxis_title="run started",
                                      yaxis_title=title))
    return figures


def render(results: Sequence[RunResult], history: list[dict[str, Any]] | None = None,
           generated: dt.datetime | None = None) -> str:
    """The whole page as one string."""
    results = list(results)
    cases = merged_cases(results)
    counts = {s: sum(r.counts()[s] for r in results) for s in STATUSES}
    failures = [{**f, "where": _label(r, i, len(results) > 1)}
                for i, r in enumerate(results) for f in r.failed_checks()]
    models = sorted({c["model"] for c in cases if c.get("record")})
    model_sections = [model_section(m, [c for c in cases if c["model"] == m]) for m in models]
    for case in cases:  # the fp32 case beside each: a distillation's teacher, a section's yardstick
        ref = _reference(case, cases)
        case["_ref_quality"] = metric(ref, "quality.value") if ref else None
    sections = render_all([c for c in cases if not c.get("is_reference")])
    points = _history_points(results, history)
    trend = history_figures(points) if len({p.get("run") for p in points}) > 1 else []
    figures: list[dict[str, Any]] = []

    def place(fig: dict[str, Any]) -> int:
        figures.append(fig)
        return len(figures) - 1

    page = template_environment().get_template("report.html.j2").render(
        generated=(generated or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        runs=[{"source": r.source or "(this run)", "machine": _label(r, i, len(results) > 1),
               "environment": env.describe(r.environment), "commit": r.commit or "unknown",
               "started": r.started, "duration": f"{r.duration_s:.0f} s", "counts": r.counts()}
              for i, r in enumerate(results)],
        counts=counts, total=sum(counts.values()), failures=failures, statuses=STATUSES,
        undecided=[v for r in results for c in r.cases for v in c.get("verdicts", [])
                   if v.get("status") == "inconclusive"],
        notes=[n for r in results for n in r.notes],
        fmt=fmt, models=model_sections, sections=sections, trend=trend, n_runs=len({p.get("run") for p in points}),
        place=place, plotly_js=plotly_js_gzip_base64(), figures=figures, template=template(),
    )
    return page


def write(results: Sequence[RunResult], path: Path, history: list[dict[str, Any]] | None = None) -> Path:
    """Render and write atomically; returns ``path``."""
    text = render(results, history)
    atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    logger.info("wrote report %s (%d bytes)", path, len(text.encode()))
    return Path(path)
