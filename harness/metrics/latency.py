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
