"""Record: everything measured for one case, and its flat metric view that gates and baselines read."""

from __future__ import annotations

import dataclasses
from typing import Any

from harness.metrics.latency import LatencyStats, NormalizedLatency, PairedStats, median_interval
from harness.metrics.memory import MemoryStats
from harness.metrics.quality import QualityStats


@dataclasses.dataclass(frozen=True)
class Record:
    case_id: str
    suite: str
    model: str
    config_name: str
    technique: str
    config: dict[str, Any]
    backend: str
    device: str
    threads: int
    precision: str
    is_reference: bool
    latency: LatencyStats | None  # batch 1, through pytest-benchmark
    throughput: LatencyStats | None  # the model's throughput batch
    memory: MemoryStats
    size_bytes: int
    params: int
    nonzero_params: int
    quality: QualityStats
    speedup: float | None  # batch 1, interleaved with the fp32 reference on the same backend; None for it
    paired: PairedStats | None  # the interleaved timing behind ``speedup``
    throughput_speedup: float | None  # reference median / this median at the throughput batch (not interleaved)
    prepare_s: float  # technique + backend preparation (export, quantization, compilation), cached or not
    proof: dict[str, float] = dataclasses.field(default_factory=dict)
    # What the figures were measured on beyond the config: the reference weights' digest and the technique's
    # machine-dependent choices. The gate compares quality tightly only where these match the baseline's.
    identity: dict[str, str] = dataclasses.field(default_factory=dict)
    training: dict[str, Any] | None = None  # a training technique's arms, seeds and comparisons
    details: dict[str, Any] = dataclasses.field(default_factory=dict)  # technique figures kept for the report
    normalized: NormalizedLatency | None = None  # batch-1 latency / the speed probe's, timed interleaved (gate)
    # Work per batch-1 inference counted under Valgrind (harness.work.figures.WorkFigures.to_dict()), with
    # --optbench-count; ``work_ratio``: the fp32 reference's instructions / this case's (a speedup in work).
    work: dict[str, Any] | None = None
    work_ratio: float | None = None

    def metrics(self) -> dict[str, float | None]:
        """Flat ``name → value`` view: the names gates, baselines and reports use."""
        out: dict[str, float | None] = {
            "size_bytes": float(self.size_bytes),
            "params": float(self.params),
            "nonzero_params": float(self.nonzero_params),
            "speedup": self.speedup,
            "speedup.p25": self.paired.p25 if self.paired is not None else None,
            "speedup.p75": self.paired.p75 if self.paired is not None else None,
            "throughput_speedup": self.throughput_speedup,
            "memory.peak_rss_bytes": float(self.memory.peak_rss_bytes),
            "memory.delta_rss_bytes": float(self.memory.delta_rss_bytes),
            "quality.value": self.quality.value,
            "quality.ci_low": self.quality.ci_low,
            "quality.ci_high": self.quality.ci_high,
            "quality.retention": self.quality.retention,
            "quality.retention.ci_low": self.quality.retention_low,
            "quality.retention.ci_high": self.quality.retention_high,
            "quality.retention.n": float(self.quality.n),
            "quality.agreement": self.quality.agreement,
        }
        if self.paired is not None and self.paired.reference_s:
            _, low, high = median_interval(self.paired.ratios())
            out.update({"speedup.ci_low": low, "speedup.ci_high": high, "speedup.n": float(self.paired.rounds)})
        if self.memory.device_peak_bytes is not None:
            out["memory.device_peak_bytes"] = float(self.memory.device_peak_bytes)
        for key, value in self.quality.extra.items():
            out[f"quality.{key}"] = float(value)
        for prefix, stats in (("latency", self.latency), ("throughput", self.throughput)):
            if stats is not None:
                out[f"{prefix}.p50_s"] = stats.median_s
                out[f"{prefix}.p90_s"] = stats.p90_s
                out[f"{prefix}.p99_s"] = stats.p99_s
                out[f"{prefix}.iqr_s"] = stats.iqr_s
                out[f"{prefix}.items_per_s"] = stats.items_per_s
        if self.normalized is not None:
            out["latency.normalized"] = self.normalized.value
            out["probe.p50_s"] = self.normalized.probe_s
        for key, value in self.proof.items():
            out[f"proof.{key}"] = float(value)
        if self.training is not None:
            out.update(self.training.get("metrics", {}))
        if self.work is not None:
            for key in ("instructions", "estimated_cycles", "l1_misses", "ll_misses", "spread"):
                if self.work.get(key) is not None:
                    out[f"work.{key}"] = float(self.work[key])
            out["work.ratio"] = self.work_ratio
        return out

    def samples(self) -> dict[str, tuple[float, ...]]:
        """Per-round samples behind the speed figures, for the gate's interval: the paired ratios behind
        ``speedup`` and the case/probe ratios behind ``latency.normalized``."""
        out: dict[str, tuple[float, ...]] = {}
        if self.paired is not None and self.paired.reference_s:
            out["speedup"] = tuple(float(r) for r in self.paired.ratios())
        if self.normalized is not None and self.normalized.ratios:
            out["latency.normalized"] = self.normalized.ratios
        return out

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["quality"] = self.quality.to_dict()
        out["metrics"] = self.metrics()
        return out
