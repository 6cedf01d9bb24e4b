"""Quality of a model on a held-out split, with a 95 % interval, and its agreement with the reference model."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class QualityStats:
    """Quality of one model on the test split.

    ``value`` is the metric (accuracy, mean cosine...) with a 95 % interval; ``retention`` is the share of the
    reference's quality kept (accuracy ratio; for embeddings the mean cosine to the reference itself);
    ``agreement`` is agreement with the reference's predictions (same top-1; similarity-ranking correlation).
    """

    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    retention: float
    agreement: float
    extra: Mapping[str, float] = dataclasses.field(default_factory=dict)
    # 95 % interval of ``retention`` over the test items (paired: both models scored on the same items)
    retention_low: float = math.nan
    retention_high: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["extra"] = dict(self.extra)
        return out


class QualityMetric(Protocol):
    """Scores a model's outputs on a split against the targets and the reference model's outputs."""

    name: str

    def evaluate(
        self, outputs: np.ndarray, reference: np.ndarray, targets: np.ndarray | None, extra: Mapping[str, Any]
    ) -> QualityStats: ...


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; sane at 0 and n, unlike the normal approximation."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: float error must not exclude p
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


RETENTION_RESAMPLES = 2000


def paired_ratio_interval(scores: np.ndarray, reference: np.ndarray, confidence: float = 0.95,
                          resamples: int = RETENTION_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``mean(scores) / mean(reference)`` over paired items (the same test items
    drawn for both): the retention's noise from which items the test set happens to hold. Seeded, so one pair of
    score vectors always gets one interval."""
    a, b = np.asarray(scores, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired scores need two equal, non-empty 1-D arrays, got {a.shape} and {b.shape}")
    if np.array_equal(a, b):
        ratio = 1.0 if b.mean() > 0 else math.nan
        return ratio, ratio
    idx = np.random.default_rng(seed).integers(0, a.size, size=(resamples, a.size))
    num, den = a[idx].mean(axis=1), b[idx].mean(axis=1)
    ratios = num[den > 0] / den[den > 0]
    if ratios.size == 0:
        return math.nan, math.nan
    tail = (1 - confidence) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail])
    return float(low), float(high)


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean; a zero-width interval when all values are equal."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("mean_interval needs at least one value")
    mean = float(values.mean())
    if values.size < 2 or float(values.std()) == 0.0:
        return mean, mean
    sem = float(stats.sem(values))
    half = sem * float(stats.t.ppf(0.5 + confidence / 2, values.size - 1))
    return mean - half, mean + half


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b``."""
    a = np.asarray(a, dtype=np.float64).reshape(a.shape[0], -1)
    b = np.asarray(b, dtype=np.float64).reshape(b.shape[0], -1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)


@dataclasses.dataclass(frozen=True)
class Accuracy:
    """Top-1 accuracy against labels; retention = accuracy / reference accuracy; agreement = same top-1."""

    name: str = "accuracy"

    def evaluate(
        self, outputs: np.ndarray, reference: np.ndarray, targets: np.ndarray | None, extra: Mapping[str, Any]
    ) -> QualityStats:
        if targets is None:
            raise ValueError("accuracy needs targets (labels) on the split")
        pred = np.asarray(outputs).argmax(axis=1)
        ref_pred = np.asarray(reference).argmax(axis=1)
        targets = np.asarray(targets)
        n = int(targets.shape[0])
        correct = int((pred == targets).sum())
        acc = correct / n
        ref_acc = float((ref_pred == targets).mean())
        low, high = wilson_interval(correct, n)
        kept = (pred == targets).astype(np.float64)
        ret_low, ret_high = paired_ratio_interval(kept, (ref_pred == targets).astype(np.float64))
        return QualityStats(
            metric=self.name,
            value=acc,
            ci_low=low,
            ci_high=high,
            n=n,
            retention=acc / ref_acc if ref_acc > 0 else float("nan"),
            agreement=float((pred == ref_pred).mean()),
            extra={"reference_accuracy": ref_acc},
            retention_low=ret_low,
            retention_high=ret_high,
        )


@dataclasses.dataclass(frozen=True)
class EmbeddingFidelity:
    """Fidelity of sentence embeddings to the reference model's: cosine per sentence (mean, with CI, and min),
    and agreement of the similarity ranking of sentence pairs (Spearman's rho), pairs from ``extra["pairs"]``."""

    name: str = "cosine_to_reference"

    def evaluate(
        self, outputs: np.ndarray, reference: np.ndarray, targets: np.ndarray | None, extra: Mapping[str, Any]
    ) -> QualityStats:
        cos = cosine_rows(outputs, reference)
        low, high = mean_interval(cos)
        pairs = np.asarray(extra.get("pairs", np.zeros((0, 2), dtype=np.int64)), dtype=np.int64)
        rho = float("nan")
        if len(pairs) >= 3:
            sims = cosine_rows(outputs[pairs[:, 0]], outputs[pairs[:, 1]])
            ref_sims = cosine_rows(reference[pairs[:, 0]], reference[pairs[:, 1]])
            rho = float(stats.spearmanr(sims, ref_sims).statistic)
        mean = float(cos.mean())
        return QualityStats(
            metric=self.name,
            value=mean,
            ci_low=low,
            ci_high=high,
            n=int(cos.size),
            retention=mean,
            agreement=rho,
            extra={"cosine_min": float(cos.min()), "pairs": float(len(pairs))},
            retention_low=low,
            retention_high=high,
        )


@dataclasses.dataclass(frozen=True)
class TopOneAgreement:
    """Fidelity of a classifier to its own fp32 reference where no labels exist (a pretrained ImageNet model on
    photographs outside ImageNet): the share of items whose top-1 class is the reference's, with its Wilson
    interval; retention is that share (the reference agrees with itself), and the mean logit cosine is kept."""

    name: str = "top1_agreement"

    def evaluate(
        self, outputs: np.ndarray, reference: np.ndarray, targets: np.ndarray | None, extra: Mapping[str, Any]
    ) -> QualityStats:
        out, ref = np.asarray(outputs), np.asarray(reference)
        same = out.argmax(axis=1) == ref.argmax(axis=1)
        n, agreed = int(same.size), int(same.sum())
        low, high = wilson_interval(agreed, n)
        share = agreed / n
        cos = cosine_rows(out, ref)
        return QualityStats(
            metric=self.name,
            value=share,
            ci_low=low,
            ci_high=high,
            n=n,
            retention=share,
            agreement=share,
            extra={"logit_cosine_mean": float(cos.mean()), "logit_cosine_min": float(cos.min())},
            retention_low=low,
            retention_high=high,
        )
