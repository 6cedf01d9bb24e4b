"""The generic section: a table of every case of a technique (any technique without its own picture)."""

from __future__ import annotations

from collections.abc import Sequence

from harness.report.figures import fmt, metric
from harness.report.sections import Case, Section, register

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
    return Section(technique, technique.replace("_", " "), columns=COLUMNS, rows=[row(c) for c in cases])
