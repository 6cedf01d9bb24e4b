"""Baseline store: one committed, human-reviewable JSON file per suite, with a schema version.

A file holds one set of entries per machine class (:func:`harness.env.machine_class`): accepting a run adds or
replaces only its own class, so a baseline taken on another runner never relabels this one's figures. Reading
refuses anything it does not fully understand, naming the file and the problem, and migrates schema 1 (one
environment for the whole file) on read; writing is atomic (a crash mid-write leaves the old file), always in the
current schema, and merges, so updating a subset of cases keeps the others.

``python -m harness.baselines diff A B`` prints, per case and figure, old → new and what would now fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.cache import atomic_write
from harness.env import machine_class
from harness.errors import BaselineError
from harness.gate import QualityComparison, Scope, Status, Tolerances, check_baseline
from harness.record import Record

SCHEMA_VERSION = 2

# The figures a baseline keeps: what the gate judges plus what a reviewer wants to see move in a diff.
KEPT_METRICS = (
    "quality.value",
    "quality.ci_low",
    "quality.ci_high",
    "quality.retention",
    "quality.agreement",
    "size_bytes",
    "params",
    "nonzero_params",
    "speedup",
    "throughput_speedup",
    "latency.p50_s",
    "latency.normalized",
    "probe.p50_s",
    "throughput.items_per_s",
)


@dataclasses.dataclass(frozen=True)
class BaselineEntry:
    metrics: dict[str, float | None]
    accepted_failures: frozenset[str] = frozenset()  # contract checks known to fail, reviewed and accepted
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    identity: dict[str, str] = dataclasses.field(default_factory=dict)  # Record.identity of the accepted run
    # Relative spread of each speed figure across the accepted runs (harness.accept); what calibrates the gate's
    # threshold for this case. Empty for a baseline taken from one run.
    spread: dict[str, float] = dataclasses.field(default_factory=dict)
    runs: int = 1  # how many runs the figures are the median of

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "accepted_contract_failures": sorted(self.accepted_failures),
            "config": self.config,
            "identity": self.identity,
            "spread": self.spread,
            "runs": self.runs,
        }


@dataclasses.dataclass
class ClassBaseline:
    """The accepted figures of one machine class: where they were taken, when, and each case's entry."""

    environment: dict[str, Any]
    cases: dict[str, BaselineEntry]
    taken_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "taken_at": self.taken_at,
                "cases": {k: v.to_dict() for k, v in sorted(self.cases.items())}}


@dataclasses.dataclass
class BaselineFile:
    suite: str
    classes: dict[str, ClassBaseline]

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "suite": self.suite,
                "classes": {k: v.to_dict() for k, v in sorted(self.classes.items())}}

    @classmethod
    def single(cls, suite: str, environment: dict[str, Any], cases: dict[str, BaselineEntry],
               taken_at: str = "") -> BaselineFile:
        """A file holding one machine class: ``environment``'s."""
        return cls(suite, {machine_class(environment): ClassBaseline(environment, cases, taken_at)})

    def for_environment(self, environment: dict[str, Any]) -> ClassBaseline | None:
        """The entries of ``environment``'s machine class, or None when this class has no baseline yet."""
        return self.classes.get(machine_class(environment))

    def entry(self, case_id: str, environment: dict[str, Any]) -> tuple[BaselineEntry | None, bool]:
        """The case's entry for ``environment``, and whether it is of the same class. With no entry of this
        class, the latest other class's entry: its machine-independent figures (quality, size, proofs) still
        gate."""
        own = self.for_environment(environment)
        if own is not None and case_id in own.cases:
            return own.cases[case_id], True
        others = sorted((c for c in self.classes.values() if case_id in c.cases), key=lambda c: c.taken_at)
        return (others[-1].cases[case_id], False) if others else (None, False)


def baseline_path(directory: Path, suite: str) -> Path:
    return directory / f"{suite}.json"


def round_figure(value: float | None) -> float | None:
    """Six significant digits: enough for every gate, few enough that a reviewer can read a diff."""
    if value is None or math.isnan(value) or math.isinf(value) or value == 0:
        return None if value is None or math.isnan(value) or math.isinf(value) else 0.0
    return float(f"{value:.6g}")


def is_kept(name: str) -> bool:
    """Whether a baseline keeps the figure ``name``: the gated and reviewed ones, every proof and training figure."""
    return name in KEPT_METRICS or name.startswith(("proof.", "training."))


