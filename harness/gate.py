"""Named checks with a direction and a tolerance, from a technique's contract and from the stored baseline.

A check returns a Verdict; a failed verdict carries the one message a user reads: case, metric, baseline
or threshold, current value, tolerance.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import Any, Literal

from harness.config import require_range
from harness.errors import ConfigError

Op = Literal[">=", "<=", ">", "<"]


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    KNOWN = "known"  # a contract the accepted baseline already records as unmet: a finding, reported each run
    SKIP = "skip"  # could not be judged (metric absent, other hardware); the reason says why


@dataclasses.dataclass(frozen=True)
class Expectation:
    """A contract: ``metric op threshold``, e.g. ``quality.retention >= 0.99``."""

    name: str
    metric: str
    op: Op
    threshold: float


@dataclasses.dataclass(frozen=True)
class Verdict:
    case_id: str
    check: str
    source: Literal["contract", "baseline"]
    metric: str
    status: Status
    current: float | None
    expected: float | None  # the threshold (contract) or the baseline value
    tolerance: float | None = None
    message: str = ""
    basis: str = ""  # quality checks against a baseline: the QualityBasis they were judged on

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["status"] = self.status.value
        return out


@dataclasses.dataclass(frozen=True)
class Tolerances:
    """How far a figure may move from its baseline before the gate fails.

    ``quality_abs``: absolute drop of the quality value; ``size_rel``: relative growth of the artifact;
    ``speedup_rel``: relative drop of the speedup over the fp32 reference (timed interleaved with it in the run);
    ``latency_rel``: relative growth of median latency, judged only on the machine the baseline was taken on, and
    off (None) by default. Measured on a shared 2-core runner over five identical runs: paired speedups stayed
    within 25 % of the baseline, while absolute medians moved up to 2.4x (a 0.04 ms call) and 1.5x (a 22 ms
    one). A latency gate there only raises false alarms; on a quiet, dedicated machine, turn it on.
    """

    quality_abs: float = 0.005
    size_rel: float = 0.02
    speedup_rel: float = 0.35
    latency_rel: float | None = None  # "off"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None or f.name != "latency_rel":
                require_range(f.name, value, 0.0, 10.0)

    @classmethod
    def parse(cls, items: list[str]) -> Tolerances:
        """Build from ``NAME=VALUE`` strings (``speedup_rel=0.3``); unknown names and bad values are refused."""
        names = [f.name for f in dataclasses.fields(cls)]
        values: dict[str, float] = {}
        for item in items:
            key, sep, raw = item.partition("=")
            if not sep or key not in names:
                raise ConfigError(f"tolerance must be NAME=VALUE with NAME one of {', '.join(names)}; got {item!r}")
            if key == "latency_rel" and raw == "off":
                values[key] = None
                continue
            try:
                values[key] = float(raw)
            except ValueError:
                raise ConfigError(f"tolerance `{key}` must be a number, got {raw!r}") from None
        return cls(**values)


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.4g}"
    return f"{value:.4f}"


def _holds(current: float, op: Op, bound: float) -> bool:
    return {">=": current >= bound, "<=": current <= bound, ">": current > bound, "<": current < bound}[op]


def check_contract(
    case_id: str,
    metrics: Mapping[str, float | None],
    expectations: list[Expectation],
    accepted_failures: frozenset[str] = frozenset(),
) -> list[Verdict]:
    """Judge each expectation; an unmet one that the baseline accepted is KNOWN, else FAIL."""
    verdicts = []
    for exp in expectations:
        current = metrics.get(exp.metric)
        if current is None or math.isnan(current):
            verdicts.append(
                Verdict(case_id, exp.name, "contract", exp.metric, Status.SKIP, None, exp.threshold,
                        message=f"{case_id}: {exp.metric} was not measured")
            )
            continue
        if _holds(current, exp.op, exp.threshold):
            status, message = Status.PASS, ""
        else:
            status = Status.KNOWN if exp.name in accepted_failures else Status.FAIL
            message = (
                f"{case_id}: contract {exp.name} not met: {exp.metric} = {_fmt(current)}, "
                f"expected {exp.op} {_fmt(exp.threshold)}"
                + (" (accepted in the baseline)" if status is Status.KNOWN else "")
            )
        verdicts.append(Verdict(case_id, exp.name, "contract", exp.metric, status, current, exp.threshold,
                                message=message))
    return verdicts


class Scope(enum.StrEnum):
    """Where a baseline figure still means something (see :func:`harness.env.comparable_scopes`)."""

    ANYWHERE = "anywhere"  # quality, size: properties of the artifact
    SAME_ISA = "same CPU features, threads and GPU"  # speedup ratios: int8 gains hinge on VNNI, AVX-512...
    SAME_MACHINE = "same CPU model, cores, threads and GPU"  # absolute latency


@dataclasses.dataclass(frozen=True)
class BaselineCheck:
    """``metric`` may move from its baseline in the bad direction by at most the tolerance (absolute or relative);
    judged only where the baseline's environment and this run's share ``scope``."""

    name: str
    metric: str
    higher_is_better: bool
    tolerance_field: str
    relative: bool
    scope: Scope = Scope.ANYWHERE


class QualityBasis(enum.StrEnum):
    """How a case's quality relates to its baseline's, from the two records' identities (see Record.identity)."""

    SAME = "same"  # same reference weights, same machine choices: the figure should reproduce
    OTHER_WEIGHTS = "other weights"  # the same recipe trained elsewhere: compare within sampling error
    OTHER_CHOICES = "other choices"  # the technique chose other settings on this machine: another artifact


