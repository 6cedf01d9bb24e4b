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
from harness.backends.base import Runner
from harness.cache import Cache
from harness.case import Case, generate_cases
from harness.errors import ModelError, OptbenchError, one_line
from harness.gate import BASELINE_CHECKS, QualityComparison, Status, Tolerances, Verdict, check_baseline, check_contract
from harness.measure import Settings, default_timer, measure_case, prepare_reference, reference_outputs
from harness.record import Record
from harness.report import json_report
from harness.result import RunResult, clean
from harness.techniques.base import Context, Reference
from model_zoo import MODELS
from model_zoo.training import load_reference

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


@dataclasses.dataclass
class Outcome:
    """What became of one case: ``status`` is pass, fail, known, new, error or skipped."""

    case: Case
    status: str
    record: Record | None = None
    verdicts: list[Verdict] = dataclasses.field(default_factory=list)
    message: str = ""


class OptbenchSession:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.cache = Cache(options.cache_dir)
        self.settings = Settings(options.threads, options.throughput_time_s)
        self.outcomes: dict[tuple[str, str], Outcome] = {}  # by Case.key: (suite, case id)
        self.baselines: dict[str, baselines.BaselineFile | None] = {}
        self.environment = env.capture(options.threads)
        self.started = dt.datetime.now(dt.UTC)
        self._references: dict[str, tuple[Reference, Any]] = {}
        self._model_errors: dict[str, str] = {}  # model → the one line its first failure gave
        self._threads_set = False
        # The fp32 reference runner of each (model, backend), kept open so every case is timed interleaved with it.
        self._ref_runners: dict[tuple[str, str], Runner] = {}
        self.run_file: Path | None = None
        self.result: RunResult | None = None
        self.report_file: Path | None = None
        self.finish_error = ""

    # -- collection -------------------------------------------------------------------------------------
    def cases(self, suite: str) -> list[Case]:
        o = self.options
        return generate_cases(suite, o.models, o.configs, o.backends)

    def load_baselines(self, suites: set[str]) -> None:
        """Read every collected suite's baseline up front: a corrupt file stops the run before any work."""
        for suite in sorted(suites):
            path = baselines.baseline_path(self.options.baseline_dir, suite)
            self.baselines[suite] = baselines.load(path)

    # -- running ----------------------------------------------------------------------------------------
    def _set_threads(self) -> None:
        if not self._threads_set:
            torch.set_num_threads(self.options.threads)
            self._threads_set = True

    def _release_runners_except(self, model: str) -> None:
        for key in [k for k in self._ref_runners if k[0] != model]:
            self._ref_runners.pop(key).close()

    def reference(self, model: str) -> tuple[Reference, Any]:
        """The model's reference and its outputs; a model that fails to build, load its data or train fails
        every one of its cases with the same one line, without trying again."""
        if model in self._model_errors:
            raise ModelError(self._model_errors[model])
        if model not in self._references:
            try:
                ref = load_reference(MODELS.get(model), self.cache)
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
            ctx = Context(self.cache, self.options.threads)
            key = (case.model, case.backend)
            if key not in self._ref_runners and not case.is_reference and ref_outcome is None:
                self._ref_runners[key] = prepare_reference(ref, case.backend, self.settings, ctx)
            record, runner = measure_case(
                case, ref, ref_out, self.settings, ctx,
                timer=_benchmark_timer(benchmark, case),
                reference_record=ref_outcome.record if ref_outcome is not None else None,
                reference_runner=self._ref_runners.get(key),
                keep_runner=case.is_reference,
            )
            if runner is not None:  # another suite's reference of the same model and backend is replaced
                old = self._ref_runners.pop((case.model, case.backend), None)
                if old is not None:
                    old.close()
                self._ref_runners[(case.model, case.backend)] = runner
        except OptbenchError as exc:
            message = str(exc) if str(exc).startswith(case.id) else f"{case.id}: {exc}"
            self.outcomes[case.key] = Outcome(case, "error", message=message)
            record = None
        except Exception as exc:  # a bug or a library failure: still an error row in the table and the run record
            self.outcomes[case.key] = Outcome(case, "error", message=f"{case.id}: {one_line(exc)}")
            raise
        if record is None:
            pytest.fail(self.outcomes[case.key].message, pytrace=False)
        benchmark.extra_info.update({"case": case.id, "speedup": record.speedup, "quality": record.quality.value})
        outcome = self.judge(case, record)
        self.outcomes[case.key] = outcome
        if outcome.status == "fail":
            pytest.fail(outcome.message, pytrace=False)
        if outcome.status == "known":
            pytest.xfail(outcome.message)

    def judge(self, case: Case, record: Record) -> Outcome:
        baseline = self.baselines.get(case.suite)
        entry = baseline.cases.get(case.id) if baseline is not None else None
        metrics = record.metrics()
        accepted = entry.accepted_failures if entry is not None else frozenset()
        verdicts = check_contract(case.id, metrics, case.config.expectations(), accepted)
        if entry is not None:
            comparable = env.comparable_scopes(baseline.environment, self.environment) if baseline else frozenset()
            quality = QualityComparison.of(record.identity, entry.identity)
            verdicts += check_baseline(case.id, metrics, entry.metrics, self.options.tolerances, comparable, quality)
        failed = [v.message for v in verdicts if v.status is Status.FAIL]
        known = [v.message for v in verdicts if v.status is Status.KNOWN]
        if self.options.update_baselines:
            # Accepting this run: baseline checks are reported, not enforced; an unmet contract is accepted as a
            # finding and still shown as one ("known"), never as a plain pass.
            unmet = [v for v in verdicts if v.source == "contract" and v.status in (Status.FAIL, Status.KNOWN)]
            status = "known" if unmet else "pass"
            return Outcome(case, status, record, verdicts, "\n".join(failed + known))
        if failed:
            return Outcome(case, "fail", record, verdicts, "\n".join(failed))
        if entry is None:
            if self.options.allow_new:
                return Outcome(case, "new", record, verdicts, f"{case.id}: new case (no baseline)")
            path = baselines.baseline_path(self.options.baseline_dir, case.suite)
            return Outcome(
                case, "fail", record, verdicts,
                f"{case.id}: no baseline in {path}; accept it with --optbench-update-baselines, "
                "or run with --optbench-allow-new",
            )
        if known:
            return Outcome(case, "known", record, verdicts, "\n".join(known))
        return Outcome(case, "pass", record, verdicts)

    def skipped(self, case: Case, reason: str) -> None:
        self.outcomes.setdefault(case.key, Outcome(case, "skipped", message=reason))

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
            "environment": self.environment,
            "options": options,
            "baselines": {suite: self._baseline_info(suite) for suite in sorted(self.baselines)},
            "cases": list(cases),
        })
        return RunResult(**{**data, "cases": tuple(data["cases"])}, commit=commit)

    def _baseline_info(self, suite: str) -> dict[str, Any]:
        """Which baseline a suite was judged against, where it was taken, and which figures were gated against it
        (a figure is not when its tolerance is off or the baseline was taken on other hardware)."""
        baseline = self.baselines[suite]
        info: dict[str, Any] = {"path": str(baselines.baseline_path(self.options.baseline_dir, suite)),
                                "environment": None, "compared": []}
        if baseline is not None:
            info["environment"] = baseline.environment
            scopes = env.comparable_scopes(baseline.environment, self.environment)
            tolerances = self.options.tolerances
            info["compared"] = [chk.name for chk in BASELINE_CHECKS
                                if chk.scope in scopes and getattr(tolerances, chk.tolerance_field) is not None]
        return info

    def finish(self, commit: str | None = None) -> RunResult | None:
        """Build the RunResult, write the run's JSON record and, when asked, the updated baselines. The record is
        written first, so a baseline that changed under the run still leaves it."""
        self._release_runners_except("")
        if not self.outcomes:
            return None
        result = self.build_result(commit=commit)
        self.run_file = json_report.write_run(result, self.options.results_dir)
        self.result = dataclasses.replace(result, source=str(self.run_file))
        if self.options.update_baselines:
            self._write_baselines()
        return self.result

    def _write_baselines(self) -> None:
        by_suite: dict[str, dict[str, baselines.BaselineEntry]] = {}
        for outcome in self.outcomes.values():
            if outcome.record is None:
                continue
            unmet = frozenset(
                v.check for v in outcome.verdicts if v.source == "contract" and v.status in (Status.FAIL, Status.KNOWN)
            )
            entry = baselines.entry_from_record(outcome.record, unmet)
            by_suite.setdefault(outcome.case.suite, {})[outcome.case.id] = entry
        for suite, entries in by_suite.items():
            path = baselines.baseline_path(self.options.baseline_dir, suite)
            old = baselines.load(path)  # a corrupt file raises here and is left as it is
            baselines.save(path, baselines.merged(old, suite, self.environment, entries))
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
