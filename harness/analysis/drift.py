"""Drift: a variant's quality under shifted inputs beside its reference's, and when it counts as fragile.

Per shift and severity: the quality of both models on the shifted test split, and how often the variant's top-1
differs from the reference's there (Hooker et al., "What Do Compressed Deep Neural Networks Forget?": compression
costs some inputs far more than the average says). The contract: a variant that loses less than one point on
clean data must not lose more than two points beyond its reference under any shift at severity <= 3 — judged on
the worst (shift, severity), with the interval of its paired per-item differences; otherwise it is fragile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from harness.analysis.interpretability import Interval, mean_interval

CLEAN_LOSS_MAX = 0.01  # the contract judges only variants that lose less than this on clean data
EXCESS_MAX = 0.02  # the loss beyond the reference a variant may show under a shift at severity <= 3


@dataclasses.dataclass(frozen=True)
class Condition:
    """Top-1 predictions of both models on one shifted test set; ``rows`` maps its rows to the test split's."""

    shift: str
    severity: int
    rows: np.ndarray
    reference: np.ndarray
    variant: np.ndarray

    @property
    def key(self) -> str:
        return f"{self.shift}.s{self.severity}"


@dataclasses.dataclass(frozen=True)
class Point:
    """One (shift, severity) of a curve: both accuracies, the variant's disagreement and its excess loss."""

    shift: str
    severity: int
    reference: float
    variant: float
    disagreement: float
    excess: Interval  # (reference right - variant right) per item: the loss beyond the reference

    def to_dict(self) -> dict[str, float | int | str]:
        return {"shift": self.shift, "severity": self.severity, "reference": self.reference,
                "variant": self.variant, "disagreement": self.disagreement, "excess": self.excess.mean,
                "excess_low": self.excess.low, "excess_high": self.excess.high}


def point(condition: Condition, labels: np.ndarray) -> Point:
    y = labels[condition.rows]
    ref_right, var_right = condition.reference == y, condition.variant == y
    return Point(condition.shift, condition.severity, float(ref_right.mean()), float(var_right.mean()),
                 float(np.mean(condition.reference != condition.variant)),
                 mean_interval(ref_right.astype(float) - var_right.astype(float)))


@dataclasses.dataclass(frozen=True)
class Fragility:
    """The clean loss, whether the contract applies, and the worst (shift, severity) with its interval."""

    clean_loss: float
    judged: bool
    worst: Point | None

    def figures(self) -> dict[str, float]:
        out = {"drift.clean_loss": self.clean_loss, "drift.clean_ok": float(self.judged)}
        if self.worst is not None:
            excess = self.worst.excess
            out.update({"drift.worst_excess": excess.mean, "drift.worst_excess.ci_low": excess.low,
                        "drift.worst_excess.ci_high": excess.high,
                        "drift.worst_excess.n": float(excess.n), "drift.fragile": float(excess.low > EXCESS_MAX)})
        return out


def fragility(clean: Condition, points: Sequence[Point], labels: np.ndarray, max_severity: int = 3) -> Fragility:
    """The contract's inputs: clean loss (reference accuracy - variant accuracy) and the point with the largest
    excess loss among severities up to ``max_severity``."""
    base = point(clean, labels)
    eligible = [p for p in points if p.severity <= max_severity]
    worst = max(eligible, key=lambda p: p.excess.mean, default=None)
    loss = base.reference - base.variant
    return Fragility(loss, loss < CLEAN_LOSS_MAX, worst)
