"""The run record: the RunResult written to ``results/run-<timestamp>.json`` and read back."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cache import atomic_write
from harness.result import RUN_SCHEMA_VERSION, RunResult

__all__ = ["RUN_SCHEMA_VERSION", "load_run", "write_run"]


def write_run(result: RunResult, directory: Path) -> Path:
    """Write ``run-<start time>.json`` under ``directory`` atomically; never overwrite an earlier run's record."""
    stamp = result.started.replace("-", "").replace(":", "").replace("T", "-").rstrip("Z")
    directory = Path(directory)
    path, n = directory / f"run-{stamp}.json", 1
    while path.exists():  # two runs started in the same second: never overwrite the first one's record
        n += 1  # "_" sorts after ".", and the padded count sorts by number: name order stays start order
        path = directory / f"run-{stamp}_{n:03d}.json"
    text = json.dumps(result.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def load_run(path: Path) -> RunResult:
    """Read a run record; a truncated or foreign file raises RunRecordError naming it."""
    return RunResult.load(path)