@dataclasses.dataclass(frozen=True)
class QualityComparison:
    basis: QualityBasis
    reason: str = ""

    @classmethod
    def of(cls, current: Mapping[str, str], baseline: Mapping[str, str]) -> QualityComparison:
        """Compare two identities: machine choices first (they make another artifact), then the weights."""
        keys = (set(current) | set(baseline)) - {"weights"}
        choices = sorted(k for k in keys if current.get(k) != baseline.get(k))
        if choices:
            diffs = ", ".join(f"{k} {current.get(k, 'unset')} here, {baseline.get(k, 'unset')} in the baseline"
                              for k in choices)
            return cls(QualityBasis.OTHER_CHOICES, f"made with other machine-dependent settings ({diffs})")
        if "weights" not in baseline:
            return cls(QualityBasis.OTHER_WEIGHTS, "the baseline records no weights digest")
        if current.get("weights") != baseline["weights"]:
            return cls(QualityBasis.OTHER_WEIGHTS, f"reference weights {current.get('weights')} differ from the "
                                                   f"baseline's {baseline['weights']} (trained on other hardware?)")
        return cls(QualityBasis.SAME)


SAME_QUALITY = QualityComparison(QualityBasis.SAME)


def sampling_margin(metrics: Mapping[str, float | None], baseline: Mapping[str, float | None]) -> float:
    """Half-width of a 95 % interval for the difference of two quality figures: the root sum of squares of their
    own intervals' half-widths (``quality.ci_low``/``ci_high``); 0 when neither has an interval."""
    half = []
    for source in (metrics, baseline):
        low, high = source.get("quality.ci_low"), source.get("quality.ci_high")
        if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
            half.append((high - low) / 2)
    if len(half) == 1:
        half.append(half[0])  # the same test set measured both: assume the missing interval is as wide
    return math.sqrt(sum(h * h for h in half))


BASELINE_CHECKS: tuple[BaselineCheck, ...] = (
    BaselineCheck("quality", "quality.value", True, "quality_abs", relative=False),
    BaselineCheck("size", "size_bytes", False, "size_rel", relative=True),
    BaselineCheck("speedup", "speedup", True, "speedup_rel", relative=True, scope=Scope.SAME_ISA),
    BaselineCheck("latency", "latency.p50_s", False, "latency_rel", relative=True, scope=Scope.SAME_MACHINE),
)


def check_baseline(
    case_id: str,
    metrics: Mapping[str, float | None],
    baseline: Mapping[str, float | None],
    tolerances: Tolerances,
    comparable: frozenset[Scope],
    quality: QualityComparison = SAME_QUALITY,
) -> list[Verdict]:
    """Compare a case's figures with its baseline entry, one verdict per check; a check whose scope is not in
    ``comparable`` is skipped, saying why (a speedup measured on other CPU features is no regression).

    Quality is compared within ``quality_abs`` when ``quality`` says the weights and machine choices are the
    baseline's; within the sampling error of the two figures (if wider) when only the weights differ; and not at
    all when the technique made another artifact on this machine (the contract still judges it)."""
    verdicts = []
    for chk in BASELINE_CHECKS:
        raw_tol = getattr(tolerances, chk.tolerance_field)
        current, base = metrics.get(chk.metric), baseline.get(chk.metric)
        if current is None or base is None or math.isnan(current) or math.isnan(base):
            continue  # not a figure of this case (no speedup on a reference), nothing to judge
        if raw_tol is None:
            verdicts.append(Verdict(case_id, chk.name, "baseline", chk.metric, Status.SKIP, current, base, None,
                                    message=f"not gated: {chk.tolerance_field} is off"))
            continue
        tol = float(raw_tol)
        note = ""
        if chk.name == "quality" and quality.basis is QualityBasis.OTHER_CHOICES:
            verdicts.append(Verdict(case_id, chk.name, "baseline", chk.metric, Status.SKIP, current, base, tol,
                                    message=f"not compared: {quality.reason}", basis=quality.basis.value))
            continue
        if chk.name == "quality" and quality.basis is QualityBasis.OTHER_WEIGHTS:
            margin = sampling_margin(metrics, baseline)
            if margin > tol:
                tol, note = margin, f" (the sampling error of both figures: {quality.reason})"
        if chk.scope not in comparable:
            verdicts.append(Verdict(case_id, chk.name, "baseline", chk.metric, Status.SKIP, current, base, tol,
                                    message=f"not compared: the baseline was not taken with the {chk.scope}"))
            continue
        if chk.higher_is_better:
            bound = base * (1 - tol) if chk.relative else base - tol
            ok = current >= bound
        else:
            bound = base * (1 + tol) if chk.relative else base + tol
            ok = current <= bound
        message = ""
        if ok and chk.name == "quality" and quality.basis is QualityBasis.OTHER_WEIGHTS:
            message = f"compared within {_fmt(tol)}, the wider of quality_abs and the sampling error: {quality.reason}"
        if not ok:
            tol_text = f"{tol:.0%}" if chk.relative else _fmt(tol)
            word = "dropped" if chk.higher_is_better else "grew"
            message = (
                f"{case_id}: {chk.metric} {word} beyond tolerance: baseline {_fmt(base)}, "
                f"current {_fmt(current)}, tolerance {tol_text}{note} (limit {_fmt(bound)})"
            )
        basis = quality.basis.value if chk.name == "quality" else ""
        verdicts.append(Verdict(case_id, chk.name, "baseline", chk.metric, Status.PASS if ok else Status.FAIL,
                                current, base, tol, message=message, basis=basis))
    return verdicts
