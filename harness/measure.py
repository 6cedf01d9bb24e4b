"""Measuring one case: apply the technique, prepare the backend, then time, size and score the result.

Plain library code (no pytest): a notebook can call :func:`measure_case` with any timing function.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from harness.artifact import Artifact
from harness.backends.base import BACKENDS, Runner
from harness.case import Case
from harness.errors import ModelOutputError
from harness.metrics.latency import LatencyStats, PairedStats, sample_latency, sample_paired
from harness.metrics.memory import PeakRSS
from harness.metrics.size import onnx_param_counts, torch_param_counts
from harness.record import Record
from harness.techniques.base import Context, Reference, apply
from harness.techniques.reference import REFERENCE

logger = logging.getLogger(__name__)

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


def measure_case(
    case: Case,
    reference: Reference,
    ref_outputs: np.ndarray,
    settings: Settings,
    ctx: Context,
    timer: Timer = default_timer,
    reference_record: Record | None = None,
    reference_runner: Runner | None = None,
    keep_runner: bool = False,
) -> tuple[Record, Runner | None]:
    """Everything measured for ``case``.

    The speedup is timed side by side, interleaved with ``reference_runner`` (the fp32 reference prepared on the
    same backend earlier in the run); the throughput speedup compares medians with ``reference_record``. With
    ``keep_runner`` the prepared runner is returned open (the session keeps the reference's), else closed.
    """
    spec = reference.spec
    backend = BACKENDS.get(case.backend)(Context(ctx.cache, settings.threads))
    start = time.perf_counter()
    artifact = apply(reference, case.config, ctx)
    cuda = backend.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with PeakRSS(interval_s=0.002) as mem:
        runner = backend.prepare(artifact, spec.example_inputs(2), spec.input_names)
        prepare_s = time.perf_counter() - start
        try:
            outputs = run_outputs(runner, reference, case.id)
        except Exception:
            runner.close()
            raise
    memory = mem.stats(int(torch.cuda.max_memory_allocated()) if cuda else None)
    try:
        quality = spec.quality.evaluate(outputs, ref_outputs, reference.splits.test.targets, reference.splits.extra)
        one = runner.bind(spec.example_inputs(1))
        check_finite(runner.to_numpy(one()), case.id)
        latency = LatencyStats.from_samples(timer(one), batch=1)
        many = runner.bind(spec.example_inputs(spec.throughput_batch))
        tput_samples = sample_latency(many, warmup=1, min_rounds=3, max_time_s=settings.throughput_time_s)
        throughput = LatencyStats.from_samples(tput_samples, batch=spec.throughput_batch)
        paired: PairedStats | None = None
        if reference_runner is not None and not case.is_reference:
            ref_one = reference_runner.bind(spec.example_inputs(1))
            paired = sample_paired(ref_one, one, max_time_s=settings.paired_time_s)
        size = runner.size_bytes
    except BaseException:
        runner.close()
        raise
    if not keep_runner:
        runner.close()
    params, nonzero = param_counts(artifact)
    tput_speedup = None
    if reference_record is not None and reference_record.throughput is not None and not case.is_reference:
        tput_speedup = reference_record.throughput.median_s / throughput.median_s
    proof = dict(artifact.proof)
    record = Record(
        case_id=case.id,
        suite=case.suite,
        model=case.model,
        config_name=case.config.name,
        technique=type(case.config).technique,
        config=case.config.to_dict(),
        backend=case.backend,
        device=backend.device,
        threads=settings.threads,
        precision=case.config.precision.value,
        is_reference=case.is_reference,
        latency=latency,
        throughput=throughput,
        memory=memory,
        size_bytes=size,
        params=params,
        nonzero_params=nonzero,
        quality=quality,
        speedup=paired.speedup if paired is not None else None,
        paired=paired,
        throughput_speedup=tput_speedup,
        prepare_s=prepare_s,
        proof=proof,
        identity={"weights": _weights_identity(reference, artifact), **artifact.machine_choices},
        training=artifact.training,
        details=_details(case, reference, artifact),
    )
    return record, (runner if keep_runner else None)
