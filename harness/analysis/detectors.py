"""Drift detectors on a model's outputs (a classifier's softmax, an embedding model's embeddings), as a user would
deploy them beside the model.

Two tests of "the outputs of this window come from the same distribution as a clean window" ("Failing Loudly",
Rabanser et al., NeurIPS 2019): a two-sample Kolmogorov-Smirnov test per class probability with a Bonferroni
correction over the classes (SciPy's ``ks_2samp``), and a kernel MMD test (Gaussian kernel, median-distance
bandwidth) whose p-value comes from a permutation test. :func:`rates` estimates how often each fires: its power on
a shifted window and its false-positive rate on a clean one, over repeated draws of disjoint windows.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping

import numpy as np
from scipy import stats

from harness.config import require_int, require_range

DETECTORS = ("ks", "mmd")


def ks_statistics(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per column, the two-sample KS statistic as SciPy's ``ks_2samp`` defines it: the largest gap between the
    two empirical CDFs, read after each run of tied values (``searchsorted(side="right")``). The gaps are counted
    in integers (``len(a) * len(b)`` times the gap), so columns with equal statistics compare equal. Read only at
    the end of each run of ties, the gap does not depend on the order within the run, so the sort need not be
    stable; columns are sorted as contiguous rows (384 embedding columns: 35 % faster than a stable sort down
    the columns)."""
    n, m = len(a), len(b)
    both = np.ascontiguousarray(np.concatenate([a, b]).T)
    order = np.argsort(both, axis=1)
    values = np.take_along_axis(both, order, axis=1)
    from_a = order < n
    gap = np.cumsum(from_a, axis=1, dtype=np.int64) * m - np.cumsum(~from_a, axis=1, dtype=np.int64) * n
    last = np.ones(values.shape, dtype=bool)  # the last of each run of tied values: where the CDFs are read
    last[:, :-1] = values[:, 1:] != values[:, :-1]
    return np.where(last, np.abs(gap), 0).max(axis=1) / (n * m)


def ks_bonferroni(clean: np.ndarray, window: np.ndarray, alpha: float) -> bool:
    """Whether any class probability differs between the windows: KS per column at ``alpha / columns``.

    Every column has the same two sample sizes, so its p-value is one non-increasing function of its statistic:
    the smallest p-value is the p-value of the column with the largest statistic, and SciPy computes only that
    one (a third of the time of all of them; tests/analysis/test_detectors.py checks both agree)."""
    column = int(np.argmax(ks_statistics(clean, window)))
    pvalue = stats.ks_2samp(clean[:, column], window[:, column]).pvalue
    return bool(pvalue < alpha / clean.shape[1])


def mmd_permutation(clean: np.ndarray, window: np.ndarray, alpha: float, permutations: int,
                    rng: np.random.Generator) -> bool:
    """Whether the squared MMD of the two windows exceeds what ``permutations`` relabellings of their union
    give, at level ``alpha``."""
    return bool(mmd_pvalue(clean, window, permutations, rng) < alpha)


def mmd_pvalue(clean: np.ndarray, window: np.ndarray, permutations: int, rng: np.random.Generator) -> float:
    """The permutation p-value of the windows' squared MMD: (1 + #{permuted >= observed}) / (1 + permutations),
    the observed labelling counted among the permutations (so that the test keeps its level)."""
    pooled = np.concatenate([clean, window]).astype(np.float32)  # float32: the permutations' matmul is 10x faster
    sq = np.einsum("ij,ij->i", pooled, pooled)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    pairs = d2[_upper(len(pooled))]  # each pair once: the median of half the matrix takes half the time
    positive = pairs[pairs > 0]
    bandwidth = float(np.median(positive)) if positive.size else 1.0
    kernel = np.exp(-d2 / bandwidth)
    n, m = len(clean), len(window)
    signs = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)]).astype(np.float32)
    weights = np.vstack([signs, rng.permuted(np.tile(signs, (permutations, 1)), axis=1)])
    mmd2 = np.einsum("bi,bi->b", weights @ kernel, weights)
    return float((1 + np.sum(mmd2[1:] >= mmd2[0])) / (1 + permutations))


