"""The run record: the RunResult written to ``results/run-<timestamp>.json`` and read back.

The record is compact JSON, one case per line; its long numeric lists (raw timing samples, per-step curves) go to
``run-<timestamp>.samples.npz`` beside it (harness.run_samples), written first, so a record never names a samples
file that is not there. ``prune_runs`` keeps the newest N records of a results directory.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from harness import run_samples
from harness.cache import atomic_write
from harness.result import RUN_SCHEMA_VERSION, RunResult, compact_run

__all__ = ["RUN_SCHEMA_VERSION", "load_run", "prune_runs", "run_records", "write_run"]

logger = logging.getLogger(__name__)

RECORD_NAME = re.compile(r"run-\d{8}-\d{6}(_\d{3})?\.json")  # what write_run names a record, and nothing else


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def record_text(data: dict[str, Any]) -> str:
    """Compact JSON with each case on a line of its own: small, and still readable with grep, diff or jq."""
    cases = data.get("cases")
    if not isinstance(cases, list) or not cases:
        return _dumps(data) + "\n"
    head = _dumps({k: v for k, v in data.items() if k != "cases"})
    body = ",\n".join(_dumps(case) for case in cases)
    return head[:-1] + ("," if head != "{}" else "") + '"cases":[\n' + body + "\n]}\n"


def write_run(result: RunResult, directory: Path) -> Path:
    """Write ``run-<start time>.json`` (and its ``.samples.npz``) under ``directory`` atomically; never overwrite an
    earlier run's record."""
    stamp = result.started.replace("-", "").replace(":", "").replace("T", "-").rstrip("Z")
    directory = Path(directory)
    path, n = directory / f"run-{stamp}.json", 1
    while path.exists():  # two runs started in the same second: never overwrite the first one's record
        n += 1  # "_" sorts after ".", and the padded count sorts by number: name order stays start order
        path = directory / f"run-{stamp}_{n:03d}.json"
    compact, arrays = run_samples.split(result.to_dict())
    compact = compact_run(compact)
    if arrays:
        blob = run_samples.encode(arrays)
        sidecar = run_samples.sidecar_path(path)
        atomic_write(sidecar, lambda tmp: tmp.write_bytes(blob))
        compact["samples"] = {"file": sidecar.name, "sha256": run_samples.digest(blob), "arrays": len(arrays)}
    text = record_text(compact)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def load_run(path: Path, samples: bool = True) -> RunResult:
    """Read a run record; a truncated or foreign file raises RunRecordError naming it."""
    return RunResult.load(path, samples=samples)


def run_records(directory: Path) -> list[Path]:
    """The run records ``write_run`` wrote in ``directory``, oldest first (their names sort by start time)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if RECORD_NAME.fullmatch(p.name))


def prune_runs(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` run records in ``directory`` with their samples files (0 keeps all), and
    samples files older than every record kept whose record is gone; returns what was deleted. Files of other
    names (baselines, the report, a record someone renamed) are left alone."""
    if keep < 0:
        raise ValueError(f"keep must be >= 0 (0 keeps every run record), got {keep}")
    records = run_records(directory)
    if keep == 0 or not records:
        return []
    drop = records[:-keep] if len(records) > keep else []
    oldest_kept = records[-keep].name if len(records) >= keep else records[0].name
    kept = {p.name for p in records[-keep:]}
    orphans = [p for p in Path(directory).glob("run-*" + run_samples.SUFFIX)
               if p.name.removesuffix(run_samples.SUFFIX) + ".json" not in kept
               and p.name.removesuffix(run_samples.SUFFIX) + ".json" < oldest_kept]
    deleted = []
    for path in [*drop, *(run_samples.sidecar_path(p) for p in drop), *orphans]:
        try:
            path.unlink()
            deleted.append(path)
        except FileNotFoundError:
            continue
    if deleted:
        logger.info("pruned %d old run file(s) from %s, keeping the newest %d record(s)", len(deleted), directory, keep)
    return sorted(set(deleted))
