"""Baseline store: one committed, human-reviewable JSON file per suite, with a schema version.

Reading refuses anything it does not fully understand, naming the file and the problem; writing is atomic
(a crash mid-write leaves the old file) and merges, so updating a subset of cases keeps the others.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from harness.cache import atomic_write
from harness.errors import BaselineError
from harness.record import Record

SCHEMA_VERSION = 1

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
    "throughput.items_per_s",
)


@dataclasses.dataclass(frozen=True)
class BaselineEntry:
    metrics: dict[str, float | None]
    accepted_failures: frozenset[str] = frozenset()  # contract checks known to fail, reviewed and accepted
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    identity: dict[str, str] = dataclasses.field(default_factory=dict)  # Record.identity of the accepted run

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "accepted_contract_failures": sorted(self.accepted_failures),
            "config": self.config,
            "identity": self.identity,
        }


@dataclasses.dataclass
class BaselineFile:
    suite: str
    environment: dict[str, Any]
    cases: dict[str, BaselineEntry]
    taken_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "suite": self.suite,
            "taken_at": self.taken_at,
            "environment": self.environment,
            "cases": {k: v.to_dict() for k, v in sorted(self.cases.items())},
        }


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
    return BaselineEntry(
        {k: (None if v is None else float(v)) for k, v in metrics.items()}, frozenset(failures), config, identity
    )


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
    if version != SCHEMA_VERSION:
        raise _fail(path, f"has schema_version {version!r}, expected {SCHEMA_VERSION}")
    cases = data.get("cases")
    if not isinstance(cases, dict):
        raise _fail(path, "has no `cases` object")
    env = data.get("environment", {})
    if not isinstance(env, dict):
        raise _fail(path, "`environment` must be an object")
    return BaselineFile(
        suite=str(data.get("suite", path.stem)),
        environment=env,
        cases={cid: _parse_entry(path, cid, raw) for cid, raw in cases.items()},
        taken_at=str(data.get("taken_at", "")),
    )


def save(path: Path, baseline: BaselineFile) -> None:
    """Write atomically, sorted keys, two-space indent, trailing newline."""
    text = json.dumps(baseline.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def merged(
    old: BaselineFile | None, suite: str, environment: dict[str, Any], entries: dict[str, BaselineEntry]
) -> BaselineFile:
    """The old baseline with ``entries`` replaced or added; cases not run this time are kept as they were."""
    cases = dict(old.cases) if old is not None else {}
    cases.update(entries)
    return BaselineFile(suite, environment, cases, dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
