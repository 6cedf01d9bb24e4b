"""Measuring one case in named phases: prepare (technique, backend, outputs, quality), time, pair, record.

Plain library code (no pytest): a notebook can call :func:`measure_case` with any timing function.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from harness.artifact import Artifact
from harness.backends.base import BACKENDS, Runner
from harness.case import Case
from harness.errors import ModelOutputError
from harness.metrics.latency import (
    LatencyStats,
    NormalizedLatency,
    PairedStats,
    block_size,
    sample_interleaved,
    sample_latency,
)
from harness.metrics.memory import PeakRSS
from harness.metrics.size import onnx_param_counts, torch_param_counts
from harness.probe import make_probe
from harness.record import Record
from harness.techniques.base import Context, Reference, apply
from harness.techniques.reference import REFERENCE
from harness.work.counter import Counter
from harness.work.figures import WorkFigures
from harness.work.jobs import NotCounted, job_for

# Times a zero-argument call and returns per-call seconds (pytest-benchmark's fixture in a suite).
Timer = Callable[[Callable[[], Any]], list[float]]


def default_timer(fn: Callable[[], Any]) -> list[float]:
    return sample_latency(fn, warmup=5, min_rounds=10, max_time_s=0.5)


@dataclasses.dataclass
class Settings:
    threads: int
    throughput_time_s: float = 0.3
    paired_time_s: float = 0.6


def run_outputs(runner: Runner, reference: Reference, case_id: str) -> np.ndarray:
    """Outputs on the whole test split, in the model's throughput batches; NaN or Inf fails the case."""
    split, step = reference.splits.test, reference.spec.throughput_batch
    parts = [runner(split.batch(i, i + step)) for i in range(0, len(split), step)]
    out = np.concatenate(parts, axis=0)
    check_finite(out, case_id)
    return out


def check_finite(out: np.ndarray, case_id: str) -> None:
    bad = ~np.isfinite(out.reshape(out.shape[0], -1)).all(axis=1)
    if bad.any():
        kind = "NaN" if np.isnan(out).any() else "Inf"
        raise ModelOutputError(
            f"{case_id}: model output contains {kind} in {int(bad.sum())} of {out.shape[0]} rows; "
            "expected finite values"
        )


def reference_outputs(reference: Reference) -> np.ndarray:
    """The fp32 reference module's outputs on the test split, in torch eager: what 'agreement' compares to."""
    split, step = reference.splits.test, reference.spec.throughput_batch
    with torch.inference_mode():
        parts = [reference.module(*split.batch(i, i + step)).float().cpu().numpy() for i in range(0, len(split), step)]
    out = np.concatenate(parts, axis=0)
    check_finite(out, f"{reference.spec.name} reference")
    return out


def param_counts(artifact: Artifact) -> tuple[int, int]:
    if artifact.module is not None:
        return torch_param_counts(artifact.module)
    assert artifact.onnx_path is not None
    return onnx_param_counts(artifact.onnx_path)


def _details(case: Case, reference: Reference, artifact: Artifact) -> dict[str, Any]:
    """The artifact's figures for the report; a reference case adds the figures of the run that trained it."""
    details = dict(artifact.details)
    if case.is_reference and reference.training is not None:
        details["training"] = reference.training.to_dict()
    return details


def _weights_identity(reference: Reference, artifact: Artifact) -> str:
    """The reference's weights digest, or, for a model a technique trained, both digests."""
    return f"{reference.weights_digest}+{artifact.weights}" if artifact.weights else reference.weights_digest


def prepare_reference(reference: Reference, backend_name: str, settings: Settings, ctx: Context) -> Runner:
    """The fp32 reference prepared on ``backend_name``: what a case is timed against when its own fp32 case did
    not run first (a run selected with ``-k``)."""
    backend = BACKENDS.get(backend_name)(Context(ctx.cache, settings.threads))
    artifact = apply(reference, REFERENCE, ctx)
    return backend.prepare(artifact, reference.spec.example_inputs(2), reference.spec.input_names)