def entry_from_record(record: Record, accepted_failures: frozenset[str]) -> BaselineEntry:
    kept = {k: round_figure(v) for k, v in record.metrics().items() if is_kept(k) and v is not None}
    return BaselineEntry(kept, accepted_failures, record.config, dict(record.identity))


def _fail(path: Path, problem: str) -> BaselineError:
    return BaselineError(
        f"baseline {path}: {problem}; fix the file or restore it from git (it was left untouched)"
    )


def _parse_entry(path: Path, case_id: str, raw: object) -> BaselineEntry:
    where = f"cases[{case_id!r}]"
    if not isinstance(raw, dict):
        raise _fail(path, f"{where} must be an object, got {type(raw).__name__}")
    metrics = raw.get("metrics")
    if not isinstance(metrics, dict):
        raise _fail(path, f"{where}.metrics must be an object of numbers")
    for name, value in metrics.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _fail(path, f"{where}.metrics[{name!r}] must be a number or null, got {value!r}")
    failures = raw.get("accepted_contract_failures", [])
    if not isinstance(failures, list) or not all(isinstance(f, str) for f in failures):
        raise _fail(path, f"{where}.accepted_contract_failures must be a list of check names")
    config = raw.get("config", {})
    if not isinstance(config, dict):
        raise _fail(path, f"{where}.config must be an object")
    identity = raw.get("identity", {})
    if not isinstance(identity, dict) or not all(isinstance(v, str) for v in identity.values()):
        raise _fail(path, f"{where}.identity must be an object of strings")
    spread = raw.get("spread", {})
    if not isinstance(spread, dict) or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                               for v in spread.values()):
        raise _fail(path, f"{where}.spread must be an object of numbers")
    runs = raw.get("runs", 1)
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        raise _fail(path, f"{where}.runs must be a positive integer, got {runs!r}")
    return BaselineEntry(
        {k: (None if v is None else float(v)) for k, v in metrics.items()}, frozenset(failures), config, identity,
        {k: float(v) for k, v in spread.items()}, runs,
    )


def _parse_class(path: Path, where: str, raw: object) -> ClassBaseline:
    if not isinstance(raw, dict):
        raise _fail(path, f"{where} must be an object")
    cases = raw.get("cases")
    if not isinstance(cases, dict):
        raise _fail(path, f"{where} has no `cases` object")
    env = raw.get("environment", {})
    if not isinstance(env, dict):
        raise _fail(path, f"{where}.environment must be an object")
    return ClassBaseline(env, {cid: _parse_entry(path, cid, c) for cid, c in cases.items()},
                         str(raw.get("taken_at", "")))


def migrate_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 (one ``environment`` and ``cases`` for the whole file) as schema 2: one class, the environment's.
    A v1 environment read CPU flags by hand (Linux x86 only) and has no ``arch``; it gets the architecture its
    flags imply, so that a v1 baseline of this machine lands in this machine's class."""
    env = dict(data.get("environment") or {})
    if "arch" not in env and env:
        env["arch"] = "x86_64" if env.get("cpu_flags") else "unknown"
    body = {"environment": env, "taken_at": data.get("taken_at", ""), "cases": data.get("cases")}
    return {"schema_version": SCHEMA_VERSION, "suite": data.get("suite"), "classes": {machine_class(env): body}}


