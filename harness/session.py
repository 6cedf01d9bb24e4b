"""State of one optbench run: generates cases, measures and judges them, writes results and baselines."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from harness import baselines, env
from harness.accept import accepted
from harness.cache import Cache
from harness.case import Case, chosen_presets, generate_cases, is_large, not_applicable, summarize_reasons
from harness.context import Context, StudyStorage
from harness.errors import ModelError, OptbenchError, one_line
from harness.gate import (
    BASELINE_CHECKS,
    LATENCY,
    WORK,
    OtherWeights,
    QualityComparison,
    Scope,
    Status,
    Tolerances,
    Verdict,
    check_baseline,
    check_contract,
    settle_by_work,
    weights_differ,
    with_second_look,
)
from harness.measure import CaseRun, ReferenceRunners, Settings, default_timer, reference_outputs
from harness.record import Record
from harness.report import json_report
from harness.result import RunResult, clean
from harness.techniques.base import Reference, presets
from harness.work.baseline import WorkBaseline, work_path
from harness.work.baseline import load as load_work_baseline
from harness.work.counter import Counter
from harness.work.counter import availability as counting_availability
from model_zoo import MODELS, ModelSpec
from model_zoo.training import REFERENCES_MEMO, load_reference
from model_zoo.traits import Traits, traits_of
from model_zoo.traits import unknown as unknown_traits

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Options:
    models: tuple[str, ...] | None
    configs: tuple[str, ...] | None
    backends: tuple[str, ...] | None
    update_baselines: bool
    allow_new: bool
    baseline_dir: Path
    results_dir: Path
    cache_dir: Path
    threads: int
    tolerances: Tolerances
    throughput_time_s: float
    require_baseline_class: bool = False  # a run on a machine class with no baseline fails instead of gating less
    # With update_baselines: unmet contracts accepted as findings, as fnmatch patterns of "case_id:check" (a bare
    # check name matches it in every case). Anything else unmet is refused, and its case keeps its old entry.
    accept_known: tuple[str, ...] = ()
    seed_offset: int = 0  # added to every training seed (Context.seed_offset)
    count: bool = False  # count each case's work under Valgrind and gate it (harness.work)
    keep_runs: int = 0  # run records kept in results_dir after this run's is written (0: all; --optbench-keep-runs)
    large: bool = False  # models tagged "large" join a run that names no models (pytest -m large)
    # Where Optuna studies live (--optbench-optuna-storage); the default keeps them in memory.
    study_storage: StudyStorage = dataclasses.field(default_factory=StudyStorage)


# A case whose speed interval crosses its limit is re-measured this many times (one interleaved block each, pooled)
# before the failure stands: a second look, as Chromium's Pinpoint does with its "unknown" verdict.
MAX_RETRIES = 2


def _second_look_said(line: str, retries: int) -> str:
    """A speed line that stood its second look says so (before what the work count made of it, if anything)."""
    if " beyond its threshold: " not in line:
        return line
    head, sep, settled = line.partition("; but work per inference")
    return f"{head} (still beyond after {retries} more interleaved block(s), pooled){sep}{settled}"


@dataclasses.dataclass
class Outcome:
    """What became of one case: ``status`` is one of gate.Status (pass, fail, known, new, error, skipped)."""

    case: Case
    status: Status
    record: Record | None = None
    verdicts: list[Verdict] = dataclasses.field(default_factory=list)
    message: str = ""
    retries: int = 0  # how many extra interleaved blocks the gate asked for

    @property
    def retry(self) -> bool:
        """A failure of speed figures only, not yet confirmed by more interleaved blocks: worth a second look."""
        failed = [v for v in self.verdicts if v.status is Status.FAIL]
        return self.status is Status.FAIL and bool(failed) and all(v.retry for v in failed)


class OptbenchSession:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.cache = Cache(options.cache_dir)
        # The run's one context: every case, technique and backend of this run gets it (or a copy at other threads).
        self.ctx = Context(self.cache, options.threads, options.seed_offset, optuna=options.study_storage)
        self.settings = Settings(options.threads, options.throughput_time_s)
        self.outcomes: dict[tuple[str, str], Outcome] = {}  # by Case.key: (suite, case id)
        self.baselines: dict[str, baselines.BaselineFile | None] = {}
        self.environment = env.capture(options.threads)
        self.started = dt.datetime.now(dt.UTC)
        self._references: dict[str, tuple[Reference, Any]] = {}
        self._model_errors: dict[str, str] = {}  # model → the one line its first failure gave
        self._traits: dict[str, Traits] = {}  # model → its traits, found once per run (building the model)
        self.not_applicable: dict[str, dict[str, dict[str, str]]] = {}  # suite → model → preset → reason
        self.empty_suites: set[str] = set()  # suites collected with no case at all
        self.generated: dict[str, set[str]] = {}  # suite → the case ids collection made
        self.stale: dict[str, list[str]] = {}  # suite → baseline case ids this run's selection no longer makes
        self.accepted_known: list[str] = []  # "case_id:check" accepted as findings by --optbench-accept-known
        self._threads_set = False
        # The fp32 reference runner of each (model, backend), kept open so every case is timed interleaved with it.
        self._ref_runners = ReferenceRunners(self.settings)
        self.machine_class = env.machine_class(self.environment)
        self.baseline_changes: list[str] = []  # old -> new per case and figure, printed when baselines are updated
        self.run_file: Path | None = None
        self.pruned: list[Path] = []  # old run files deleted after this run's record was written
        self.result: RunResult | None = None
        self.report_file: Path | None = None
        self.finish_error = ""
        # Work counted under Valgrind (--optbench-count): the counter, or why there is none, said once.
        self.counter: Counter | None = None
        self.work_note = ""
        self.work_baseline: WorkBaseline | None = None
        self._work_baseline_path: Path | None = None  # set once the work baseline is loaded
        # Without --optbench-count: a counter started only to settle a latency failure (_settle), and why not.
        self._arbiter: Counter | None = None
        self._arbiter_note: str | None = None
        if options.count:
            available = counting_availability()
            if available.ok:
                self.counter = Counter(self.cache)
            else:
                self.work_note = f"work: not counted: {available.reason}"

    # -- collection -------------------------------------------------------------------------------------
    def traits(self, spec: ModelSpec) -> Traits:
        """``spec``'s traits, found once per run; a model that cannot be built or called fails here with one line
        naming it (its cases then fail with that line)."""
        if spec.name not in self._traits:
            try:
                self._traits[spec.name] = traits_of(spec)
            except OptbenchError as exc:
                self._model_errors.setdefault(spec.name, str(exc))
                self._traits[spec.name] = unknown_traits(spec)
        return self._traits[spec.name]

    def cases(self, suite: str) -> list[Case]:
        """The suite's cases; what does not apply to a model is kept, per model, for the run's header."""
        o = self.options
        cases = generate_cases(suite, o.models, o.configs, o.backends, traits=self.traits, large=o.large)
        self.not_applicable[suite] = not_applicable(suite, o.models, o.configs, traits=self.traits, large=o.large)
        self.generated.setdefault(suite, set()).update(c.id for c in cases)
        if not cases:
            self.empty_suites.add(suite)
        return cases

    def header_lines(self) -> list[str]:
        """What the run says before it starts: per (suite, model) what does not apply and why, suites with no case,
        and baseline entries no case of this selection makes any more."""
        lines = []
        for suite in sorted(self.not_applicable):
            total = len(chosen_presets(suite, self.options.configs, self.options.large))
            for model, reasons in sorted(self.not_applicable[suite].items()):
                lines.append(summarize_reasons(suite, model, reasons, total))
        if self.work_note:
            lines.append(self.work_note)
        lines += [f"{suite}: no case to run (every model filtered out or not applicable)"
                  for suite in sorted(self.empty_suites)]
        for suite, ids in sorted(self.stale.items()):
            lines.append(f"{suite}: {len(ids)} stale baseline entr{'y' if len(ids) == 1 else 'ies'} no case makes any "
                         f"more: {', '.join(ids[:6])}{', ...' if len(ids) > 6 else ''} (removed by "
                         "--optbench-update-baselines)")
        return lines

    def load_baselines(self, suites: set[str]) -> None:
        """Read every collected suite's baseline up front: a corrupt file stops the run before any work."""
        for suite in sorted(suites):
            path = baselines.baseline_path(self.options.baseline_dir, suite)
            self.baselines[suite] = baselines.load(path)

    def find_stale(self) -> None:
        """Baseline entries of this machine class that no case of the selection makes any more (a renamed preset,
        a removed model): reported, never silently passed. Only entries inside the selection (models, configs,
        backends asked for) count; another class's entries are its own runners' to retire."""
        for suite, ids in self.generated.items():
            baseline = self.baselines.get(suite)
            own = baseline.for_environment(self.environment) if baseline is not None else None
            if own is None:
                continue
            stale = sorted(cid for cid in own.cases if cid not in ids and self._selected(suite, cid))
            if stale:
                self.stale[suite] = stale

    def _selected(self, suite: str, case_id: str) -> bool:
        o = self.options
        rest, _, backend = case_id.rpartition("-")  # model-config-backend; a model's name may hold "-"
        model, _, config = rest.rpartition("-")
        chosen = model in o.models if o.models else o.large or not is_large(model)
        suite_presets = presets(suite)
        large_config = config in suite_presets and suite_presets.get(config).is_large()
        config_chosen = config in o.configs or config == "fp32" if o.configs else o.large or not large_config
        return chosen and config_chosen and (not o.backends or backend in o.backends)

    # -- running ----------------------------------------------------------------------------------------
    def _set_threads(self) -> None:
        if not self._threads_set:
            torch.set_num_threads(self.options.threads)
            self._threads_set = True

    def _release_runners_except(self, model: str) -> None:
        self._ref_runners.close_except(model)

    def reference(self, model: str) -> tuple[Reference, Any]:
        """The model's reference and its outputs; a model that fails to build, load its data or train fails
        every one of its cases with the same one line, without trying again."""
        if model in self._model_errors:
            raise ModelError(self._model_errors[model])
        if model not in self._references:
            try:
                spec = MODELS.get(model)
                if self.options.seed_offset and spec.recipe is not None:
                    spec = dataclasses.replace(spec, recipe=dataclasses.replace(
                        spec.recipe, seed=spec.recipe.seed + self.options.seed_offset))
                ref = load_reference(spec, self.cache, memo=self.ctx.memos.store(REFERENCES_MEMO))
                self._references[model] = (ref, reference_outputs(ref))
            except ModelError as exc:
                self._model_errors[model] = str(exc)
                raise
        return self._references[model]

    def run(self, case: Case, benchmark: Any) -> None:
        """Measure and judge one case; fail the calling test with one message per failed check."""
        self._set_threads()
        try:
            self._release_runners_except(case.model)
            ref, ref_out = self.reference(case.model)
            ref_outcome = self.outcomes.get(case.reference_key)
            ctx = self.ctx
            ref_runner = None
            if not case.is_reference:
                ref_runner = self._ref_runners.peek(case.model, case.backend)
                if ref_runner is None and ref_outcome is None:
                    ref_runner = self._ref_runners.get(ref, case.backend, ctx)
            ref_record = ref_outcome.record if ref_outcome is not None else None
            with CaseRun(case, ref, self.settings, ctx) as measuring:
                measuring.prepare(ref_out)
                measuring.time(_benchmark_timer(benchmark, case))
                measuring.pair(ref_runner)
                if self.counter is not None:
                    measuring.count(self.counter)
                outcome, retries = with_second_look(
                    lambda: self.judge(case, measuring.record(ref_record)), lambda o: o.retry, measuring.pair_more,
                    MAX_RETRIES, settle=lambda o: self._settle(case, measuring, ref_record, o))
                outcome.retries, record = retries, outcome.record
                if retries:  # only speed lines can be left after a second look
                    outcome.message = "\n".join(_second_look_said(line, retries)
                                                 for line in outcome.message.splitlines())
                if case.is_reference:  # another suite's reference of the same model and backend is replaced
                    self._ref_runners.adopt(case.model, case.backend, measuring.release())
        except OptbenchError as exc:
            message = str(exc) if str(exc).startswith(case.id) else f"{case.id}: {exc}"
            self.outcomes[case.key] = Outcome(case, Status.ERROR, message=message)
            record = None
        except Exception as exc:  # a bug or a library failure: still an error row in the table and the run record
            self.outcomes[case.key] = Outcome(case, Status.ERROR, message=f"{case.id}: {one_line(exc)}")
            raise
        if record is None:
            pytest.fail(self.outcomes[case.key].message, pytrace=False)
        benchmark.extra_info.update({"case": case.id, "speedup": record.speedup, "quality": record.quality.value})
        self.outcomes[case.key] = outcome
        if outcome.status == "fail":
            pytest.fail(outcome.message, pytrace=False)
        if outcome.status == "known":
            pytest.xfail(outcome.message)

    def _latency_failed(self, outcome: Outcome) -> bool:
        return not self.options.update_baselines and any(
            v.check == LATENCY.name and v.status is Status.FAIL for v in outcome.verdicts)

    def _settle(self, case: Case, measuring: CaseRun, ref_record: Record | None, outcome: Outcome) -> Outcome:
        """The second look's last word: a latency failure that stood its re-measures is settled by counting the
        case's work under Valgrind (where it can be counted) and judging again with it; gate.settle_by_work says
        what that may change. Any other outcome is returned as it is."""
        if not self._latency_failed(outcome):
            return outcome
        counter = self.counter
        if counter is None:
            if self._arbiter_note is None:
                available = counting_availability()
                self._arbiter_note = "" if available.ok else available.reason
                if available.ok:
                    self._arbiter = Counter(self.cache)
            counter = self._arbiter
            if counter is None:
                return outcome
            try:
                measuring.count(counter)
            except OptbenchError as exc:  # the count failed: the latency failure stands, and says why
                outcome.message += f"\n{case.id}: work not counted to settle the latency failure: {one_line(exc)}"
                return outcome
        record = measuring.record(ref_record)
        work = self.judge_work(case, record, counter)
        if not work or work[0].status is not Status.PASS:
            return self.judge(case, record, counter) if self.counter is None else outcome
        return self.judge(case, record, counter, settle=work[0])

    def judge(self, case: Case, record: Record, counter: Counter | None = None,
              settle: Verdict | None = None) -> Outcome:
        """Contracts, then the baseline entry of this machine class: speed is judged only there; with no entry of
        this class, another class's entry still gates the machine-independent figures (quality, size, proofs).
        ``counter`` judges work (the session's own with --optbench-count); ``settle``, a passed work verdict, turns a
        latency failure into an inconclusive one (gate.settle_by_work)."""
        baseline = self.baselines.get(case.suite)
        entry, same_class = baseline.entry(case.id, self.environment) if baseline is not None else (None, False)
        metrics = record.metrics()
        accepted = entry.accepted_failures if entry is not None else frozenset()
        spreads = baselines.across_weights(entry.spread) if entry is not None else {}
        why = weights_differ(record.identity, entry.identity) if entry is not None else ""
        other = OtherWeights(spreads, self.options.tolerances.weights_alpha, why) if why else None
        verdicts = check_contract(case.id, metrics, case.config.expectations(), accepted, other)
        if entry is not None:
            comparable = frozenset({Scope.ANYWHERE, Scope.SAME_CLASS} if same_class else {Scope.ANYWHERE})
            quality = QualityComparison.of(record.identity, entry.identity)
            quality_sd, quality_n = spreads.get(baselines.WEIGHTS_SPREAD, (None, 3))
            verdicts += check_baseline(case.id, metrics, entry.metrics, self.options.tolerances, comparable, quality,
                                       spread=entry.spread if same_class else {}, samples=record.samples(),
                                       weights_spread=quality_sd, weights_n=quality_n)
        verdicts += self.judge_work(case, record, counter or self.counter)
        if settle is not None:
            verdicts = settle_by_work(verdicts, settle)
        failed = [v.message for v in verdicts if v.status is Status.FAIL]
        known = [v.message for v in verdicts if v.status is Status.KNOWN]
        undecided = [v.message for v in verdicts if v.status is Status.INCONCLUSIVE]
        if self.options.update_baselines:
            return self._accepting(case, record, verdicts, failed, known, undecided)
        path = baselines.baseline_path(self.options.baseline_dir, case.suite)
        if entry is not None and not same_class and self.options.require_baseline_class:
            failed.append(f"{case.id}: no baseline of this machine class ({self.machine_class}) in {path}; speed "
                          "was not gated (--optbench-require-baseline-class)")
        if failed:
            return Outcome(case, Status.FAIL, record, verdicts, "\n".join(failed))
        if entry is None:
            if self.options.allow_new:
                return Outcome(case, Status.NEW, record, verdicts, f"{case.id}: new case (no baseline)")
            return Outcome(
                case, Status.FAIL, record, verdicts,
                f"{case.id}: no baseline in {path}; accept it with --optbench-update-baselines, "
                "or run with --optbench-allow-new",
            )
        if known:
            return Outcome(case, Status.KNOWN, record, verdicts, "\n".join(known + undecided))
        if undecided:
            return Outcome(case, Status.INCONCLUSIVE, record, verdicts, "\n".join(undecided))
        return Outcome(case, Status.PASS, record, verdicts)

    def judge_work(self, case: Case, record: Record, counter: Counter | None) -> list[Verdict]:
        """The work gate: this case's instructions per inference against the work baseline of the counting
        environment (any machine class); nothing when counting is off or the case was not counted."""
        if counter is None:
            return []
        if self.work_baseline is None and self._work_baseline_path is None:
            self._work_baseline_path = work_path(self.options.baseline_dir)
            self.work_baseline = load_work_baseline(self._work_baseline_path)
        if record.work is None:  # a backend Valgrind cannot stand for: said on the case, not silently dropped
            why = record.details.get("work_not_counted")
            if not why:
                return []
            return [Verdict(case.id, WORK.name, "baseline", WORK.metric, Status.NOT_JUDGED, None, None, message=why)]
        current = float(record.work["instructions"])
        environment = counter.environment()
        entry = self.work_baseline.entry(case.id, environment) if self.work_baseline is not None else None
        if entry is None:
            return [Verdict(case.id, WORK.name, "baseline", WORK.metric, Status.NOT_JUDGED, current, None,
                            message=f"work not gated: no entry for this case and counting environment in "
                                    f"{work_path(self.options.baseline_dir)} (python -m harness.count --accept)")]
        return [WORK.judge(case.id, current, entry.instructions, entry.spread, self.options.tolerances)]

    def _accepting(self, case: Case, record: Record, verdicts: list[Verdict], failed: list[str], known: list[str],
                   undecided: list[str]) -> Outcome:
        """Accepting this run: baseline checks are reported, not enforced. An unmet contract becomes a finding
        ("known") only where the baseline already accepted it or ``accept_known`` names it; any other unmet
        contract fails the case, which then keeps its old baseline entry."""
        unmet = [v for v in verdicts if v.source == "contract" and v.status in (Status.FAIL, Status.KNOWN)]
        refused = []
        for v in unmet:
            if v.status is Status.KNOWN:
                continue
            if accepted(case.id, v.check, self.options.accept_known):
                self.accepted_known.append(f"{case.id}:{v.check}")
            else:
                refused.append(f"{v.message} (not accepted as a finding: name it with --optbench-accept-known "
                               f"{case.id}:{v.check})")
        if refused:
            return Outcome(case, Status.FAIL, record, verdicts, "\n".join(refused))
        if unmet:
            return Outcome(case, Status.KNOWN, record, verdicts, "\n".join(failed + known))
        status = Status.INCONCLUSIVE if undecided else Status.PASS
        return Outcome(case, status, record, verdicts, "\n".join(undecided))

    def skipped(self, case: Case, reason: str) -> None:
        self.outcomes.setdefault(case.key, Outcome(case, Status.SKIPPED, message=reason))

    # -- finishing --------------------------------------------------------------------------------------
    def build_result(self, finished: dt.datetime | None = None, commit: str | None = None) -> RunResult:
        """The run as one value, built once: what the JSON record holds and every report renders."""
        finished = finished or dt.datetime.now(dt.UTC)
        cases = tuple(
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
                # what the report draws for the case: its technique's declared section, figures and pictures
                "report": type(outcome.case.config).report_declaration(),
            }
            for outcome in self.outcomes.values()
        )
        options = {
            k: (str(v) if isinstance(v, Path) else dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v)
            for k, v in dataclasses.asdict(self.options).items()
        }
        data = clean({
            "started": self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "finished": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration_s": (finished - self.started).total_seconds(),
            "environment": {**self.environment, "counting": counting.environment()}
            if (counting := self.counter or self._arbiter) is not None and counting.started else self.environment,
            "options": options,
            "baselines": {suite: self._baseline_info(suite) for suite in sorted(self.baselines)},
            "cases": list(cases),
        })
        notes = self.header_lines() + [f"accepted as a finding (--optbench-accept-known): {item}"
                                       for item in self.accepted_known]
        return RunResult(**{**data, "cases": tuple(data["cases"])}, commit=commit, notes=tuple(notes))

    def _baseline_info(self, suite: str) -> dict[str, Any]:
        """Which baseline a suite was judged against, where it was taken, and which figures were gated against it
        (a figure is not when its tolerance is off or the baseline was taken on other hardware)."""
        baseline = self.baselines[suite]
        info: dict[str, Any] = {"path": str(baselines.baseline_path(self.options.baseline_dir, suite)),
                                "environment": None, "compared": [], "machine_class": self.machine_class,
                                "class_baseline": False, "classes": [], "stale": self.stale.get(suite, [])}
        if baseline is not None:
            info["classes"] = sorted(baseline.classes)
            own = baseline.for_environment(self.environment)
            info["class_baseline"] = own is not None
            if own is not None:  # a class may hold only some cases (those no other class could run natively)
                info["other_class_cases"] = sorted(cid for (s, cid), o in self.outcomes.items()
                                                   if s == suite and o.record is not None and cid not in own.cases)
            latest = own or max(baseline.classes.values(), key=lambda c: c.taken_at, default=None)
            info["environment"] = latest.environment if latest is not None else None
            scopes = env.comparable_scopes(latest.environment, self.environment) if latest else frozenset()
            tolerances = self.options.tolerances
            info["compared"] = [chk.name for chk in BASELINE_CHECKS
                                if chk.scope in scopes and getattr(tolerances, chk.tolerance_field) is not None]
        return info

    def finish(self, commit: str | None = None) -> RunResult | None:
        """Build the RunResult, write the run's JSON record and, when asked, the updated baselines. The record is
        written first, so a baseline that changed under the run still leaves it."""
        self._release_runners_except("")
        for counter in (self.counter, self._arbiter):
            if counter is not None:
                counter.close()
        if not self.outcomes:
            return None
        result = self.build_result(commit=commit)
        self.run_file = json_report.write_run(result, self.options.results_dir)
        self.pruned = json_report.prune_runs(self.options.results_dir, self.options.keep_runs)
        self.result = dataclasses.replace(result, source=str(self.run_file))
        if self.options.update_baselines:
            self._write_baselines()
        return self.result

    def _write_baselines(self) -> None:
        by_suite: dict[str, dict[str, baselines.BaselineEntry]] = {}
        for outcome in self.outcomes.values():
            if outcome.record is None or outcome.status is Status.FAIL:  # refused: the old entry stays
                continue
            unmet = frozenset(
                v.check for v in outcome.verdicts if v.source == "contract" and v.status in (Status.FAIL, Status.KNOWN)
            )
            entry = baselines.entry_from_record(outcome.record, unmet)
            by_suite.setdefault(outcome.case.suite, {})[outcome.case.id] = entry
        for suite, entries in by_suite.items():
            path = baselines.baseline_path(self.options.baseline_dir, suite)
            old = baselines.load(path)  # a corrupt file raises here and is left as it is
            new = baselines.merged(old, suite, self.environment, entries, drop=self.stale.get(suite, ()))
            self.baseline_changes += [f"{path}:", *(f"  {line}" for line in baselines.diff_lines(old, new))]
            baselines.save(path, new)
            logger.info("wrote baseline %s (%d cases updated)", path, len(entries))


def _benchmark_timer(benchmark: Any, case: Case) -> Any:
    """A Timer that runs the call through pytest-benchmark and returns its raw per-call samples."""

    def timer(fn: Any) -> list[float]:
        benchmark.group = f"{case.suite}: {case.model} on {case.backend}"
        benchmark(fn)
        stats = getattr(benchmark, "stats", None)
        if benchmark.disabled or stats is None:
            return default_timer(fn)  # benchmarking off (--benchmark-disable, xdist): still measure, our way
        return list(stats.stats.data)

    return timer