class ReferenceRunners:
    """The one owner of the open fp32 reference runners, one per (model, backend), that cases are timed
    interleaved with: it opens one on demand, adopts a reference case's own runner, and closes them all."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._open: dict[tuple[str, str], Runner] = {}

    def get(self, reference: Reference, backend: str, ctx: Context) -> Runner:
        key = (reference.spec.name, backend)
        if key not in self._open:
            self._open[key] = prepare_reference(reference, backend, self.settings, ctx)
        return self._open[key]

    def peek(self, model: str, backend: str) -> Runner | None:
        return self._open.get((model, backend))

    def adopt(self, model: str, backend: str, runner: Runner) -> None:
        """Keep a reference case's prepared runner; one of another suite's run of the same pair is closed."""
        old = self._open.pop((model, backend), None)
        if old is not None and old is not runner:
            old.close()
        self._open[(model, backend)] = runner

    def close_except(self, model: str = "") -> None:
        for key in [k for k in self._open if k[0] != model]:
            self._open.pop(key).close()


class CaseRun:
    """One case being measured, as named phases: :meth:`prepare` (technique and backend), :meth:`run_outputs`
    (outputs on the test split and quality), :meth:`time` (batch-1 latency and throughput), :meth:`pair` (the
    speedup and probe-normalised latency from interleaved blocks; :meth:`pair_more` adds a block when the gate
    asks for a second look), then :meth:`record`. Used as a context manager, it closes its runner on exit unless
    :meth:`release` handed it on (a reference case's runner goes to :class:`ReferenceRunners`)."""

    def __init__(self, case: Case, reference: Reference, settings: Settings, ctx: Context) -> None:
        self.case, self.reference, self.settings, self.ctx = case, reference, settings, ctx
        self.backend = BACKENDS.get(case.backend)(Context(ctx.cache, settings.threads))
        self.runner: Runner | None = None
        self._released = False
        self._probe = make_probe()
        self.work: WorkFigures | None = None  # set by count(); None: counting off, or why not in work_note
        self.work_note = ""

    def __enter__(self) -> CaseRun:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.runner is not None and not self._released:
            self.runner.close()

    def release(self) -> Runner:
        assert self.runner is not None
        self._released = True
        return self.runner

    def prepare(self, ref_outputs: np.ndarray) -> None:
        """Apply the technique, prepare the backend and run the test split; peak memory covers all three."""
        spec = self.reference.spec
        start = time.perf_counter()
        self.artifact = apply(self.reference, self.case.config, self.ctx)
        cuda = self.backend.device == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        with PeakRSS(interval_s=0.002) as mem:
            self.runner = self.backend.prepare(self.artifact, spec.example_inputs(2), spec.input_names)
            self.prepare_s = time.perf_counter() - start
            outputs = run_outputs(self.runner, self.reference, self.case.id)
        self.memory = mem.stats(int(torch.cuda.max_memory_allocated()) if cuda else None)
        self.quality = spec.quality.evaluate(outputs, ref_outputs, self.reference.splits.test.targets,
                                             self.reference.splits.extra)

    def time(self, timer: Timer) -> None:
        """Batch-1 latency through ``timer`` and throughput at the model's batch, after a finite-output check."""
        assert self.runner is not None
        spec = self.reference.spec
        self.one = self.runner.bind(spec.example_inputs(1))
        check_finite(self.runner.to_numpy(self.one()), self.case.id)
        self.latency = LatencyStats.from_samples(timer(self.one), batch=1)
        many = self.runner.bind(spec.example_inputs(spec.throughput_batch))
        samples = sample_latency(many, warmup=1, min_rounds=3, max_time_s=self.settings.throughput_time_s)
        self.throughput = LatencyStats.from_samples(samples, batch=spec.throughput_batch)
        self.paired: PairedStats | None = None
        self.normalized: NormalizedLatency | None = None
        self._blocks: list[list[float]] | None = None

    def pair(self, reference_runner: Runner | None) -> None:
        """Interleave blocks of the candidate, the speed probe and (not for a reference case) the fp32 reference."""
        fns: list[Callable[[], object]] = [self.one, self._probe]
        if reference_runner is not None and not self.case.is_reference:
            fns.append(reference_runner.bind(self.reference.spec.example_inputs(1)))
        self._fns = fns
        self._block = block_size(fns, 0.002)
        self._blocks = sample_interleaved(fns, self._block, max_time_s=self.settings.paired_time_s)
        self._summarize()

    def pair_more(self) -> None:
        """One more interleaved block of rounds, pooled with the earlier ones (the gate's second look)."""
        assert self._blocks is not None
        more = sample_interleaved(self._fns, self._block, max_time_s=self.settings.paired_time_s)
        self._blocks = [a + b for a, b in zip(self._blocks, more, strict=True)]
        self._summarize()

    def _summarize(self) -> None:
        assert self._blocks is not None
        cand, probe = self._blocks[0], self._blocks[1]
        self.normalized = NormalizedLatency.from_samples(cand, probe, self._block)
        if len(self._blocks) > 2:
            self.paired = PairedStats.from_samples(self._blocks[2], cand, self._block)

    def count(self, counter: Counter) -> None:
        """Instructions per batch-1 call of the artifact as this backend runs it, counted under Valgrind (a
        separate process, after the timing: it never runs beside it); ``work_note`` says why a case is not counted."""
        try:
            self.work = counter.count(job_for(self.case.id, self.case.backend, self.artifact, self.reference.spec,
                                              self.ctx.cache))
        except NotCounted as exc:
            self.work_note = f"not counted: {exc}"

    def record(self, reference_record: Record | None = None) -> Record:
        """The case's Record from the phases run so far."""
        assert self.runner is not None
        case, reference = self.case, self.reference
        params, nonzero = param_counts(self.artifact)
        tput_speedup = None
        if reference_record is not None and reference_record.throughput is not None and not case.is_reference:
            tput_speedup = reference_record.throughput.median_s / self.throughput.median_s
        paired = self.paired
        work = self.work
        ref_work = reference_record.work if reference_record is not None else None
        work_ratio = (ref_work["instructions"] / work.instructions
                      if work is not None and ref_work and not case.is_reference else None)
        return Record(
            case_id=case.id,
            suite=case.suite,
            model=case.model,
            config_name=case.config.name,
            technique=type(case.config).technique,
            config=case.config.to_dict(),
            backend=case.backend,
            device=self.backend.device,
            threads=self.settings.threads,
            precision=case.config.precision.value,
            is_reference=case.is_reference,
            latency=self.latency,
            throughput=self.throughput,
            memory=self.memory,
            size_bytes=self.runner.size_bytes,
            params=params,
            nonzero_params=nonzero,
            quality=self.quality,
            speedup=paired.speedup if paired is not None else None,
            paired=paired,
            throughput_speedup=tput_speedup,
            prepare_s=self.prepare_s,
            proof=dict(self.artifact.proof),
            identity={"weights": _weights_identity(reference, self.artifact), **self.artifact.machine_choices},
            training=self.artifact.training,
            details={**_details(case, reference, self.artifact),
                     **({"work_not_counted": self.work_note} if self.work_note else {})},
            normalized=self.normalized,
            work=work.to_dict() if work is not None else None,
            work_ratio=work_ratio,
        )


def measure_case(
    case: Case,
    reference: Reference,
    ref_outputs: np.ndarray,
    settings: Settings,
    ctx: Context,
    timer: Timer = default_timer,
    reference_record: Record | None = None,
    reference_runner: Runner | None = None,
) -> Record:
    """Everything measured for ``case``, its runner closed afterwards: the phases of :class:`CaseRun` in order.

    The speedup is timed side by side, interleaved with ``reference_runner`` (the fp32 reference prepared on the
    same backend); the throughput speedup compares medians with ``reference_record``. (Before the gate issue this
    returned ``(record, runner)`` and took ``keep_runner``; a caller that keeps runners uses CaseRun.release.)
    """
    with CaseRun(case, reference, settings, ctx) as run:
        run.prepare(ref_outputs)
        run.time(timer)
        run.pair(reference_runner)
        return run.record(reference_record)
