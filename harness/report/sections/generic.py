"""The generic section: a table of every case of a technique (any technique without its own picture), with a
column of the figures the technique declares where it declares any."""

from __future__ import annotations

from collections.abc import Sequence

from harness.report.figures import fmt, metric
from harness.report.sections import Case, Section, declaration, register
from harness.report.training_table import declared_figures

COLUMNS = ("case", "measured on", "p50 b1 (ms)", "speedup", "size (KiB)", "quality", "proof", "verdict")


def row(case: Case) -> tuple[str, ...]:
    proof = (case.get("record") or {}).get("proof") or {}
    p50 = metric(case, "latency.p50_s")
    size = metric(case, "size_bytes")
    return (case["case_id"], case.get("_source", ""), fmt(p50 * 1e3 if p50 is not None else None, ".3f"),
            "1 (ref)" if case.get("is_reference") else fmt(metric(case, "speedup"), ".2f"),
            fmt(size / 1024 if size is not None else None, ",.1f"), fmt(metric(case, "quality.value"), ".4f"),
            "; ".join(f"{k} {fmt(v)}" for k, v in sorted(proof.items())), case.get("status", ""))


@register("generic")
def render(technique: str, cases: Sequence[Case]) -> Section:
    if not any(declaration(c).get("figures") for c in cases):
        return Section(technique, technique.replace("_", " "), columns=COLUMNS, rows=[row(c) for c in cases])
    return Section(technique, technique.replace("_", " "), columns=(*COLUMNS[:-1], "figures", COLUMNS[-1]),
                   rows=[(*row(c)[:-1], "; ".join(declared_figures(c)), row(c)[-1]) for c in cases])
