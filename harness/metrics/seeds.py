"""Statistics over training seeds: a technique's effect is a difference between two noisy trainings.

Pure functions over per-seed figures. Arms trained on the same seeds are paired (seed ``s`` of the technique and
seed ``s`` of the control share the initialisation and the data order), so the effect is the mean of the
per-seed differences, with a Student-t interval over seeds. Every seed is scored on the same test items, so the
seeds' scatter does not show which items the test set happens to hold: where per-item differences are given, their
standard error is added in quadrature (``half = sqrt(half_seeds² + half_items²)``) — both sources of noise, at the
price of counting some of the items' noise twice (a conservative interval).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation of one arm's per-seed figures (NaN figures are left out)."""

    values: tuple[float, ...]
    mean: float
    std: float
    n: int

    @classmethod
    def from_values(cls, values: Sequence[float]) -> Spread:
        finite = [float(v) for v in values if math.isfinite(v)]
        mean = float(np.mean(finite)) if finite else math.nan
        std = float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan
        return cls(tuple(float(v) for v in values), mean, std, len(finite))


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """``a − b`` over paired seeds: mean, 95 % Student-t interval, and whether the interval holds zero."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    p_value: float

    @property
    def within_noise(self) -> bool:
        """The difference cannot be told from seed noise: its interval holds 0 (or there is no interval)."""
        if not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high)):
            return True
        return self.ci_low <= 0.0 <= self.ci_high

    @classmethod
    def from_pairs(cls, a: Sequence[float], b: Sequence[float], items: np.ndarray | None = None,
                   confidence: float = 0.95) -> PairedDifference:
        """Pairs where either figure is NaN (a diverged run) are left out; fewer than two pairs give no interval.
        ``items``: per test item, the difference of the two arms' scores averaged over the seeds."""
        if len(a) != len(b):
            raise ValueError(f"paired figures need as many values on each side, got {len(a)} and {len(b)}")
        diffs = np.array([x - y for x, y in zip(a, b, strict=True) if math.isfinite(x) and math.isfinite(y)])
        n = len(diffs)
        if n == 0:
            return cls(math.nan, math.nan, math.nan, 0, math.nan)
        mean = float(diffs.mean())
        if n < 2:
            return cls(mean, math.nan, math.nan, n, math.nan)
        sd = float(diffs.std(ddof=1))
        item_half = item_half_width(items, confidence)
        if sd == 0.0 and item_half == 0.0:
            return cls(mean, mean, mean, n, 1.0 if mean == 0 else 0.0)
        se = sd / math.sqrt(n)
        seed_half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
        half = math.hypot(seed_half, item_half)
        # the paired t-test over seeds, without scipy's warning on ties (items add no p-value of their own)
        p = float(2 * stats.t.sf(abs(mean) / se, n - 1)) if se > 0 else (1.0 if mean == 0 else 0.0)
        return cls(mean, mean - half, mean + half, n, p)

    def to_dict(self) -> dict[str, Any]:
        out = {k: _finite_or_none(v) for k, v in dataclasses.asdict(self).items()}
        out["within_noise"] = self.within_noise
        return out


def item_half_width(items: np.ndarray | None, confidence: float = 0.95) -> float:
    """Half-width of the normal interval of the mean of per-item differences (0 without items)."""
    if items is None:
        return 0.0
    values = np.asarray(items, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return 0.0
    return float(stats.norm.ppf(0.5 + confidence / 2)) * float(values.std(ddof=1)) / math.sqrt(values.size)


def _finite_or_none(value: float | int) -> float | int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
