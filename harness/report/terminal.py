"""The end-of-run table, rendered from the run JSON (no torch), one row per case."""

from __future__ import annotations

from typing import Any

COLUMNS = ("case", "p50 b1", "speedup", "thrpt/s", "Δ mem", "size", "quality", "Δ quality", "verdict")


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.3f} ms" if seconds < 0.01 else f"{seconds * 1e3:.1f} ms"


def _bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def rows(run: dict[str, Any]) -> list[tuple[str, ...]]:
    """One tuple of cells per case, in run order; quality change is against the same backend's fp32 case."""
    quality_by_id: dict[str, float] = {}
    for case in run["cases"]:
        rec = case.get("record")
        if rec is not None:
            quality_by_id[case["case_id"]] = rec["quality"]["value"]
    out = []
    for case in run["cases"]:
        rec = case.get("record")
        verdict = case["status"]
        if rec is None:
            out.append((case["case_id"], "-", "-", "-", "-", "-", "-", "-", verdict))
            continue
        m = rec["metrics"]
        ref_id = f"{case['model']}-fp32-{case['backend']}"
        ref_q = quality_by_id.get(ref_id)
        q = rec["quality"]
        delta = "" if case["is_reference"] or ref_q is None else f"{q['value'] - ref_q:+.4f}"
        speed = "1 (ref)" if case["is_reference"] else _num(m.get("speedup"), ".2f") + ("x" if m.get("speedup") else "")
        out.append(
            (
                case["case_id"],
                _ms(m.get("latency.p50_s")),
                speed,
                _num(m.get("throughput.items_per_s"), ",.0f"),
                _bytes(m.get("memory.delta_rss_bytes")),
                _bytes(m.get("size_bytes")),
                f"{q['metric'][:8]} {q['value']:.4f}",
                delta,
                verdict,
            )
        )
    return out


def skipped_summary(run: dict[str, Any]) -> list[str]:
    """Skipped cases, one line per distinct reason (a missing GPU skips a whole column of the matrix)."""
    counts: dict[str, int] = {}
    for case in run["cases"]:
        if case["status"] == "skipped":
            counts[case["message"]] = counts.get(case["message"], 0) + 1
    return [f"skipped {n} case{'s' if n > 1 else ''}: {reason}" for reason, n in counts.items()]


def render(run: dict[str, Any]) -> list[str]:
    """The table of measured cases, then one line per reason cases were skipped."""
    shown = {"cases": [c for c in run["cases"] if c["status"] != "skipped"]}
    table = [COLUMNS, *rows(shown)]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = []
    for idx, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
        if idx == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines + skipped_summary(run)
