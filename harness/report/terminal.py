"""The end-of-run table, rendered from the run JSON (no torch), one row per case."""

from __future__ import annotations

from typing import Any

from harness import env
from harness.gate import BASELINE_CHECKS, QualityBasis
from harness.report import training_table, units
from harness.result import RunResult

# p50 b1: median latency at batch 1; speedup: vs the fp32 reference on the same backend, timed interleaved;
# peak mem: the process's peak RSS while preparing and running the case (GPU: peak allocated device memory);
# Δ mem: how much the case added to the RSS; Δ quality: against the same backend's fp32 case. A speedup marked ~ is
# within noise: the middle half of its paired per-round ratios holds 1.
# thr: the speedup's gate threshold for this case (calibrated; "!" = too noisy to catch a 20 % change).
COLUMNS = ("case", "p50 b1", "speedup", "thr", "thrpt/s", "peak mem", "Δ mem", "size", "quality", "Δ quality",
           "verdict")
SHORT_METRIC = {"accuracy": "acc", "cosine_to_reference": "cos"}  # cos: mean cosine to the fp32 embeddings


_ms, _bytes = units.milliseconds, units.byte_size


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _speedup(m: dict[str, Any]) -> str:
    """``1.52x``; ``~1.02x`` when the middle half of the paired per-round ratios holds 1 (within noise)."""
    value, p25, p75 = m.get("speedup"), m.get("speedup.p25"), m.get("speedup.p75")
    if value is None:
        return "-"
    noise = "~" if p25 is not None and p75 is not None and p25 <= 1.0 <= p75 else ""
    return f"{noise}{value:.2f}x"


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
            out.append((case["case_id"], *("-",) * (len(COLUMNS) - 2), verdict))
            continue
        m = rec["metrics"]
        ref_id = f"{case['model']}-fp32-{case['backend']}"
        ref_q = quality_by_id.get(ref_id)
        q = rec["quality"]
        delta = "" if case["is_reference"] or ref_q is None else f"{q['value'] - ref_q:+.4f}"
        speed = "1 (ref)" if case["is_reference"] else _speedup(m)
        out.append(
            (
                case["case_id"],
                _ms(m.get("latency.p50_s")),
                speed,
                _threshold(case),
                _num(m.get("throughput.items_per_s"), ",.0f"),
                _bytes(rec["memory"].get("device_peak_bytes") or m.get("memory.peak_rss_bytes")),
                _bytes(m.get("memory.delta_rss_bytes")),
                _bytes(m.get("size_bytes")),
                f"{SHORT_METRIC.get(q['metric'], q['metric'])} {q['value']:.4f}",
                delta,
                verdict,
            )
        )
    return out


def _threshold(case: dict[str, Any]) -> str:
    """The speedup check's threshold (or, for a reference case, the latency check's), '!' when too noisy."""
    for name in ("speedup", "latency"):
        for v in case.get("verdicts", []):
            if v["check"] == name and v.get("threshold") is not None:
                return f"{v['threshold']:.0%}" + ("!" if v.get("noisy") else "")
    return "-"


def skipped_summary(run: dict[str, Any]) -> list[str]:
    """Skipped cases, one line per distinct reason (a missing GPU skips a whole column of the matrix)."""
    counts: dict[str, int] = {}
    for case in run["cases"]:
        if case["status"] == "skipped":
            counts[case["message"]] = counts.get(case["message"], 0) + 1
    return [f"skipped {n} case{'s' if n > 1 else ''}: {reason}" for reason, n in counts.items()]


def quality_basis_summary(run: dict[str, Any]) -> list[str]:
    """How many cases had their quality judged loosely or not against the baseline, and why (gate.QualityBasis)."""
    widened = other = 0
    for case in run["cases"]:
        for v in case.get("verdicts", []):
            if v["check"] != "quality" or v["source"] != "baseline":
                continue
            widened += v.get("basis") == QualityBasis.OTHER_WEIGHTS.value
            other += v.get("basis") == QualityBasis.OTHER_CHOICES.value
    parts = []
    if widened:
        parts.append(f"within sampling error for {widened} case{'s' if widened > 1 else ''} "
                     "(reference weights differ from the baseline's, or it records none)")
    if other:
        parts.append(f"not compared for {other} case{'s' if other > 1 else ''} "
                     "(made with other machine-dependent settings, e.g. ORT's weight range)")
    return [f"quality vs baseline: {'; '.join(parts)}"] if parts else []


def header(run: dict[str, Any]) -> list[str]:
    """Where the run was measured and, per suite, which baseline it was judged against and on what."""
    lines = [f"measured on: {env.describe(run['environment'])}"]
    for suite, info in sorted(run.get("baselines", {}).items()):
        if info["environment"] is None:
            lines.append(f"baseline {suite}: none yet ({info['path']})")
            continue
        skipped = [c.name for c in BASELINE_CHECKS if c.name not in info["compared"]]
        note = f"; not gated: {', '.join(skipped)}" if skipped else ""
        lines.append(f"baseline {suite}: taken on {env.describe(info['environment'])}{note}")
        if not info.get("class_baseline", True):
            lines.append(f"baseline {suite}: no entry for this machine class ({info.get('machine_class')}); "
                         "speed not gated, machine-independent figures gated against the latest other class")
        elif info.get("other_class_cases"):
            n = len(info["other_class_cases"])
            lines.append(f"baseline {suite}: {n} case{'s' if n > 1 else ''} of this run {'have' if n > 1 else 'has'} "
                         "no entry of this machine class; for them speed is not gated, machine-independent figures "
                         "are gated against the latest other class holding them")
    return lines + quality_basis_summary(run)


def render(run: RunResult | dict[str, Any]) -> list[str]:
    """Where it ran, the table of measured cases, then one line per reason cases were skipped."""
    if isinstance(run, RunResult):
        run = run.to_dict()
    shown = {"cases": [c for c in run["cases"] if c["status"] != "skipped"]}
    table = [COLUMNS, *rows(shown)]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = []
    for idx, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
        if idx == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"note: {n}" for n in run.get("notes", [])]
    return header(run) + notes + lines + training_table.render(run) + undecided_summary(run) + skipped_summary(run)


def undecided_summary(run: dict[str, Any]) -> list[str]:
    """The contracts no run of this size decides: each interval, its margin and what would decide it."""
    lines = [v["message"] for c in run["cases"] for v in c.get("verdicts", [])
             if v.get("status") == "inconclusive" and v.get("message")]
    if not lines:
        return []
    return [f"inconclusive ({len(lines)}; shown, not failing):", *(f"  {line}" for line in lines)]