def load(path: Path) -> BaselineFile | None:
    """Read a suite's baseline; None when there is no file yet. Corrupt or unknown files raise BaselineError."""
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot be read ({exc})") from None
    if not text.strip():
        raise _fail(path, "is empty (truncated?)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise _fail(path, f"must hold a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version == 1:
        if not isinstance(data.get("cases"), dict):
            raise _fail(path, "has no `cases` object")
        if not isinstance(data.get("environment", {}), dict):
            raise _fail(path, "`environment` must be an object")
        data = migrate_v1(data)
    elif version != SCHEMA_VERSION:
        raise _fail(path, f"has schema_version {version!r}, expected {SCHEMA_VERSION} (or 1, migrated on read)")
    classes = data.get("classes")
    if not isinstance(classes, dict):
        raise _fail(path, "has no `classes` object")
    return BaselineFile(
        suite=str(data.get("suite") or path.stem),
        classes={key: _parse_class(path, f"classes[{key!r}]", raw) for key, raw in classes.items()},
    )


def save(path: Path, baseline: BaselineFile) -> None:
    """Write atomically, sorted keys, two-space indent, trailing newline."""
    text = json.dumps(baseline.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# A figure's spread across reference weights (harness.accept --weights-spread) sits in an entry's ``spread`` as
# ``<metric>`` (the standard deviation) beside ``<metric>.weights`` (how many sets of weights it came from); the
# count tells it from a speed figure's relative spread across accepted runs.
WEIGHTS_SUFFIX = ".weights"
WEIGHTS_SPREAD = "quality.value"


def across_weights(spread: Mapping[str, float]) -> dict[str, tuple[float, int]]:
    """An entry's spreads across reference weights: metric -> (standard deviation, number of weights)."""
    out = {}
    for key, count in spread.items():
        metric = key.removesuffix(WEIGHTS_SUFFIX)
        if key.endswith(WEIGHTS_SUFFIX) and metric in spread:
            out[metric] = (spread[metric], int(count))
    return out


def merged(
    old: BaselineFile | None, suite: str, environment: dict[str, Any], entries: dict[str, BaselineEntry],
    drop: Iterable[str] = (),
) -> BaselineFile:
    """The old baseline with ``entries`` replaced or added in ``environment``'s class only, and the stale case ids
    ``drop`` removed from it; other classes, and this class's cases not run this time, are kept as they were."""
    classes = dict(old.classes) if old is not None else {}
    key = machine_class(environment)
    cases = dict(classes[key].cases) if key in classes else {}
    for case_id in drop:
        cases.pop(case_id, None)
    for case_id, entry in entries.items():
        before = cases.get(case_id)
        if before is not None:
            # measured across weights, which runs of one machine's weights cannot re-measure: kept
            kept = {k: before.spread[k] for metric in across_weights(before.spread) if metric not in entry.spread
                    for k in (metric, metric + WEIGHTS_SUFFIX)}
            if kept:
                entry = dataclasses.replace(entry, spread={**entry.spread, **kept})
        cases[case_id] = entry
    classes[key] = ClassBaseline(environment, cases, dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return BaselineFile(suite, classes)


def _change(old: float | None, new: float | None) -> str:
    if old is None or new is None:
        return f"{old} -> {new}"
    rel = f" ({(new - old) / abs(old):+.1%})" if old else ""
    return f"{old:.6g} -> {new:.6g}{rel}"


def diff_lines(old: BaselineFile | None, new: BaselineFile, tolerances: Tolerances | None = None) -> list[str]:
    """Per machine class, case and figure: old -> new, and which gate check the new figures would fail against
    the old ones (a reviewer sees what accepting hides). Unchanged figures are not listed."""
    tolerances = tolerances or Tolerances()
    lines: list[str] = []
    old_classes = old.classes if old is not None else {}
    for key in sorted(set(old_classes) | set(new.classes)):
        before, after = old_classes.get(key), new.classes.get(key)
        if after is None:
            lines.append(f"class {key}: removed")
            continue
        head = f"class {key}:" + (" new" if before is None else "")
        body: list[str] = []
        for case_id in sorted(set(after.cases) | set(before.cases if before else {})):
            a = after.cases.get(case_id)
            b = before.cases.get(case_id) if before is not None else None
            if a is None:
                body.append(f"  {case_id}: removed")
                continue
            if b is None:
                body.append(f"  {case_id}: new")
                continue
            changed = [f"    {m}: {_change(b.metrics.get(m), a.metrics.get(m))}"
                       for m in sorted(set(a.metrics) | set(b.metrics)) if a.metrics.get(m) != b.metrics.get(m)]
            scopes = frozenset(Scope)
            verdicts = check_baseline(case_id, a.metrics, b.metrics, tolerances, scopes,
                                      QualityComparison.of(a.identity, b.identity), b.spread)
            fails = [f"    would fail: {v.message}" for v in verdicts if v.status is Status.FAIL]
            if a.accepted_failures != b.accepted_failures:
                changed.append(f"    accepted contract failures: {sorted(b.accepted_failures)} -> "
                               f"{sorted(a.accepted_failures)}")
            if changed or fails:
                body += [f"  {case_id}:", *changed, *fails]
        if body or before is None:
            lines += [head, *body]
    return lines or ["no change"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.baselines",
                                     description="Review baseline files: per case and figure, old -> new.")
    sub = parser.add_subparsers(dest="command", required=True)
    diff = sub.add_parser("diff", help="compare baseline file A (old) with B (new)")
    diff.add_argument("old", type=Path)
    diff.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    try:
        old, new = load(args.old), load(args.new)
    except BaselineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if new is None:
        print(f"error: {args.new} does not exist", file=sys.stderr)
        return 2
    for line in diff_lines(old, new):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
