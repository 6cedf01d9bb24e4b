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


PREEMPTED = 2.0  # a block this many times its callable's 10th-percentile block lost the CPU to another process


def paired_ratios(numerator_s: Sequence[float], denominator_s: Sequence[float]) -> np.ndarray:
    """Per-round ratios of two interleaved block series, leaving out rounds where either block was preempted
    (> PREEMPTED x its own 10th percentile: on a shared 2-core runner, a block that loses a scheduler time slice
    runs ~7x long, and pairing cannot cancel what hit one side only). All rounds when fewer than 3 are clean."""
    num, den = np.asarray(numerator_s, dtype=np.float64), np.asarray(denominator_s, dtype=np.float64)
    clean = (num <= PREEMPTED * np.percentile(num, 10)) & (den <= PREEMPTED * np.percentile(den, 10))
    ratios = num / den
    return ratios[clean] if clean.sum() >= 3 else ratios


@dataclasses.dataclass(frozen=True)
class PairedStats:
    """Speedup of a candidate over a reference from interleaved timing: each round times a block of reference
    calls and a block of candidate calls back to back, so drift on a noisy machine hits both alike; the
    speedup is the median of the per-round ratios (reference time / candidate time) over the rounds no
    preemption hit (:func:`paired_ratios`)."""

    speedup: float
    p25: float
    p75: float
    rounds: int  # rounds timed (the statistics leave out preempted ones: see ratios())
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
        ratios = paired_ratios(ref, cand)
        p25, median, p75 = np.percentile(ratios, [25, 50, 75])
        return cls(float(median), float(p25), float(p75), int(ref.size), block,
                   tuple(float(x) for x in ref), tuple(float(x) for x in cand))

    def ratios(self) -> np.ndarray:
        """The per-round ratios the speedup is the median of."""
        return paired_ratios(self.reference_s, self.candidate_s)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _time_block(fn: Callable[[], object], block: int) -> float:
    start = time.perf_counter()
    for _ in range(block):
        fn()
    return time.perf_counter() - start


def block_size(fns: Sequence[Callable[[], object]], min_block_s: float) -> int:
    """Calls per timed block so that the slowest of ``fns`` fills ``min_block_s`` (timer resolution), after
    warming each twice."""
    for fn in (*fns, *fns):
        fn()
    one = max(max(_time_block(fn, 1) for fn in fns), 1e-7)
    return int(min(1000, max(1, np.ceil(min_block_s / one))))


def sample_interleaved(
    fns: Sequence[Callable[[], object]],
    block: int,
    *,
    min_rounds: int = 10,
    max_rounds: int = 60,
    max_time_s: float = 0.6,
) -> list[list[float]]:
    """Per-round block times of each of ``fns``, timed back to back in a rotating order each round, so drift on a
    noisy machine hits every one alike and per-round ratios cancel it."""
    out: list[list[float]] = [[] for _ in fns]
    deadline = time.perf_counter() + max_time_s
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() < deadline):
        shift = rounds % len(fns)
        order = [*range(shift, len(fns)), *range(shift)]  # each callable takes each place in turn
        for i in order:
            out[i].append(_time_block(fns[i], block))
        rounds += 1
    return out


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
    block = block_size((reference, candidate), min_block_s)
    ref_s, cand_s = sample_interleaved((reference, candidate), block, min_rounds=min_rounds, max_rounds=max_rounds,
                                       max_time_s=max_time_s)
    return PairedStats.from_samples(ref_s, cand_s, block)


@dataclasses.dataclass(frozen=True)
class NormalizedLatency:
    """Batch-1 latency in units of the fixed speed probe's time (harness.probe), from interleaved blocks: a
    machine 20 % slower overall slows both alike and leaves this figure; a slower model moves it."""

    value: float  # median of the per-round ratios case time / probe time
    probe_s: float  # the probe's median seconds per call
    ratios: tuple[float, ...] = dataclasses.field(default=(), repr=False)

    @classmethod
    def from_samples(cls, case_s: Sequence[float], probe_s: Sequence[float], block: int = 1) -> NormalizedLatency:
        case, probe = np.asarray(case_s, dtype=np.float64), np.asarray(probe_s, dtype=np.float64)
        if case.size == 0 or case.shape != probe.shape or not (np.all(case > 0) and np.all(probe > 0)):
            raise ValueError("normalised latency needs equal, non-zero lengths of positive samples")
        ratios = paired_ratios(case, probe)
        return cls(float(np.median(ratios)), float(np.median(probe)) / block, tuple(float(x) for x in ratios))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def median_interval(samples: Sequence[float], confidence: float = 0.95, resamples: int = 2000,
                    seed: int = 0) -> tuple[float, float, float]:
    """``(median, low, high)``: the median of ``samples`` and a percentile-bootstrap confidence interval of it
    (SciPy's ``bootstrap``; seeded, so one set of samples always gets one interval). Fewer than 3 samples give
    the degenerate interval of their median."""
    from scipy import stats  # lazy: only the gate and its benchmark need it

    data = np.asarray(samples, dtype=np.float64)
    if data.size == 0:
        raise ValueError("an interval needs at least one sample")
    median = float(np.median(data))
    if data.size < 3 or np.ptp(data) == 0:
        return median, median, median
    res = stats.bootstrap((data,), np.median, confidence_level=confidence, n_resamples=resamples,
                          method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    # Percentile interpolation can land an ulp outside the samples; an interval of the median never does.
    low, high = (float(np.clip(v, data.min(), data.max())) for v in (res.confidence_interval.low,
                                                                      res.confidence_interval.high))
    return median, low, high


def relative_spread(values: Sequence[float]) -> float:
    """How far repeated measurements of one figure scatter, relative to their median: 1.4826 × MAD / median (a
    robust standard deviation); 0 for fewer than two values."""
    data = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if data.size < 2:
        return 0.0
    median = float(np.median(data))
    if median == 0:
        return 0.0
    mad = float(np.median(np.abs(data - median)))
    # With two or three runs the MAD can be 0 by chance; the half-range bounds it from below.
    return max(1.4826 * mad, float(np.ptp(data)) / 2) / abs(median)
