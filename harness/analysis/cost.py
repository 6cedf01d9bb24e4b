"""The cost suite: what a variant's serving (and a training technique's runs) cost at the price table's rates.

Nothing is timed here. Serving cost prices the throughput the source case measured at the model's throughput
batch — this run's record of it when its suite ran first in the same session, else the committed baseline of this
machine class (``results/baselines/<suite>.json``), named in the case's details. With neither, the case is
skipped and says how to measure it. Training cost prices the wall times the training suites record, where they
record them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from harness import baselines
from harness.analysis.prices import Price, usd_for_seconds, usd_per_million
from harness.analysis.variants import AnalysisConfig, wrap
from harness.case import Case
from harness.gate import Expectation
from harness.metrics.memory import MemoryStats
from harness.metrics.quality import QualityStats
from harness.record import Record
from harness.techniques.base import PRESETS

SUITE = "cost"
SERVING_SUITES = ("quantization", "pruning", "distillation")
TRAINING_SUITES = ("early_stopping", "tuning", "dataset_distillation")


@dataclasses.dataclass(frozen=True)
class CostConfig(AnalysisConfig):
    """A variant's (or a training technique's) cost; a figure, not a contract: it moves with the machine's
    throughput, which the source suite's speed gate already judges."""

    technique: ClassVar[str] = SUITE
    report_section: ClassVar[str] = SUITE
    native_only: ClassVar[bool] = False

    def expectations(self) -> list[Expectation]:
        return []


def _sources() -> tuple[str, ...]:
    return tuple(f"{suite}/{name}" for suite in SERVING_SUITES + TRAINING_SUITES if suite in PRESETS
                 for name in PRESETS[suite].names() if name != "fp32")


def register(run: Any) -> None:
    wrap(SUITE, CostConfig, _sources())


@dataclasses.dataclass(frozen=True)
class Source:
    """The figures a cost case prices and where they came from."""

    where: str
    metrics: Mapping[str, float | None]
    record: Record | None = None  # this run's, when the source case ran in it
    identity: Mapping[str, str] = dataclasses.field(default_factory=dict)


def find_source(session: Any, case: Case) -> Source | str:
    """The source case's figures: this run's record, else this machine class's baseline entry; else the reason."""
    suites = ((case.config.source_suite,) if isinstance(case.config, CostConfig)
              else tuple(s for s in SERVING_SUITES if s in PRESETS))
    for suite in suites:
        outcome = session.outcomes.get((suite, case.id))
        if outcome is not None and outcome.record is not None:
            return Source(f"this run's {suite} case", outcome.record.metrics(), outcome.record,
                          outcome.record.identity)
    for suite in suites:
        path = baselines.baseline_path(session.options.baseline_dir, suite)
        baseline = baselines.load(path)
        if baseline is None:
            continue
        own = baseline.for_environment(session.environment)
        if own is not None and case.id in own.cases:
            entry = own.cases[case.id]
            return Source(f"{path} (this machine class, taken {own.taken_at})", entry.metrics, None, entry.identity)
    return (f"{case.id}: no throughput to price: the {'/'.join(suites)} case did not run in this session and "
            f"{'/'.join(suites)} baselines hold no entry of this machine class; run its suite with this one "
            f"(pytest suites/test_{suites[0]}.py suites/test_cost.py)")


def serving_figures(items_per_s: float, prices: tuple[Price, ...]) -> dict[str, float]:
    out = {"cost.items_per_s": items_per_s}
    for p in prices:
        out[f"cost.usd_per_1m.{p.name}"] = usd_per_million(p.usd_per_hour, items_per_s)
    return out


def _mean(values: Any) -> float | None:
    values = [float(v) for v in values or () if isinstance(v, int | float)]
    return sum(values) / len(values) if values else None


def training_figures(metrics: Mapping[str, float | None], training: Mapping[str, Any] | None,
                     prices: tuple[Price, ...]) -> dict[str, float]:
    """Training cost from the wall times a training case records: per training run, the technique's and its
    control's (and the saving, early stopping's point); a study's wall time (tuning); distilling a data set and
    training on it against training on the full split (dataset distillation). Figures absent from the source
    are left out."""
    seconds: dict[str, float] = {}
    arms = (training or {}).get("arms") or {}
    for arm in ("technique", "control"):
        mean = _mean((arms.get(arm) or {}).get("wall_s"))
        if mean is not None:
            seconds[f"{arm}_run_s"] = mean
    if "technique_run_s" in seconds and "control_run_s" in seconds:
        seconds["saved_run_s"] = seconds["control_run_s"] - seconds["technique_run_s"]
    for key, value in metrics.items():
        if value is None:
            continue
        if key.startswith("training.") and key.endswith(".wall_s"):
            seconds[f"study_{key.split('.')[1]}_s"] = float(value)
    distill, tech, full = (metrics.get(f"training.{k}") for k in ("distill_s", "technique_train_s", "full_train_s"))
    if distill is not None and tech is not None:
        seconds["distill_and_train_s"] = float(distill) + float(tech)
    if full is not None:
        seconds["full_train_s"] = float(full)
    out: dict[str, float] = {}
    for name, s in seconds.items():
        out[f"cost.train.{name}"] = s
        for p in prices:
            out[f"cost.train.{name.removesuffix('_s')}_usd.{p.name}"] = usd_for_seconds(p.usd_per_hour, s)
    if metrics.get("training.wall_saved") is not None:
        out["cost.train.wall_saved_share"] = float(metrics["training.wall_saved"])  # type: ignore[arg-type]
    return out


def _quality(source: Source, metric: str) -> QualityStats:
    if source.record is not None:
        return source.record.quality
    m = source.metrics

    def get(key: str) -> float:
        value = m.get(key)
        return float(value) if value is not None else float("nan")

    return QualityStats(metric, get("quality.value"), get("quality.ci_low"), get("quality.ci_high"), 0,
                        get("quality.retention"), get("quality.agreement"))


def record(session: Any, case: Case, prices: tuple[Price, ...]) -> Record | str:
    """The cost case's Record from its source's figures, or the reason there is none."""
    from model_zoo import MODELS

    source = find_source(session, case)
    if isinstance(source, str):
        return source
    m, rec, spec = source.metrics, source.record, MODELS.get(case.model)
    proof: dict[str, float] = {}
    items = m.get("throughput.items_per_s")
    if items:
        proof.update(serving_figures(float(items), prices))
    proof.update(training_figures(m, rec.training if rec is not None else None, prices))
    config = case.config
    return Record(
        case_id=case.id, suite=case.suite, model=case.model, config_name=config.name,
        technique=type(config).technique, config=config.to_dict(), backend=case.backend,
        device=rec.device if rec is not None else "cpu", threads=session.options.threads,
        precision=config.precision.value, is_reference=case.is_reference, latency=None, throughput=None,
        # memory is not measured here: this run's source record's, else none (a baseline keeps no memory figure)
        memory=rec.memory if rec is not None else MemoryStats(0, 0),
        size_bytes=int(m.get("size_bytes") or 0), params=int(m.get("params") or 0),
        nonzero_params=int(m.get("nonzero_params") or 0), quality=_quality(source, spec.quality.name),
        speedup=None, paired=None, throughput_speedup=None, prepare_s=0.0, proof=proof,
        identity=dict(source.identity),
        details={"analysis": {"source": source.where, "prices": [p.to_dict() for p in prices],
                              "batch": spec.throughput_batch}},
    )
