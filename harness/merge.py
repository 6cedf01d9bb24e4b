"""Merge the run records of CI shards (``pytest suites --splits N --group i``) into the one run they split.

Shards of one run hold disjoint cases of one commit, measured on one machine class; a record that breaks either is
refused with one line naming it, unless ``allow_mixed`` is given, and then the merged record says what was mixed. A
case in two records is always refused: shards hold each case once, and repeated runs of a case are what
``python -m harness.accept`` takes the median of.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness import env
from harness.errors import OptbenchError
from harness.result import RUN_SCHEMA_VERSION, RunResult


class MergeError(OptbenchError):
    """The records are not shards of one run."""


def _name(result: RunResult, index: int) -> str:
    return result.source or f"record #{index + 1}"


def _check(results: Sequence[RunResult], allow_mixed: bool) -> list[str]:
    """What differs between the records (notes for the merged run); refused unless ``allow_mixed``."""
    first, notes = results[0], []
    for i, other in enumerate(results[1:], start=1):
        if other.commit != first.commit:
            line = (f"{_name(other, i)}: commit {other.commit or 'unknown'} differs from {_name(first, 0)}'s "
                    f"{first.commit or 'unknown'}")
            if not allow_mixed:
                raise MergeError(f"{line}; merge shards of one commit, or pass --allow-mixed")
            notes.append(f"merged across commits: {line}")
        diff = env.class_difference(other.environment, first.environment)
        if diff:
            line = (f"{_name(other, i)}: measured on another machine class than {_name(first, 0)} "
                    f"({', '.join(diff)} differ)")
            if not allow_mixed:
                raise MergeError(f"{line}; merge shards of one machine class, or pass --allow-mixed")
            notes.append(f"merged across machine classes: {line}")
    return notes


def _baselines(results: Sequence[RunResult]) -> dict[str, Any]:
    """Per suite the first shard's baseline information; stale entries are those every shard of the suite saw."""
    out: dict[str, Any] = {}
    for result in results:
        for suite, info in result.baselines.items():
            if suite not in out:
                out[suite] = dict(info)
            elif isinstance(info, dict) and "stale" in out[suite]:
                out[suite]["stale"] = [s for s in out[suite]["stale"] if s in set(info.get("stale") or ())]
    return out


def merge(results: Sequence[RunResult], allow_mixed: bool = False) -> RunResult:
    """One RunResult of every shard's cases: started at the first shard's start, finished at the last one's
    finish, its duration the longest shard's (shards run side by side), and per shard where it came from."""
    if not results:
        raise MergeError("no run records to merge; give the shard records (results/run-*.json)")
    results = sorted(results, key=lambda r: r.started)
    notes = _check(results, allow_mixed)
    seen: dict[tuple[str, str], str] = {}
    cases: list[dict[str, Any]] = []
    for i, result in enumerate(results):
        for case in result.cases:
            key = (str(case.get("suite")), case["case_id"])
            if key in seen:
                raise MergeError(f"{_name(result, i)}: case {case['case_id']} of suite {key[0]} is also in "
                                 f"{seen[key]}; shards of one run hold each case once (the median of repeated runs "
                                 "is python -m harness.accept's)")
            seen[key] = _name(result, i)
            cases.append(case)
    for result in results:
        notes += [n for n in result.notes if n not in notes]
    shards = tuple({"source": r.source, "started": r.started, "finished": r.finished, "duration_s": r.duration_s,
                    "commit": r.commit, "machine": r.machine(), "cases": len(r.cases)} for r in results)
    first = results[0]
    return RunResult(started=first.started, finished=max(r.finished for r in results),
                     duration_s=max(r.duration_s for r in results), environment=first.environment,
                     options=first.options, baselines=_baselines(results), cases=tuple(cases), commit=first.commit,
                     schema_version=RUN_SCHEMA_VERSION, notes=tuple(notes), shards=shards)
