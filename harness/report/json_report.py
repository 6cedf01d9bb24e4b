"""The run record: every case's figures and verdicts, written to ``results/run-<timestamp>.json``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import env
from harness.cache import atomic_write
from harness.gate import BASELINE_CHECKS

if TYPE_CHECKING:
    from harness.session import OptbenchSession

RUN_SCHEMA_VERSION = 1


def _clean(value: Any) -> Any:
    """JSON has no NaN or Infinity: write them as null."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _baseline_info(session: OptbenchSession, suite: str) -> dict[str, Any]:
    """Which baseline a suite was judged against, where it was taken, and which figures were gated against it
    (a figure is not when its tolerance is off or the baseline was taken on other hardware)."""
    baseline = session.baselines[suite]
    info: dict[str, Any] = {"path": str(Path(session.options.baseline_dir) / f"{suite}.json"), "environment": None,
                            "compared": [], "machine_class": env.machine_class(session.environment),
                            "class_baseline": False, "classes": []}
    if baseline is not None:
        info["classes"] = sorted(baseline.classes)
        own = baseline.for_environment(session.environment)
        info["class_baseline"] = own is not None
        latest = own or max(baseline.classes.values(), key=lambda c: c.taken_at, default=None)
        info["environment"] = latest.environment if latest is not None else None
        scopes = env.comparable_scopes(latest.environment, session.environment) if latest else frozenset()
        tolerances = session.options.tolerances
        info["compared"] = [chk.name for chk in BASELINE_CHECKS
                            if chk.scope in scopes and getattr(tolerances, chk.tolerance_field) is not None]
    return info


def build_run(session: OptbenchSession, finished: dt.datetime | None = None) -> dict[str, Any]:
    finished = finished or dt.datetime.now(dt.UTC)
    o = session.options
    cases = []
    for outcome in session.outcomes.values():
        cases.append(
            {
                "case_id": outcome.case.id,
                "suite": outcome.case.suite,
                "model": outcome.case.model,
                "config": outcome.case.config.name,
                "backend": outcome.case.backend,
                "is_reference": outcome.case.is_reference,
                "status": outcome.status,
                "message": outcome.message,
                "record": outcome.record.to_dict() if outcome.record is not None else None,
                "verdicts": [v.to_dict() for v in outcome.verdicts],
            }
        )
    return _clean(
        {
            "schema_version": RUN_SCHEMA_VERSION,
            "started": session.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "finished": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration_s": (finished - session.started).total_seconds(),
            "environment": session.environment,
            "options": {
                k: (str(v) if isinstance(v, Path) else dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v)
                for k, v in dataclasses.asdict(o).items()
            },
            "baselines": {suite: _baseline_info(session, suite) for suite in sorted(session.baselines)},
            "cases": cases,
        }
    )


def write_run(session: OptbenchSession) -> Path:
    run = build_run(session)
    stamp = session.started.strftime("%Y%m%d-%H%M%S-%f")  # microseconds: names sort in start order
    directory = Path(session.options.results_dir)
    path, n = directory / f"run-{stamp}.json", 1
    while path.exists():  # two runs started in the same second: never overwrite the first one's record
        n += 1
        path = directory / f"run-{stamp}-{n}.json"
    text = json.dumps(run, indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def load_run(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
