"""Running an analysis case: its variant's outputs on the sets the analysis asks for, its figures as a Record,
and its verdicts through the session's own gate (``OptbenchSession.judge``), so they reach the terminal table, the
JSON run record, the HTML report and the baselines like every other case's.

No case here is timed: interpretability and drift read outputs, and cost prices the throughput the quantization,
pruning and distillation cases measured. :class:`AnalysisRun` is the run-wide state (the price table and what
the cases of one model share: the reference's surrogate, the shifted sets and the reference's predictions on them),
one explicit object the plugin creates per run and hands to the suites.

What an interpretability or drift case computes is a pure function of the variant's artifact, the reference (its
weights and data), the suite's settings, the machine and the code that computes it, so its figures are kept in the
optbench cache (namespace ``analysis``) under a key of all of these (:func:`figures_key`): a second run reads them
and only prepares the variant and measures its test quality, size and memory again. Editing an analysis module, a
setting or the artifact makes a new key. Cost is not cached: it prices this run's measured throughput.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import scipy
import sklearn
import torch
from threadpoolctl import threadpool_limits

from harness import env
from harness.analysis.prices import Price, price_table
from harness.artifact import Artifact
from harness.backends.base import BACKENDS, Runner
from harness.cache import atomic_write, make_key, source_hash
from harness.case import Case
from harness.errors import OptbenchError, one_line
from harness.gate import Status
from harness.measure import check_finite, param_counts
from harness.metrics.memory import MemoryStats, PeakRSS
from harness.metrics.quality import QualityStats
from harness.record import Record
from harness.techniques.base import Context, Reference, apply

logger = logging.getLogger(__name__)

NAMESPACE = "analysis"  # the optbench cache's folder of analysis figures
FORMAT = 1  # bumped when what a cache entry holds changes

Figures = tuple[dict[str, float], dict[str, Any]]  # (proof, details) of one case


@dataclasses.dataclass(frozen=True)
class Analyzer:
    """How a suite computes a case's figures, and what they depend on besides the variant and the reference:
    ``settings()`` reads the suite's settings as they are at the call (JSON-able: shifts, detector draws, seeds,
    surrogate), ``modules`` is the code that computes them (this module is always added)."""

    analyze: Callable[[Prepared, AnalysisRun], Figures]
    settings: Callable[[], dict[str, Any]]
    modules: tuple[ModuleType, ...] = ()

    def code_key(self) -> str:
        """A hash of the source of every module the figures come from: editing one makes new figures."""
        modules = {m.__name__: m for m in (sys.modules[__name__], *self.modules)}
        return make_key(*((name, source_hash(m)) for name, m in sorted(modules.items())))


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
        ctx = session.ctx
        analyzer = self.analyzers[case.suite]
        # NumPy's BLAS at the session's thread count too: on a 2-core runner its default threads contend with
        # torch's and with anything else running (a kernel-MMD permutation test ran 5x slower so).
        with threadpool_limits(session.options.threads), \
                prepared(case, reference, ref_out, ctx) as (prep, memory, prepare_s):
            proof, details = self.figures(prep, analyzer, env.machine_class(session.environment))
            return build_record(prep, memory, prepare_s, proof, details)

    def figures(self, prep: Prepared, analyzer: Analyzer, machine: str) -> Figures:
        """The case's (proof, details): read from the cache under :func:`figures_key`, else computed and kept.
        Computed figures go through the same JSON round trip a cached entry does, so a first and a second run
        record the same values; ``details["cache"]`` says which it was."""
        key = figures_key(prep, analyzer, machine)
        path = prep.ctx.cache.path(NAMESPACE, key, ".json")
        found = read_figures(path)
        if found is not None:
            proof, details = found
            details["cache"] = {"key": key, "hit": True}
            return proof, details
        started = time.perf_counter()
        proof, details = analyzer.analyze(prep, self)
        details["analysis_s"] = time.perf_counter() - started
        blob = json.dumps({"format": FORMAT, "key": key, "case": prep.case.id, "proof": proof, "details": details},
                          sort_keys=True, default=_plain)
        atomic_write(path, lambda tmp: tmp.write_text(blob))
        entry = json.loads(blob)
        proof, details = entry["proof"], entry["details"]
        details["cache"] = {"key": key, "hit": False}
        return proof, details


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as JSON (the analyzers return Python floats; this is a safety net)."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def figures_key(prep: Prepared, analyzer: Analyzer, machine: str) -> str:
    """Everything a case's figures depend on: the case and its config; the artifact's key (the content of what
    made it) and weights; the reference's key (its recipe, code and data) and weights digest; the model's batch,
    feature and class names; the suite's settings; the source of the analysis modules and of the backend; the
    machine class (CPU features, threads, torch and ONNX Runtime versions) and the numeric libraries' versions."""
    case, reference, artifact = prep.case, prep.reference, prep.artifact
    spec = reference.spec
    return make_key(
        NAMESPACE, FORMAT, case.suite, case.id, case.config.to_dict(), case.backend,
        artifact.key, artifact.weights, artifact.machine_choices, reference.key, reference.weights_digest,
        prep.ctx.seed_offset, spec.throughput_batch, spec.feature_names, spec.class_names,
        analyzer.settings(), analyzer.code_key(), source_hash(BACKENDS.get(case.backend)), machine,
        {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__,
         "torch": torch.__version__},
    )


def read_figures(path: Path) -> Figures | None:
    """A cache entry's (proof, details), or None when there is none; an unreadable or malformed one is logged and
    recomputed, never trusted."""
    try:
        entry = json.loads(path.read_text())
        proof, details = entry["proof"], entry["details"]
        if entry.get("format") != FORMAT or not isinstance(details, dict) or not isinstance(proof, dict) or \
                not all(isinstance(v, int | float) for v in proof.values()):
            raise ValueError("not an analysis figures entry of this format")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("analysis cache entry %s is unusable (%s); recomputing", path, exc)
        return None
    return proof, details


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
