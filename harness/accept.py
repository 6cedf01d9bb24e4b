"""Accept a baseline from several runs: each kept figure is the median over the runs' records.

One run's speedup can sit at the edge of its spread (measured on a 2-core runner: digits_resnet's ConvInteger
case read 0.50x in the run that became the baseline and 0.34-0.40x in the four after it, so one no-change run
came within 6 % of failing). The median of a few runs is a baseline the next run scatters around::

    python -m harness.accept results/run-A.json results/run-B.json results/run-C.json

Each case's entry also stores the relative spread of its speed figures across the runs (``spread``): the gate's
threshold for the case is the larger of a minimum effect and k x that spread (see harness.gate.Tolerances), so
accept from three or more runs to calibrate it. Before writing, it prints per case and figure old -> new and what
would now fail (``--dry-run`` stops there).

The runs must come from one machine class (ISA features, cores, threads, GPU, library versions) and agree on every
case's identity (same reference weights and machine choices); anything else is refused with the file and case
named, and the baseline file is left as it was. Only the runs' class is replaced; cases the runs do not hold
keep their old entry, as with ``--optbench-update-baselines``.

Records of a run split across CI machines are merged first with ``--merge`` (every record given is a shard of one
run; see docs/ci.md), or accepted as the merged records ``python -m harness.report --merge`` writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from harness import baselines, env
from harness.errors import OptbenchError
from harness.metrics.latency import relative_spread
from harness.result import RunResult

SPEED_FIGURES = ("speedup", "latency.normalized")  # the figures whose spread calibrates the gate


class AcceptError(OptbenchError):
    """The runs cannot make one baseline."""


def _load_run(path: Path) -> dict[str, Any]:
    """The parts of a run record accepting reads; an unreadable or foreign record raises RunRecordError naming it.
    Accepting reads figures, never raw samples: the samples file is not opened."""
    return _parts(RunResult.load(path, samples=False))


def _parts(run: RunResult) -> dict[str, Any]:
    stale = {suite: set(info.get("stale") or ()) for suite, info in run.baselines.items()}
    return {"environment": run.environment, "cases": list(run.cases), "stale": stale}


def stale_entries(runs: dict[Path, dict[str, Any]], suite: str) -> set[str]:
    """The baseline entries of ``suite`` that every run reported as stale (no case of its selection made them)."""
    sets = [run.get("stale", {}).get(suite, set()) for run in runs.values()]
    return set.intersection(*sets) if sets else set()


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def accepted(case_id: str, check: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``--accept-known`` (or ``--optbench-accept-known``) names this unmet contract: a ``case:check``
    pattern (fnmatch) or a bare check name."""
    return any(p == check or fnmatch.fnmatchcase(f"{case_id}:{check}", p) for p in patterns)


def one_class(runs: dict[Path, dict[str, Any]]) -> dict[str, Any]:
    """The first run; any run of another machine class is refused, naming it (a baseline entry comes from one)."""
    (first_path, first), *others = runs.items()
    for path, run in others:
        diff = env.class_difference(run["environment"], first["environment"])
        if diff:
            raise AcceptError(f"run record {path}: measured on another machine class than {first_path} "
                              f"({', '.join(diff)} differ); a baseline entry comes from one class")
    return first


