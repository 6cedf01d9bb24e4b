"""The work baseline: instructions per inference of each case, one committed JSON file, kept per counting environment.

A counting environment is what decides a count — Valgrind's version, the CPU it presents to the program, Python,
torch, ONNX Runtime and numpy — never the host CPU: Valgrind presents the same CPU on every x86-64 host with
AVX2 (docs/gate.md has the portability measured), so one entry gates every runner class.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import BaselineError
from harness.metrics.latency import relative_spread
from harness.work.counter import environment_key
from harness.work.figures import WorkFigures

SCHEMA = 1
FILE_NAME = "instructions.json"  # in a folder of its own: results/baselines/*.json are the suites'


def work_path(baseline_dir: Path) -> Path:
    return Path(baseline_dir) / "work" / FILE_NAME


@dataclasses.dataclass(frozen=True)
class WorkEntry:
    """One case's accepted work: the median over ``runs`` separate counting processes and their relative spread
    (robust, as speed spreads are: ``harness.metrics.latency.relative_spread``)."""

    instructions: float
    spread: float
    runs: int
    estimated_cycles: float | None = None
    calls: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class WorkEnvironment:
    environment: Mapping[str, Any]
    taken_at: str
    cases: Mapping[str, WorkEntry]


@dataclasses.dataclass(frozen=True)
class WorkBaseline:
    environments: Mapping[str, WorkEnvironment]  # by environment_key

    def entry(self, case_id: str, environment: Mapping[str, Any]) -> WorkEntry | None:
        env = self.environments.get(environment_key(dict(environment)))
        return env.cases.get(case_id) if env is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA, "environments": {
            key: {"environment": dict(env.environment), "taken_at": env.taken_at,
                  "cases": {cid: entry.to_dict() for cid, entry in sorted(env.cases.items())}}
            for key, env in sorted(self.environments.items())}}


def load(path: Path) -> WorkBaseline | None:
    """The work baseline at ``path``; None when there is none. A file that cannot be read is refused in one line."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("schema_version") != SCHEMA:
            raise BaselineError(f"work baseline {path} has schema_version {data.get('schema_version')!r}; "
                                f"expected {SCHEMA}")
        envs = {
            key: WorkEnvironment(body["environment"], body["taken_at"],
                                 {cid: WorkEntry(**entry) for cid, entry in body["cases"].items()})
            for key, body in data["environments"].items()
        }
    except BaselineError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BaselineError(f"work baseline {path} is corrupt ({type(exc).__name__}: {exc}); expected the schema "
                            f"{SCHEMA} JSON that `python -m harness.count --accept` writes") from None
    return WorkBaseline(envs)


def entries_from_runs(runs: Sequence[Mapping[str, WorkFigures]]) -> dict[str, WorkEntry]:
    """One entry per case counted in every run: the median and the relative spread across the runs."""
    shared = set(runs[0]).intersection(*runs[1:]) if runs else set()
    out = {}
    for case_id in sorted(shared):
        values = sorted(run[case_id].instructions for run in runs)
        cycles = [run[case_id].estimated_cycles for run in runs if run[case_id].estimated_cycles is not None]
        out[case_id] = WorkEntry(
            instructions=round(values[len(values) // 2], 1), spread=round(relative_spread(values), 5), runs=len(runs),
            estimated_cycles=round(sorted(cycles)[len(cycles) // 2], 1) if cycles else None,
            calls=runs[0][case_id].calls)
    return out


def merged(old: WorkBaseline | None, environment: Mapping[str, Any], entries: Mapping[str, WorkEntry]) -> WorkBaseline:
    """``old`` with ``entries`` written into this environment's cases (others kept)."""
    key = environment_key(dict(environment))
    envs = dict(old.environments) if old is not None else {}
    before = envs.get(key)
    cases = {**(before.cases if before is not None else {}), **entries}
    envs[key] = WorkEnvironment(dict(environment), dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), cases)
    return WorkBaseline(envs)


def save(path: Path, baseline: WorkBaseline) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline.to_dict(), indent=1, sort_keys=False) + "\n")
