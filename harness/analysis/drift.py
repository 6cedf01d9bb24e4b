"""Drift: a variant's quality under shifted inputs beside its reference's, and when it counts as fragile.

Per shift and severity: the quality of both models on the shifted test split, and how far the variant's outputs
are from the reference's there (Hooker et al., "What Do Compressed Deep Neural Networks Forget?": compression
costs some inputs far more than the average says). For a classifier, quality is accuracy and disagreement the
share of items whose top-1 differs; for an embedding model (no labels), quality is the mean cosine to the
reference's embedding of the *clean* item (for the reference itself, how far the shift moved it; for the variant,
how far the shift and the optimization together did) and disagreement is 1 - the mean cosine of the two models'
embeddings of the shifted item. The contract: a variant that loses less than one point on clean data must not
lose more than two points beyond its reference under any shift at severity <= 3 — judged on the worst (shift,
severity), with the interval of its paired per-item differences; otherwise it is fragile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from harness.analysis.interpretability import Interval, mean_interval
from harness.metrics.quality import cosine_rows

CLEAN_LOSS_MAX = 0.01  # the contract judges only variants that lose less than this on clean data
EXCESS_MAX = 0.02  # the loss beyond the reference a variant may show under a shift at severity <= 3


@dataclasses.dataclass(frozen=True)
class ShiftCell:
    """One shift at one severity, keyed as its figures are (``noise.s3``)."""

    shift: str
    severity: int

    @property
    def key(self) -> str:
        return f"{self.shift}.s{self.severity}"


@dataclasses.dataclass(frozen=True)
class Condition(ShiftCell):
    """Top-1 predictions of both models on one shifted test set; ``rows`` maps its rows to the test split's."""

    rows: np.ndarray
    reference: np.ndarray
    variant: np.ndarray


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


def scored(shift: str, severity: int, reference: np.ndarray, variant: np.ndarray,
           disagreement: np.ndarray) -> Point:
    """A point from per-item scores of both models (1/0 right for accuracy, a cosine for embeddings) and the
    per-item disagreement; the excess is the paired difference of the scores."""
    ref, var = np.asarray(reference, dtype=np.float64), np.asarray(variant, dtype=np.float64)
    return Point(shift, severity, float(ref.mean()), float(var.mean()), float(np.mean(disagreement)),
                 mean_interval(ref - var))


def point(condition: Condition, labels: np.ndarray) -> Point:
    y = labels[condition.rows]
    return scored(condition.shift, condition.severity, condition.reference == y, condition.variant == y,
                  condition.reference != condition.variant)


@dataclasses.dataclass(frozen=True)
class EmbeddingCondition(ShiftCell):
    """Both models' embeddings of one shifted test set, rows in the test split's order, and the reference's
    embeddings of the clean test split: what an embedding model's quality is measured against."""

    reference_clean: np.ndarray
    reference: np.ndarray
    variant: np.ndarray


def embedding_point(condition: EmbeddingCondition) -> Point:
    """Quality = cosine to the reference's clean embedding, per item, for both models (the variant's own clean
    embedding would hide what the optimization lost); disagreement = 1 - cosine of the two shifted embeddings."""
    anchor = condition.reference_clean
    return scored(condition.shift, condition.severity, cosine_rows(condition.reference, anchor),
                  cosine_rows(condition.variant, anchor),
                  np.maximum(0.0, 1.0 - cosine_rows(condition.variant, condition.reference)))


def embedding_points(reference_clean: np.ndarray, variant_clean: np.ndarray,
                     reference: Mapping[tuple[str, int], np.ndarray],
                     variant: Mapping[tuple[str, int], np.ndarray]) -> tuple[Point, list[Point]]:
    """The clean point (the reference scores 1; the variant its cosine to the reference) and one point per
    (shift, severity) of both models' embeddings, every one read against the reference's clean embeddings."""
    clean = embedding_point(EmbeddingCondition("clean", 0, reference_clean, reference_clean, variant_clean))
    return clean, [embedding_point(EmbeddingCondition(name, severity, reference_clean, reference[(name, severity)],
                                                      variant[(name, severity)])) for name, severity in reference]


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
    """The contract's inputs for a classifier: clean loss (reference accuracy - variant accuracy) and the point
    with the largest excess loss among severities up to ``max_severity``."""
    return fragility_of(point(clean, labels), points, max_severity)


def fragility_of(base: Point, points: Sequence[Point], max_severity: int = 3) -> Fragility:
    """The contract's inputs from the clean point (reference quality - variant quality: for embeddings 1 - the
    variant's mean cosine to the reference) and the shifted points."""
    eligible = [p for p in points if p.severity <= max_severity]
    worst = max(eligible, key=lambda p: p.excess.mean, default=None)
    loss = base.reference - base.variant
    return Fragility(loss, loss < CLEAN_LOSS_MAX, worst)


def proof_figures(fragility: Fragility, points: Sequence[Point], own: Mapping[str, Mapping[str, float]],
                  reference: Mapping[str, Mapping[str, float]] | None, top: int) -> dict[str, float]:
    """A case's ``proof`` figures: the contract's, each shift's quality and disagreement at severity ``top``, the
    variant's own detectors and (for a reference case: ``reference`` given) the reference's detectors over its
    larger number of draws (false-positive rates, power at ``top``)."""
    proof = fragility.figures()
    for p in points:
        if p.severity == top:
            proof[f"drift.{p.shift}.s{top}.quality"] = p.variant
            proof[f"drift.{p.shift}.s{top}.disagreement"] = p.disagreement
    for d, figures in own.items():
        for key, value in figures.items():
            if key not in ("trials", "null_trials"):
                proof[f"detector.{d}.{key}"] = value
    for d, figures in (reference or {}).items():
        for key, value in figures.items():
            if key in ("fpr", "fpr_high", "trials", "null_trials") or key.endswith(f".s{top}"):
                proof[f"reference_detector.{d}.{key}"] = value
    return proof
