"""Drift detectors on a model's softmax outputs, as a user would deploy them beside the model.

Two tests of "the outputs of this window come from the same distribution as a clean window" ("Failing Loudly",
Rabanser et al., NeurIPS 2019): a two-sample Kolmogorov-Smirnov test per class probability with a Bonferroni
correction over the classes (SciPy's ``ks_2samp``), and a kernel MMD test (Gaussian kernel, median-distance
bandwidth) whose p-value comes from a permutation test. :func:`rates` estimates how often each fires: its power on
a shifted window and its false-positive rate on a clean one, over repeated draws of disjoint windows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from scipy import stats

from harness.config import require_int, require_range

DETECTORS = ("ks", "mmd")


def ks_bonferroni(clean: np.ndarray, window: np.ndarray, alpha: float) -> bool:
    """Whether any class probability differs between the windows: KS per column at ``alpha / columns``."""
    pvalues = stats.ks_2samp(clean, window, axis=0).pvalue
    return bool(np.min(pvalues) < alpha / clean.shape[1])


def mmd_permutation(clean: np.ndarray, window: np.ndarray, alpha: float, permutations: int,
                    rng: np.random.Generator) -> bool:
    """Whether the squared MMD of the two windows exceeds what ``permutations`` relabellings of their union
    give, at level ``alpha`` (p = (1 + #{permuted >= observed}) / (1 + permutations))."""
    pooled = np.concatenate([clean, window]).astype(np.float32)  # float32: the permutations' matmul is 10x faster
    sq = np.einsum("ij,ij->i", pooled, pooled)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    positive = d2[d2 > 0]
    bandwidth = float(np.median(positive)) if positive.size else 1.0
    kernel = np.exp(-d2 / bandwidth)
    n, m = len(clean), len(window)
    signs = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)]).astype(np.float32)
    weights = np.vstack([signs, rng.permuted(np.tile(signs, (permutations, 1)), axis=1)])
    mmd2 = np.einsum("bi,bi->b", weights @ kernel, weights)
    p = (1 + np.sum(mmd2[1:] >= mmd2[0])) / (1 + permutations)
    return bool(p < alpha)


@dataclasses.dataclass(frozen=True)
class DetectorSettings:
    """Window size, repeated draws, significance level and MMD permutations."""

    window: int = 200
    trials: int = 20
    alpha: float = 0.05
    permutations: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        require_int("window", self.window, 10)
        require_int("trials", self.trials, 1)
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