@functools.lru_cache(maxsize=8)
def _upper(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


@dataclasses.dataclass(frozen=True)
class DetectorSettings:
    """Window size, repeated draws (of shifted windows, and of clean ones), significance level, MMD
    permutations and the draws' seed."""

    window: int = 200
    trials: int = 100  # draws per power figure (shifted windows): steps of 1 %
    null_trials: int = 500  # draws for the false-positive rate (clean windows): steps of 0.2 %, so that its 95 %
    # upper bound can fall below a 5 % target (0.036 from 10 firings in 500; from 100 draws only 0-1 firings do)
    alpha: float = 0.05
    permutations: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        require_int("window", self.window, 10)
        require_int("trials", self.trials, 1)
        require_int("null_trials", self.null_trials, 1)
        require_range("alpha", self.alpha, 0.0, 1.0, low_open=True, high_open=True)
        require_int("permutations", self.permutations, 10)


# Draws the shifted window: (rows of the pool it may use, n, rng) -> the window's model outputs.
ShiftedWindow = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Rates:
    """How often each detector fired over the draws, and the window size it had."""

    fired: dict[str, float]
    window: int
    trials: int

    def upper(self, detector: str, confidence: float = 0.95) -> float:
        """The one-sided Clopper-Pearson upper bound of the detector's firing rate over the draws: a
        false-positive rate is shown to be <= 5 % only when this bound is (0 of 100 draws: 0.030; 2 of 100: 0.062)."""
        return upper_bound(round(self.fired[detector] * self.trials), self.trials, confidence)


def upper_bound(hits: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen ``hits`` times in ``trials``."""
    if hits >= trials:
        return 1.0
    return float(stats.beta.ppf(confidence, hits + 1, trials - hits))


def rates(clean: np.ndarray, shifted: ShiftedWindow, settings: DetectorSettings, seed: int = 0) -> Rates:
    """Each detector's firing rate: per draw, the pool's rows split at random into two disjoint halves; a clean
    window of ``settings.window`` rows from the first (fewer when the pool is small: each half holds at most half
    of it) against the window ``shifted`` makes from the second. With ``shifted`` taking clean rows, the rate is
    the false-positive rate; with a shift, the power."""
    rng = np.random.default_rng(settings.seed + seed)
    n = min(settings.window, len(clean) // 2)
    hits = dict.fromkeys(DETECTORS, 0)
    for _ in range(settings.trials):
        order = rng.permutation(len(clean))
        first, second = order[: len(clean) // 2], order[len(clean) // 2:]
        reference, window = clean[first[:n]], shifted(second, n, rng)
        hits["ks"] += ks_bonferroni(reference, window, settings.alpha)
        hits["mmd"] += mmd_permutation(reference, window, settings.alpha, settings.permutations, rng)
    return Rates({k: v / settings.trials for k, v in hits.items()}, n, settings.trials)


def clean_window(clean: np.ndarray) -> ShiftedWindow:
    """The null: a second clean window (for the false-positive rate)."""
    return lambda rows, n, rng: clean[rows[:n]]


def table(clean: np.ndarray, windows: Mapping[str, tuple[ShiftedWindow, int]],
          settings: DetectorSettings) -> dict[str, dict[str, float]]:
    """Per detector, its false-positive rate (``fpr``, and ``fpr_high`` its 95 % upper bound over the draws) and
    its power on each named shifted window (``windows``: name -> (window, seed of its draws)), with the window
    size and the number of draws."""
    null = rates(clean, clean_window(clean), dataclasses.replace(settings, trials=settings.null_trials))
    out: dict[str, dict[str, float]] = {d: {"fpr": null.fired[d], "fpr_high": null.upper(d)} for d in DETECTORS}
    for name, (window, seed) in windows.items():
        found = rates(clean, window, settings, seed=seed)
        for d in DETECTORS:
            out[d][name] = found.fired[d]
    for d in DETECTORS:
        out[d]["window"] = float(null.window)
        out[d]["trials"] = float(settings.trials)
        out[d]["null_trials"] = float(null.trials)
    return out


def moved_window(moved: np.ndarray) -> ShiftedWindow:
    """A shift that moves every row: the window takes the moved rows of its half of the pool."""
    return lambda rows, n, rng: moved[rows[:n]]


def random_projection(columns: int, dims: int, seed: int = 0) -> np.ndarray:
    """A fixed Gaussian projection of ``columns`` onto ``dims`` (the untrained random projection of "Failing
    Loudly"; pairwise distances kept within a known factor), the same for every window, case and run."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(columns, dims)) / np.sqrt(dims)).astype(np.float32)
