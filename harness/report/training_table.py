"""The terminal table of training-time techniques: each technique against its control over seeds (no torch).

Its last column holds the figures each case's technique declares (``report_figures``: metric key, label,
format), read from the run record, in the declared order."""

from __future__ import annotations

from typing import Any

COLUMNS = ("case", "seeds", "technique", "control", "effect [95 % CI]", "", "figures")


def figure_value(case: dict[str, Any], key: str) -> float | None:
    """A declared figure's value: the record's metric ``key``, or a ``training.*`` key from the training
    summary (records whose metrics were left out)."""
    record = case.get("record") or {}
    value = (record.get("metrics") or {}).get(key)
    if value is None and key.startswith("training."):
        value = ((record.get("training") or {}).get("summary") or {}).get(key.removeprefix("training."))
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def declared_figures(case: dict[str, Any]) -> list[str]:
    """``label value`` for each figure the case's technique declares and its record holds."""
    report = case.get("report")
    out = []
    for fig in (report.get("figures") or []) if isinstance(report, dict) else []:
        value = figure_value(case, str(fig.get("key", "")))
        if value is None:
            continue
        try:
            shown = str(fig.get("format") or "{:.4g}").format(value)
        except (ValueError, IndexError, KeyError):  # a record edited by hand: the value, unformatted
            shown = f"{value:.4g}"
        out.append(f"{fig.get('label') or fig.get('key')} {shown}")
    return out


def _mean_std(arm: dict[str, Any]) -> str:
    mean, std = arm.get("mean"), arm.get("std")
    if mean is None:
        return "-"
    return f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f}"


def _effect(cmp: dict[str, Any] | None) -> tuple[str, str]:
    if cmp is None or cmp.get("mean") is None:
        return "-", ""
    low, high = cmp.get("ci_low"), cmp.get("ci_high")
    interval = f" [{low:+.4f}, {high:+.4f}]" if low is not None and high is not None else ""
    return f"{cmp['mean']:+.4f}{interval}", "within seed noise" if cmp.get("within_noise") else "beyond noise"


def rows(run: dict[str, Any]) -> list[tuple[str, ...]]:
    out = []
    for case in run["cases"]:
        training = (case.get("record") or {}).get("training")
        if not training:
            continue
        arms = training["arms"]
        control = next((c for c in training["comparisons"] if c["against"] == "control"), None)
        effect, noise = _effect(control)
        figures = declared_figures(case)
        others = [f"vs {c['against']} {_effect(c)[0]}" for c in training["comparisons"] if c["against"] != "control"]
        out.append((case["case_id"], str(len(arms["technique"]["seeds"])), _mean_std(arms["technique"]),
                    _mean_std(arms["control"]), effect, noise, "; ".join(figures + others)))
    return out


def render(run: dict[str, Any]) -> list[str]:
    """Nothing when the run has no training-time case; else a titled table, quality being test accuracy (or the
    model's metric) per seed, mean ± standard deviation over seeds, effect = technique − control, paired."""
    body = rows(run)
    if not body:
        return []
    table = [COLUMNS, *body]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = ["", "training-time techniques: test quality over seeds (mean ± sd), effect = technique − control"]
    for idx, row in enumerate(table):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if idx == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines
