"""The work gate as a command: count every case's instructions per inference under Valgrind and judge them.

    python -m harness.count                      # count (cached by artifact digest) and gate against the baseline
    python -m harness.count --runs 3 --accept    # three separate counting runs; write their median and spread

Cases are the suites' own (torch eager and ONNX Runtime; torch.compile and CUDA backends are named and skipped
with the reason), their artifacts the cached ones the timed run built. Counting is immune to load: the ONNX Runtime
and the torch worker run side by side, one core each. Exit status: 1 when a case's work grew beyond its threshold,
2 for a usage error or, with --strict, when work cannot be counted here (no Valgrind); else 0. A counting
environment with no baseline (a new ONNX Runtime) is not gated, and says so.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import harness.plugin  # noqa: F401 - registers the techniques, backends and the zoo, as a pytest run does
from harness.cache import Cache, default_cache_dir
from harness.case import Case, generate_cases
from harness.context import Context
from harness.errors import OptbenchError, one_line
from harness.gate import WORK, Status, Tolerances, Verdict
from harness.techniques.base import PRESETS, apply
from harness.work import baseline as work_baseline
from harness.work.counter import Counter, Job, availability, environment_key
from harness.work.figures import WorkFigures
from harness.work.jobs import NotCounted, job_for, not_counted_reason, precision_reason
from model_zoo import MODELS
from model_zoo.reference import Reference
from model_zoo.training import load_reference

DEFAULT_BASELINES = Path("results") / "baselines"


@dataclasses.dataclass(frozen=True)
class Plan:
    jobs: dict[str, Job]  # by case id (a case shared by suites, the fp32 reference, is counted once)
    references: dict[str, str]  # case id -> its fp32 reference's case id
    skipped: dict[str, str]  # backend or case -> why not counted


def _names(raw: str | None) -> tuple[str, ...] | None:
    return tuple(n.strip() for n in raw.split(",") if n.strip()) if raw else None


def plan(suites: Sequence[str], models: Sequence[str] | None, configs: Sequence[str] | None,
         backends: Sequence[str] | None, cache: Cache, show: object = print) -> Plan:
    """Build (from the cache) every selected case's artifact and its counting job."""
    jobs: dict[str, Job] = {}
    references: dict[str, str] = {}
    skipped: dict[str, str] = {}
    refs: dict[str, Reference] = {}
    ctx = Context(cache, 1)
    cases: dict[str, Case] = {}
    for suite in suites:
        for case in generate_cases(suite, models, configs, backends):
            cases.setdefault(case.id, case)
    for case in cases.values():
        backend_reason = not_counted_reason(case.backend)
        if case.skip_reason or backend_reason:  # a backend unavailable here or not counted: said once for it
            whole = backend_reason or case.skip_reason.startswith(f"{case.backend} unavailable")  # type: ignore[union-attr]
            skipped.setdefault(case.backend if whole else case.id, backend_reason or case.skip_reason or "")
            continue
        if (why := precision_reason(case.config.precision)) is not None:  # said before anything is built
            skipped[case.id] = why
            continue
        try:
            if case.model not in refs:
                refs[case.model] = load_reference(MODELS.get(case.model), cache)
            reference = refs[case.model]
            jobs[case.id] = job_for(case.id, case.backend, apply(reference, case.config, ctx), reference.spec, cache)
            references[case.id] = case.reference_id
        except NotCounted as exc:
            skipped[case.id] = str(exc)
        except OptbenchError as exc:
            skipped[case.id] = f"could not be built: {one_line(exc)}"
    return Plan(jobs, references, skipped)


def count_all(jobs: dict[str, Job], counter: Counter) -> dict[str, WorkFigures]:
    """Every job counted, the ONNX Runtime worker and the torch worker side by side."""
    by_kind: dict[str, list[Job]] = {}
    for job in jobs.values():
        by_kind.setdefault(job.kind, []).append(job)
    counter.environment()  # start the first worker before the threads race for it

    def run(kind_jobs: list[Job]) -> dict[str, WorkFigures]:
        return {job.name: counter.count(job) for job in kind_jobs}

    out: dict[str, WorkFigures] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(by_kind))) as pool:
        for part in pool.map(run, by_kind.values()):
            out.update(part)
    return out


def judge(figures: dict[str, WorkFigures], baseline: work_baseline.WorkBaseline | None,
          environment: dict[str, object], tolerances: Tolerances) -> dict[str, Verdict | None]:
    out: dict[str, Verdict | None] = {}
    for case_id, fig in figures.items():
        entry = baseline.entry(case_id, environment) if baseline is not None else None
        out[case_id] = (WORK.judge(case_id, fig.instructions, entry.instructions, entry.spread, tolerances)
                        if entry is not None else None)
    return out


def table(figures: dict[str, WorkFigures], verdicts: dict[str, Verdict | None], references: dict[str, str]) -> str:
    rows = [("case", "instr/inference", "est. cycles", "vs fp32", "baseline", "change", "work")]
    for case_id in sorted(figures):
        fig, verdict = figures[case_id], verdicts.get(case_id)
        ref = figures.get(references.get(case_id, ""))
        ratio = f"{ref.instructions / fig.instructions:.2f}x" if ref is not None and ref is not fig else ""
        base = verdict.expected if verdict is not None else None
        rows.append((case_id, f"{fig.instructions:,.0f}",
                     f"{fig.estimated_cycles:,.0f}" if fig.estimated_cycles is not None else "",
                     ratio, f"{base:,.0f}" if base else "—",
                     f"{fig.instructions / base - 1:+.2%}" if base else "",
                     verdict.status.value if verdict is not None else "not gated"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                                   strict=True)))
                     for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.count", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", help=f"comma-separated suites (default: all: {', '.join(sorted(PRESETS))})")
    parser.add_argument("--models", help="comma-separated zoo models (default: all)")
    parser.add_argument("--configs", help="comma-separated presets (default: all; fp32 always)")
    parser.add_argument("--backends", help="comma-separated backends (default: the counted ones)")
    parser.add_argument("--runs", type=int, default=1,
                        help="separate counting runs, each in fresh worker processes and uncached (default: 1, "
                             "read from the cache where counted before)")
    parser.add_argument("--accept", action="store_true",
                        help="write the runs' median and spread into the work baseline (use --runs 3 or more)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 2 when work cannot be counted here (no Valgrind, another platform): CI installs it")
    parser.add_argument("--baseline-dir", type=Path, default=DEFAULT_BASELINES)
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"default: {default_cache_dir()}")
    parser.add_argument("--tolerance", action="append", default=[], metavar="NAME=VALUE",
                        help="work_rel (the minimum effect) or spread_k, as --optbench-tolerance")
    args = parser.parse_args(argv)
    try:
        if args.runs < 1:
            raise OptbenchError(f"--runs must be at least 1, got {args.runs}")
        tolerances = Tolerances.parse(args.tolerance)
        suites = _names(args.suites) or tuple(sorted(PRESETS))
        for suite in suites:
            if suite not in PRESETS:
                raise OptbenchError(f"--suites: unknown suite {suite!r}; expected one of: {', '.join(sorted(PRESETS))}")
        old = work_baseline.load(work_baseline.work_path(args.baseline_dir))
    except OptbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    available = availability()
    if not available.ok:
        print(f"work: not counted: {available.reason}")
        return 2 if args.strict else 0
    cache = Cache(args.cache_dir) if args.cache_dir else Cache()
    started = time.perf_counter()
    work = plan(suites, _names(args.models), _names(args.configs), _names(args.backends), cache)
    for what, why in sorted(work.skipped.items()):
        print(f"not counted: {what}: {why}")
    if not work.jobs:
        print("work: nothing to count in this selection")
        return 0
    runs: list[dict[str, WorkFigures]] = []
    for run in range(args.runs):
        with Counter(cache, use_cache=args.runs == 1) as counter:
            runs.append(count_all(work.jobs, counter))
            environment = counter.environment()
            print(f"run {run + 1}/{args.runs}: {counter.counted} of {len(work.jobs)} cases counted, "
                  f"{len(work.jobs) - counter.counted} from the cache ({time.perf_counter() - started:.0f} s so far)")
    print(f"counting environment: {environment_key(environment)}")
    if args.accept:
        entries = work_baseline.entries_from_runs(runs)
        path = work_baseline.work_path(args.baseline_dir)
        work_baseline.save(path, work_baseline.merged(old, environment, entries))
        print(f"wrote {len(entries)} work entries from {args.runs} run(s) into {path}; widest spread "
              f"{max(e.spread for e in entries.values()):.3%}")
        old = work_baseline.load(path)
    figures = runs[-1]
    verdicts = judge(figures, old, environment, tolerances)
    print(table(figures, verdicts, work.references))
    failed = [v for v in verdicts.values() if v is not None and v.status is Status.FAIL]
    ungated = sum(v is None for v in verdicts.values())
    for v in failed:
        print(v.message)
    for v in verdicts.values():
        if v is not None and v.message and v.status is Status.PASS:
            print(f"{v.case_id}: {v.message}")
    print(f"work gate: {len(failed)} failed, {len(verdicts) - len(failed) - ungated} passed, {ungated} not gated "
          f"(no baseline entry), in {time.perf_counter() - started:.0f} s")
    if ungated == len(verdicts) and old is not None:
        print(f"work not gated: {work_baseline.work_path(args.baseline_dir)} holds no entry for this counting "
              f"environment; it holds: {'; '.join(old.environments) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
