"""RunResult: the one value a finished run hands its reports (terminal, JSON, HTML, history).

It holds exactly what the run's JSON record holds, so every report renders the same figures whether it runs at
the end of a session or later from ``results/run-*.json``. Importing it loads no torch, ONNX or session code.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from harness.errors import OptbenchError

# 2: long numeric lists (raw samples, curves) live in run-<stamp>.samples.npz beside the record (harness.run_samples);
# 1: everything inline, still read. 3: each verdict without its case's id and the fields at their defaults, each record
# without its ``proof`` where ``metrics`` holds it as ``proof.*`` (compact_case / expand_case).
RUN_SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
# gate.Verdict's fields with a default, and that default (tests/test_result.py checks they agree): left out of a
# stored verdict where they hold it.
VERDICT_DEFAULTS: dict[str, Any] = {"tolerance": None, "message": "", "basis": "", "threshold": None,
                                    "threshold_from": "", "interval": None, "retry": False, "noisy": False,
                                    "across_weights": False}
STATUSES = ("pass", "inconclusive", "fail", "known", "new", "error", "skipped")


# A record's fields that repeat its case's (record key -> case key): stored once, on the case.
_RECORD_FROM_CASE = {"case_id": "case_id", "suite": "suite", "model": "model", "backend": "backend",
                     "is_reference": "is_reference", "config_name": "config"}


def _proof_from(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k.removeprefix("proof."): v for k, v in metrics.items() if k.startswith("proof.")}


def compact_case(case: dict[str, Any]) -> dict[str, Any]:
    """A case as the record stores it: what :func:`expand_case` restores exactly is left out — each verdict's
    ``case_id`` (the case's own) and its fields at their defaults; the record's fields that repeat the case's
    (id, suite, model, backend, config name), and its ``proof`` when its ``metrics`` hold the same figures as
    ``proof.*``. A record of the main command's 346 cases: 1.27 MB before, about 1 MB after."""
    out = dict(case)
    cid = case.get("case_id")
    if isinstance(case.get("verdicts"), list):
        out["verdicts"] = [{k: v for k, v in verdict.items()
                            if not (k == "case_id" and v == cid)
                            and not (k in VERDICT_DEFAULTS and v == VERDICT_DEFAULTS[k])}
                           if isinstance(verdict, dict) else verdict for verdict in case["verdicts"]]
    record = case.get("record")
    if isinstance(record, dict):
        drop = {k for k, ck in _RECORD_FROM_CASE.items() if k in record and ck in case and record[k] == case[ck]}
        if isinstance(record.get("metrics"), dict) and record.get("proof") == _proof_from(record["metrics"]):
            drop.add("proof")
        out["record"] = {k: v for k, v in record.items() if k not in drop}
    return out


def expand_case(case: dict[str, Any]) -> dict[str, Any]:
    """A stored case as the run made it (the inverse of :func:`compact_case`; a full case is returned as it is)."""
    out = dict(case)
    if isinstance(case.get("verdicts"), list):
        out["verdicts"] = [{"case_id": case.get("case_id"), **VERDICT_DEFAULTS, **verdict}
                           if isinstance(verdict, dict) else verdict for verdict in case["verdicts"]]
    record = case.get("record")
    if isinstance(record, dict):
        restored = {k: case[ck] for k, ck in _RECORD_FROM_CASE.items() if k not in record and ck in case}
        if "proof" not in record and isinstance(record.get("metrics"), dict):
            restored["proof"] = _proof_from(record["metrics"])
        out["record"] = {**record, **restored}
    return out


def compact_run(data: dict[str, Any]) -> dict[str, Any]:
    """A run's JSON as the record stores it: every case compacted (:func:`compact_case`), and the report declarations
    cases share (one per technique) stored once, in ``reports``, each case holding its index."""
    cases = data.get("cases")
    if not isinstance(cases, list):
        return data
    reports: list[Any] = []
    out_cases = []
    for case in cases:
        case = compact_case(case) if isinstance(case, dict) else case
        if isinstance(case, dict) and isinstance(case.get("report"), dict):
            if case["report"] not in reports:
                reports.append(case["report"])
            case = {**case, "report": reports.index(case["report"])}
        out_cases.append(case)
    return {**data, "cases": out_cases, **({"reports": reports} if reports else {})}


def _expanded_cases(cases: list[dict[str, Any]], reports: Any) -> tuple[dict[str, Any], ...]:
    table = reports if isinstance(reports, list) else []
    out = []
    for case in cases:
        ref = case.get("report")
        if isinstance(ref, int) and not isinstance(ref, bool) and 0 <= ref < len(table):
            case = {**case, "report": table[ref]}
        out.append(expand_case(case))
    return tuple(out)


class RunRecordError(OptbenchError):
    """A run record is unreadable, truncated or of an unknown schema: the message names the file."""


def clean(value: Any) -> Any:
    """JSON has no NaN or Infinity: write them as null."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def git_commit(directory: Path) -> str | None:
    """The commit checked out in ``directory`` (with ``+dirty`` when files changed), or None outside git."""
    try:
        head = subprocess.run(["git", "-C", str(directory), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One run: when and where it ran, which baselines judged it, and every case with its record and verdicts.

    ``cases`` are the JSON case dicts (``case_id``, ``suite``, ``model``, ``config``, ``backend``, ``status``,
    ``message``, ``record``, ``verdicts``); ``source`` says where the value came from (a file), for labels and
    error messages, and is not written to the record."""

    started: str
    finished: str
    duration_s: float
    environment: dict[str, Any]
    options: dict[str, Any]
    baselines: dict[str, Any]
    cases: tuple[dict[str, Any], ...]
    commit: str | None = None
    schema_version: int = RUN_SCHEMA_VERSION
    source: str = ""
    # What the run said beside its cases: per suite and model what did not apply and why, suites with no case,
    # stale baseline entries, findings accepted by --optbench-accept-known.
    notes: tuple[str, ...] = ()
    # A run merged from CI shards (harness.merge): per shard its record, times, commit, machine and case count.
    shards: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON record (NaN/Inf as null)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "source"}
        out["cases"] = list(self.cases)
        out["notes"] = list(self.notes)
        out["shards"] = list(self.shards)
        return clean(out)

    @classmethod
    def from_dict(cls, data: Any, source: str = "") -> RunResult:
        """Validate a parsed record; a wrong schema or a missing field raises RunRecordError naming ``source``."""
        where = source or "run record"
        if not isinstance(data, dict):
            raise RunRecordError(f"{where}: not a run record (expected a JSON object, got {type(data).__name__})")
        version = data.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise RunRecordError(f"{where}: unknown run record schema_version {version!r}; "
                                 f"this optbench reads versions {', '.join(map(str, READABLE_VERSIONS))}")
        missing = [f for f in ("started", "finished", "duration_s", "environment", "cases") if f not in data]
        if missing:
            raise RunRecordError(f"{where}: not a complete run record, missing {', '.join(missing)}")
        cases = data["cases"]
        if not isinstance(cases, list) or not all(isinstance(c, dict) and "case_id" in c for c in cases):
            raise RunRecordError(f"{where}: `cases` must be a list of case objects with a case_id")
        return cls(started=data["started"], finished=data["finished"], duration_s=float(data["duration_s"] or 0.0),
                   environment=data["environment"] or {}, options=data.get("options") or {},
                   baselines=data.get("baselines") or {}, cases=_expanded_cases(cases, data.get("reports")),
                   commit=data.get("commit"),
                   schema_version=RUN_SCHEMA_VERSION, source=source,
                   notes=tuple(str(n) for n in data.get("notes") or ()),
                   shards=tuple(s for s in data.get("shards") or () if isinstance(s, dict)))

    @classmethod
    def load(cls, path: Path, samples: bool = True) -> RunResult:
        """Read ``results/run-*.json`` (and, with ``samples``, its ``.samples.npz``: the raw samples and report tables
        back in place; without, each stored list reads as empty, each stored table as {}, and the figures are there).
        A truncated or foreign file, or a missing or mismatched samples file, raises RunRecordError naming it."""
        from harness import run_samples

        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RunRecordError(f"{path}: cannot read the run record ({exc.strerror or exc})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunRecordError(f"{path}: not valid JSON (truncated or corrupt run record?): {exc}") from None
        stored = data.get("samples") if isinstance(data, dict) else None
        if isinstance(stored, dict):
            if samples:
                try:
                    arrays = run_samples.read(path.parent / str(stored.get("file")), stored.get("sha256"), path)
                except run_samples.SamplesError as exc:
                    raise RunRecordError(str(exc)) from None

                def lookup(key: str) -> Any:
                    if key not in arrays:
                        raise RunRecordError(f"{path}: its samples file has no array {key!r}; expected the "
                                             ".samples.npz written with this record")
                    return arrays[key]

                data = run_samples.attach({k: v for k, v in data.items() if k != "samples"}, lookup)
            else:
                data = run_samples.without_samples({k: v for k, v in data.items() if k != "samples"})
        return cls.from_dict(data, str(path))

    # -- views the reports share ----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Cases per status, every status present (0 where none)."""
        seen = Counter(c.get("status", "error") for c in self.cases)
        return {s: seen.get(s, 0) for s in STATUSES}

    def failed_checks(self) -> list[dict[str, Any]]:
        """Every failed check (case, metric, baseline or threshold, current, tolerance) and every errored case."""
        out = []
        for case in self.cases:
            for v in case.get("verdicts") or []:
                if v.get("status") == "fail":
                    out.append({"case_id": case["case_id"], "check": v.get("check"), "source": v.get("source"),
                                "metric": v.get("metric"), "expected": v.get("expected"),
                                "current": v.get("current"), "tolerance": v.get("tolerance"),
                                "message": v.get("message", "")})
            if case.get("status") in ("fail", "error") and not any(
                    v.get("status") == "fail" for v in case.get("verdicts") or []):
                out.append({"case_id": case["case_id"], "check": case["status"], "source": "", "metric": "",
                            "expected": None, "current": None, "tolerance": None,
                            "message": case.get("message", "")})
        return out

    def machine(self) -> str:
        """A short label of where the run was measured: CPU, threads, GPU."""
        e = self.environment
        gpu = f", {e['gpu']}" if e.get("gpu") else ""
        return f"{e.get('cpu', 'unknown CPU')}, {e.get('threads', '?')} thread(s){gpu}"
