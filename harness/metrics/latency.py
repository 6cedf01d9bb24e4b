"""Latency and throughput statistics from raw timing samples (seconds per call)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class LatencyStats:
    """Percentiles of per-call wall time for one batch size, and the throughput they imply."""

    batch: int
    rounds: int
    median_s: float
    mean_s: float
    p90_s: float
    p99_s: float
    iqr_s: float
    min_s: float
    max_s: float
    items_per_s: float
    samples_s: tuple[float, ...] = dataclasses.field(default=(), repr=False)  # the raw per-call times, in order

    @classmethod
    def from_samples(cls, samples_s: Sequence[float], batch: int) -> LatencyStats:
        data = np.asarray(samples_s, dtype=np.float64)
        if data.size == 0:
            raise ValueError("latency needs at least one sample")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if not np.all(np.isfinite(data)) or np.any(data < 0):
            raise ValueError("latency samples must be finite and non-negative")
        q25, median, q75, p90, p99 = np.percentile(data, [25, 50, 75, 90, 99])
        return cls(
            batch=batch,
            rounds=int(data.size),
            median_s=float(median),
            mean_s=float(data.mean()),
            p90_s=float(p90),
            p99_s=float(p99),
            iqr_s=float(q75 - q25),
            min_s=float(data.min()),
            max_s=float(data.max()),
            items_per_s=float(batch / median) if median > 0 else float("inf"),
            samples_s=tuple(float(x) for x in data),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sample_latency(
    fn: Callable[[], object], *, warmup: int = 3, min_rounds: int = 5, max_rounds: int = 200, max_time_s: float = 1.0
) -> list[float]:
    """Time ``fn`` after ``warmup`` calls: at least ``min_rounds`` calls, more until ``max_time_s`` is spent."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    deadline = time.perf_counter() + max_time_s
    while len(samples) < max_rounds and (len(samples) < min_rounds or time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


@dataclasses.dataclass(frozen=True)
class PairedStats:
    """Speedup of a candidate over a reference from interleaved timing: each round times a block of reference
    calls and a block of candidate calls back to back, so drift on a noisy machine hits both alike; the
    speedup is the median of the per-round ratios (reference time / candidate time)."""

    speedup: float
    p25: float
    p75: float
    rounds: int
    block: int  # calls per timed block
    reference_s: tuple[float, ...] = dataclasses.field(default=(), repr=False)  # per-round block times, in order
    candidate_s: tuple[float, ...] = dataclasses.field(default=(), repr=False)

    @classmethod
    def from_samples(cls, reference_s: Sequence[float], candidate_s: Sequence[float], block: int = 1) -> PairedStats:
        ref = np.asarray(reference_s, dtype=np.float64)
        cand = np.asarray(candidate_s, dtype=np.float64)
        if ref.size == 0 or ref.shape != cand.shape:
            raise ValueError(f"paired samples need equal, non-zero lengths, got {ref.size} and {cand.size}")
        if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(cand)) and np.all(ref > 0) and np.all(cand > 0)):
            raise ValueError("paired samples must be finite and positive")
        ratios = ref / cand
        p25, median, p75 = np.percentile(ratios, [25, 50, 75])
        return cls(float(median), float(p25), float(p75), int(ratios.size), block,
                   tuple(float(x) for x in ref), tuple(float(x) for x in cand))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _time_block(fn: Callable[[], object], block: int) -> float:
    start = time.perf_counter()
    for _ in range(block):
        fn()
    return time.perf_counter() - start


def sample_paired(
    reference: Callable[[], object],
    candidate: Callable[[], object],
    *,
    min_rounds: int = 10,
    max_rounds: int = 60,
    max_time_s: float = 0.6,
    min_block_s: float = 0.002,
) -> PairedStats:
    """Interleave blocks of ``reference`` and ``candidate`` calls (order alternating each round) and return
    their paired speedup. Blocks are long enough (``min_block_s``) that timer resolution does not matter."""
    for fn in (reference, candidate, reference, candidate):  # warm both
        fn()
    one = max(_time_block(reference, 1), _time_block(candidate, 1), 1e-7)
    block = int(min(1000, max(1, np.ceil(min_block_s / one))))
    ref_s: list[float] = []
    cand_s: list[float] = []
    deadline = time.perf_counter() + max_time_s
    while len(ref_s) < max_rounds and (len(ref_s) < min_rounds or time.perf_counter() < deadline):
        if len(ref_s) % 2 == 0:
            ref_s.append(_time_block(reference, block))
            cand_s.append(_time_block(candidate, block))
        else:
            cand_s.append(_time_block(candidate, block))
            ref_s.append(_time_block(reference, block))
    return PairedStats.from_samples(ref_s, cand_s, block)