def entries_from_runs(runs: dict[Path, dict[str, Any]], accept_known: tuple[str, ...] = (),
                      ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The runs' common environment and, per suite, ``case_id -> BaselineEntry`` with median figures. A contract
    a run failed becomes a finding only where ``accept_known`` names it (one the baseline already accepted, "known"
    in the run, stays accepted); anything else unmet is refused, naming each, and nothing is written."""
    first = one_class(runs)
    by_case: dict[tuple[str, str], list[tuple[Path, dict[str, Any]]]] = {}
    for path, run in runs.items():
        for case in run["cases"]:
            if case.get("record") is not None:
                by_case.setdefault((case["suite"], case["case_id"]), []).append((path, case))
    suites: dict[str, dict[str, Any]] = {}
    refused: set[str] = set()
    for (suite, case_id), seen in sorted(by_case.items()):
        identity = seen[0][1]["record"].get("identity", {})
        for path, case in seen[1:]:
            if case["record"].get("identity", {}) != identity:
                raise AcceptError(f"run record {path}: case {case_id} has identity {case['record'].get('identity')},"
                                  f" {seen[0][0]} has {identity}; accept runs made from the same weights and choices")
        names = {k for _, c in seen for k in c["record"]["metrics"] if baselines.is_kept(k)}
        metrics = {k: baselines.round_figure(_median([c["record"]["metrics"].get(k) for _, c in seen]))
                   for k in sorted(names)}
        unmet = frozenset(v["check"] for _, c in seen for v in c.get("verdicts", [])
                          if v["source"] == "contract" and v["status"] in ("fail", "known"))
        refused.update(f"{case_id}:{v['check']}" for _, c in seen for v in c.get("verdicts", [])
                       if v["source"] == "contract" and v["status"] == "fail"
                       and not accepted(case_id, v["check"], accept_known))
        spread = {}
        if len(seen) > 1:
            for name in SPEED_FIGURES:
                values = [c["record"]["metrics"].get(name) for _, c in seen]
                if sum(v is not None for v in values) > 1:
                    spread[name] = round(relative_spread(values), 4)
        suites.setdefault(suite, {})[case_id] = baselines.BaselineEntry(
            {k: v for k, v in metrics.items() if v is not None}, unmet, seen[-1][1]["record"]["config"],
            dict(identity), spread, len(seen))
    if refused:
        names = sorted(refused)
        raise AcceptError(f"{len(names)} unmet contract(s) not accepted as findings: {', '.join(names[:8])}"
                          f"{', ...' if len(names) > 8 else ''}; fix them, or accept each with --accept-known "
                          "CASE:CHECK (nothing was written)")
    return first["environment"], suites


def widened(old: baselines.BaselineFile | None, environment: dict[str, Any],
            entries: dict[str, baselines.BaselineEntry]) -> dict[str, baselines.BaselineEntry]:
    """``entries`` with each speed figure's spread at least what the old entry of the class recorded: the noise a
    class showed before (cold runs, another chip of the class) still describes it."""
    own = old.for_environment(environment) if old is not None else None
    if own is None:
        return entries
    out = {}
    for case_id, entry in entries.items():
        before = own.cases.get(case_id)
        spread = dict(entry.spread)
        if before is not None:
            for name, value in before.spread.items():
                spread[name] = max(value, spread.get(name, 0.0))
        out[case_id] = dataclasses.replace(entry, spread=spread)
    return out


def load_runs(run_paths: list[Path], merge_shards: bool = False, allow_mixed: bool = False,
              ) -> dict[Path, dict[str, Any]]:
    """Each record's parts by path; with ``merge_shards``, the records are shards of one run and become one (refused
    across commits or machine classes unless ``allow_mixed``)."""
    if not merge_shards:
        return {path: _load_run(path) for path in run_paths}
    from harness.merge import merge

    merged = merge([RunResult.load(p, samples=False) for p in run_paths], allow_mixed=allow_mixed)
    return {Path(f"{len(run_paths)} merged shard records ({run_paths[0]}, ...)"): _parts(merged)}


def accept(run_paths: list[Path], baseline_dir: Path, *, dry_run: bool = False,
           show: Any = print, accept_known: tuple[str, ...] = (), keep_wider_spread: bool = False,
           suites: tuple[str, ...] = (), merge_shards: bool = False, allow_mixed: bool = False) -> list[Path]:
    """Merge the median of ``run_paths`` into each suite's baseline in ``baseline_dir``, after showing the change
    (``show`` gets each line); returns the files written (none with ``dry_run``). With ``merge_shards`` the records
    are the shards of one run."""
    if len(run_paths) < 1:
        raise AcceptError("give at least one run record (results/run-*.json)")
    runs = load_runs(run_paths, merge_shards, allow_mixed)
    runs = {path: {**run, "cases": [c for c in run["cases"] if not suites or c.get("suite") in suites]}
            for path, run in runs.items()}
    environment, by_suite = entries_from_runs(runs, accept_known)
    written = []
    for suite, entries in by_suite.items():
        path = baselines.baseline_path(baseline_dir, suite)
        old = baselines.load(path)  # a corrupt file raises here and is left as it is
        if keep_wider_spread:
            entries = widened(old, environment, entries)
        drop = stale_entries(runs, suite)
        new = baselines.merged(old, suite, environment, entries, drop=drop)
        show(f"{path}:")
        for line in baselines.diff_lines(old, new):
            show(f"  {line}")
        if not dry_run:
            baselines.save(path, new)
            written.append(path)
    return written


MIN_WEIGHTS = 3  # distinct reference weights a spread across weights is measured from, at the least


def weights_spread(run_paths: list[Path], baseline_dir: Path, *, dry_run: bool = False, show: Any = print,
                   ) -> list[Path]:
    """Record how far each case's ``quality.value``, and the figure of each contract judged on one trained draw's
    items (``Expectation.across_weights``: retention, fragility, rule fidelity), scattered across the runs'
    reference weights (the sample standard deviation over distinct weights): runs with ``--optbench-seed-offset``
    (or of several machines of one class) train other weights from the same recipes. The gate then compares
    quality on other weights within its prediction interval (``weights_alpha``) and widens those contracts'
    intervals by it. Each spread goes into the entry the runs are judged against: their own class's, or, where
    their class has none for the case, the latest other class's. Figures and speed spreads are left as they are;
    figures seen with fewer than ``MIN_WEIGHTS`` weights are named and left alone."""
    runs = {path: _load_run(path) for path in run_paths}
    first = one_class(runs)
    seen: dict[str, dict[str, dict[str, dict[str, float]]]] = {}  # suite -> case -> metric -> weights -> figure
    for run in runs.values():
        for case in run["cases"]:
            record = case.get("record") or {}
            metrics = record.get("metrics", {})
            names = {baselines.WEIGHTS_SPREAD} | {v["metric"] for v in case.get("verdicts", ())
                                                  if v.get("across_weights")}
            identity = json.dumps(record.get("identity", {}), sort_keys=True)
            for name in sorted(names):
                if metrics.get(name) is not None:
                    by_case = seen.setdefault(case["suite"], {}).setdefault(case["case_id"], {})
                    by_case.setdefault(name, {})[identity] = metrics[name]
    written = []
    for suite, cases in sorted(seen.items()):
        path = baselines.baseline_path(baseline_dir, suite)
        old = baselines.load(path)
        if old is None or not any(old.entry(case_id, first["environment"])[0] for case_id in cases):
            raise AcceptError(f"{path} holds no entry for the runs' cases; accept the baseline first")
        classes = dict(old.classes)
        for case_id, by_metric in sorted(cases.items()):
            entry, same_class = old.entry(case_id, first["environment"])
            if entry is None:
                continue
            key = next(k for k, c in classes.items() if c.cases.get(case_id) is entry)
            spread = dict(entry.spread)
            for metric, by_weights in sorted(by_metric.items()):
                if len(by_weights) < MIN_WEIGHTS:
                    if len(by_weights) > 1:
                        show(f"  {suite}: {case_id}: {metric}: {len(by_weights)} weights, fewer than {MIN_WEIGHTS}: "
                             "left alone")
                    continue
                value = round(statistics.stdev(by_weights.values()), 4)
                spread[metric], spread[metric + baselines.WEIGHTS_SUFFIX] = value, float(len(by_weights))
                show(f"  {suite}: {case_id}: {metric} across {len(by_weights)} weights "
                     f"{min(by_weights.values()):.4f} to {max(by_weights.values()):.4f}, spread {value:.4f}"
                     + ("" if same_class else f" (into class {key}, the entry this class is judged against)"))
            if spread != entry.spread:
                cls = classes[key]
                classes[key] = dataclasses.replace(cls, cases={**cls.cases,
                                                               case_id: dataclasses.replace(entry, spread=spread)})
        if classes != old.classes and not dry_run:
            baselines.save(path, dataclasses.replace(old, classes=classes))
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.accept", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run records, results/run-*.json")
    parser.add_argument("--baseline-dir", type=Path, default=Path("results/baselines"))
    parser.add_argument("--dry-run", action="store_true", help="show old -> new and what would fail; write nothing")
    parser.add_argument("--accept-known", metavar="CASE:CHECK", action="append", default=[],
                        help="accept this unmet contract as a finding (repeatable; CASE may hold * wildcards, a bare "
                             "CHECK matches every case); any other unmet contract is refused")
    parser.add_argument("--keep-wider-spread", action="store_true",
                        help="keep each speed figure's spread at least what the class's old entry recorded (runs "
                             "taken warm on one machine do not forget the noise cold runs or other chips showed)")
    parser.add_argument("--weights-spread", action="store_true",
                        help="instead of accepting figures, record each case's quality spread across the runs' "
                             "reference weights (runs with --optbench-seed-offset): what the gate allows on another "
                             "machine's weights")
    parser.add_argument("--suites", metavar="NAMES", default="",
                        help="comma-separated suites to accept (default: every suite the runs hold)")
    parser.add_argument("--merge", action="store_true",
                        help="the records are the shards of one run (CI machines, pytest --splits N --group i): "
                             "merge them into one run first; refused across commits or machine classes")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="with --merge: merge shard records of different commits or machine classes")
    args = parser.parse_args(argv)
    if args.allow_mixed and not args.merge:
        parser.error("--allow-mixed qualifies --merge: give --merge too")
    try:
        suites = tuple(s.strip() for s in args.suites.split(",") if s.strip())
        if args.weights_spread:
            for path in weights_spread(args.runs, args.baseline_dir, dry_run=args.dry_run):
                print(f"wrote the spread across weights into {path}")
            return 0
        written = accept(args.runs, args.baseline_dir, dry_run=args.dry_run, accept_known=tuple(args.accept_known),
                         keep_wider_spread=args.keep_wider_spread, suites=suites, merge_shards=args.merge,
                         allow_mixed=args.allow_mixed)
    except OptbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    runs = f"{len(args.runs)} shard record(s) merged into one run" if args.merge else f"{len(args.runs)} run(s)"
    for path in written:
        print(f"wrote {path} from the median of {runs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
