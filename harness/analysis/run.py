"""Running an analysis case: its variant's outputs on the sets the analysis asks for, its figures as a Record,
and its verdicts through the session's own gate (``OptbenchSession.judge``), so they reach the terminal table, the
JSON run record, the HTML report and the baselines like every other case's.

No case here is timed: interpretability and drift read outputs, and cost prices the throughput the quantization,
pruning and distillation cases measured. :class:`AnalysisRun` is the run-wide state (the price table and what
the cases of one model share: the reference's surrogate, the shifted sets and the reference's predictions on them),
one explicit object the plugin creates per run and hands to the suites.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from harness.analysis.prices import Price, price_table
from harness.artifact import Artifact
from harness.backends.base import BACKENDS, Runner
from harness.case import Case
from harness.errors import OptbenchError, one_line
from harness.gate import Status
from harness.measure import check_finite, param_counts
from harness.metrics.memory import MemoryStats, PeakRSS
from harness.metrics.quality import QualityStats
from harness.record import Record
from harness.techniques.base import Context, Reference, apply

Analyzer = Callable[["Prepared", "AnalysisRun"], tuple[dict[str, float], dict[str, Any]]]


@dataclasses.dataclass
class Prepared:
    """A case's variant prepared on its backend, with what every analysis needs: the reference, the test
    outputs and their quality. ``predict`` runs the variant on any inputs."""

    case: Case
    reference: Reference
    reference_outputs: np.ndarray
    artifact: Artifact
    runner: Runner
    test_outputs: np.ndarray
    quality: QualityStats
    ctx: Context

    def predict(self, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
        """The variant's outputs on ``inputs``, in the model's throughput batches; NaN or Inf fails the case."""
        step = self.reference.spec.throughput_batch
        n = int(inputs[0].shape[0])
        out = np.concatenate([self.runner(tuple(t[i:i + step] for t in inputs)) for i in range(0, n, step)])
        check_finite(out, self.case.id)
        return out


def reference_predict(reference: Reference, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    """The fp32 reference module's outputs on ``inputs`` in torch eager (what 'agrees with the reference' means)."""
    step = reference.spec.throughput_batch
    with torch.inference_mode():
        parts = [reference.module(*(t[i:i + step] for t in inputs)).float().numpy()
                 for i in range(0, int(inputs[0].shape[0]), step)]
    return np.concatenate(parts)


@dataclasses.dataclass
class AnalysisRun:
    """Run-wide state of the analysis suites: the price table and a memo of what one model's cases share,
    keyed by (model, what) — the reference surrogate, a shifted set, the reference's predictions on it."""

    prices: tuple[Price, ...] = dataclasses.field(default_factory=price_table)
    shared: dict[tuple[str, ...], Any] = dataclasses.field(default_factory=dict)
    analyzers: dict[str, Analyzer] = dataclasses.field(default_factory=dict)

    def memo(self, key: tuple[str, ...], make: Callable[[], Any]) -> Any:
        if key not in self.shared:
            self.shared[key] = make()
        return self.shared[key]

    def forget_except(self, model: str) -> None:
        """Cases run model by model: what another model's cases shared is dropped (its arrays are large)."""
        for key in [k for k in self.shared if k[0] != model]:
            del self.shared[key]

    def run(self, session: Any, case: Case) -> None:
        """Measure and judge one analysis case in ``session`` (an OptbenchSession); fail, skip or xfail the
        calling test as the session does for its own cases."""
        from harness.analysis import cost
        from harness.session import Outcome

        torch.set_num_threads(session.options.threads)
        self.forget_except(case.model)
        try:
            if case.suite == cost.SUITE:
                found = cost.record(session, case, self.prices)
                if isinstance(found, str):
                    session.outcomes[case.key] = Outcome(case, Status.SKIPPED, message=found)
                    pytest.skip(found)
                record = found
            else:
                record = self._measure(session, case)
            outcome = session.judge(case, record)
        except OptbenchError as exc:
            message = str(exc) if str(exc).startswith(case.id) else f"{case.id}: {exc}"
            session.outcomes[case.key] = Outcome(case, Status.ERROR, message=message)
            pytest.fail(message, pytrace=False)
        except Exception as exc:
            session.outcomes[case.key] = Outcome(case, Status.ERROR, message=f"{case.id}: {one_line(exc)}")
            raise
        session.outcomes[case.key] = outcome
        if outcome.status == Status.FAIL:
            pytest.fail(outcome.message, pytrace=False)
        if outcome.status == Status.KNOWN:
            pytest.xfail(outcome.message)

    def _measure(self, session: Any, case: Case) -> Record:
        reference, ref_out = session.reference(case.model)
        ctx = Context(session.cache, session.options.threads, session.options.seed_offset)
        analyzer = self.analyzers[case.suite]
        # NumPy's BLAS at the session's thread count too: on a 2-core runner its default threads contend with
        # torch's and with anything else running (a kernel-MMD permutation test ran 5x slower so).
        with threadpool_limits(session.options.threads), \
                prepared(case, reference, ref_out, ctx) as (prep, memory, prepare_s):
            started = time.perf_counter()
            proof, details = analyzer(prep, self)
            details["analysis_s"] = time.perf_counter() - started
            return build_record(prep, memory, prepare_s, proof, details)


@contextmanager
def prepared(case: Case, reference: Reference, ref_out: np.ndarray,
             ctx: Context) -> Iterator[tuple[Prepared, MemoryStats, float]]:
    """The case's variant (through the cache) prepared on its backend, its test outputs and quality; peak memory
    covers the three, as for a timed case. The runner is closed on exit."""
    spec = reference.spec
    started = time.perf_counter()
    artifact = apply(reference, case.config, ctx)
    backend = BACKENDS.get(case.backend)(Context(ctx.cache, ctx.threads))
    with PeakRSS(interval_s=0.002) as mem:
        runner = backend.prepare(artifact, spec.example_inputs(2), spec.input_names)
        prepare_s = time.perf_counter() - started
        try:
            prep = Prepared(case, reference, ref_out, artifact, runner, np.empty(0), None, ctx)  # type: ignore[arg-type]
            prep.test_outputs = prep.predict(reference.splits.test.inputs)
        except BaseException:
            runner.close()
            raise
    prep.quality = spec.quality.evaluate(prep.test_outputs, ref_out, reference.splits.test.targets,
                                         reference.splits.extra)
    try:
        yield prep, mem.stats(None), prepare_s
    finally:
        runner.close()


def build_record(prep: Prepared, memory: MemoryStats, prepare_s: float, proof: dict[str, float],
                 details: dict[str, Any]) -> Record:
    """The case's Record: quality, size and counts measured here, the analysis's figures as ``proof`` (kept in
    the baseline and checked for presence), its curves and texts in ``details``; nothing timed."""
    case, reference, artifact = prep.case, prep.reference, prep.artifact
    params, nonzero = param_counts(artifact)
    weights = f"{reference.weights_digest}+{artifact.weights}" if artifact.weights else reference.weights_digest
    return Record(
        case_id=case.id, suite=case.suite, model=case.model, config_name=case.config.name,
        technique=type(case.config).technique, config=case.config.to_dict(), backend=case.backend,
        device=prep.runner.device, threads=prep.ctx.threads, precision=case.config.precision.value,
        is_reference=case.is_reference, latency=None, throughput=None, memory=memory,
        size_bytes=prep.runner.size_bytes, params=params, nonzero_params=nonzero, quality=prep.quality,
        speedup=None, paired=None, throughput_speedup=None, prepare_s=prepare_s, proof=proof,
        identity={"weights": weights, **artifact.machine_choices}, details={"analysis": details},
    )
