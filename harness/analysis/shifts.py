"""Distribution shifts generated offline with NumPy and SciPy, three severities each, chosen by input kind.

Images (MNIST-C style): Gaussian noise, blur, rotation with a shift, occlusion, contrast loss; tables: noise scaled
by each feature's spread, features knocked out to their mean, a unit error on one feature, a class-ratio shift.
Every shift is a pure function of its inputs, the severity and a seeded generator, so a run always makes the
same shifted sets. A shift returns the moved inputs and the rows of the original it drew (a class-ratio shift
resamples rows; the others keep every row in order), so labels and paired comparisons follow the rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from harness.errors import ConfigError

SEVERITIES = (1, 2, 3)

# Shifted inputs and, per shifted row, the row of the original it came from.
Shifted = tuple[np.ndarray, np.ndarray]
ShiftFn = Callable[[np.ndarray, np.ndarray | None, int, np.random.Generator, "FeatureStats"], Shifted]


@dataclasses.dataclass(frozen=True)
class FeatureStats:
    """What a shift may know about the clean data: per-feature mean and spread of the training split, and its
    value range (images are clipped back into it)."""

    mean: np.ndarray
    std: np.ndarray
    low: float
    high: float

    @classmethod
    def of(cls, x: np.ndarray) -> FeatureStats:
        flat = x.reshape(len(x), -1)
        std = flat.std(axis=0)
        return cls(flat.mean(axis=0), np.where(std > 0, std, 1.0), float(flat.min()), float(flat.max()))


@dataclasses.dataclass(frozen=True)
class Shift:
    """One named shift for one input kind; ``fn(x, labels, severity, rng, stats)``."""

    name: str
    kind: str  # "image" or "tabular" (model_zoo.spec.InputKind values)
    fn: ShiftFn
    describe: str
    resamples: bool = False  # draws rows (a population shift) instead of moving the inputs of every row

    def __call__(self, x: np.ndarray, labels: np.ndarray | None, severity: int, rng: np.random.Generator,
                 stats: FeatureStats) -> Shifted:
        if severity not in SEVERITIES:
            raise ConfigError(f"`severity` of shift {self.name!r} must be one of {SEVERITIES}, got {severity!r}")
        return self.fn(x, labels, severity, rng, stats)


def _rows(x: np.ndarray) -> np.ndarray:
    return np.arange(len(x))


def _clip(x: np.ndarray, stats: FeatureStats) -> np.ndarray:
    return np.clip(x, stats.low, stats.high).astype(np.float32)


# -- images (N, C, H, W) ----------------------------------------------------------------------------------------
def gaussian_noise(x: np.ndarray, labels: np.ndarray | None, s: int, rng: np.random.Generator,
                   stats: FeatureStats) -> Shifted:
    sigma = (0.1, 0.2, 0.35)[s - 1] * (stats.high - stats.low)
    return _clip(x + rng.normal(0.0, sigma, x.shape), stats), _rows(x)


def blur(x: np.ndarray, labels: np.ndarray | None, s: int, rng: np.random.Generator,
         stats: FeatureStats) -> Shifted:
    sigma = (0.5, 0.8, 1.2)[s - 1] * x.shape[-1] / 8  # in pixels of an 8x8 image, scaled to the input's size
    return ndimage.gaussian_filter(x, sigma=(0, 0, sigma, sigma)).astype(np.float32), _rows(x)


def rotate_shift(x: np.ndarray, labels: np.ndarray | None, s: int, rng: np.random.Generator,
                 stats: FeatureStats) -> Shifted:
    """Each image rotated by ± the severity's angle and moved by up to its offset (a random sign per image)."""
    angle, offset = (10, 20, 35)[s - 1], (0.0, 0.5, 1.0)[s - 1] * x.shape[-1] / 8
    out = np.empty_like(x, dtype=np.float32)
    for i, image in enumerate(x):
        a = angle * rng.choice((-1.0, 1.0))
        moved = ndimage.rotate(image, a, axes=(1, 2), reshape=False, order=1, mode="constant", cval=stats.low)
        dy, dx = offset * rng.choice((-1.0, 1.0), size=2)
        out[i] = ndimage.shift(moved, (0, dy, dx), order=1, mode="constant", cval=stats.low)
    return _clip(out, stats), _rows(x)


def occlusion(x: np.ndarray, labels: np.ndarray | None, s: int, rng: np.random.Generator,
              stats: FeatureStats) -> Shifted:
    """A square patch (a quarter, a third, half the side) set to the background at a random place per image."""
    side = x.shape[-1]
    patch = max(1, round((0.25, 0.375, 0.5)[s - 1] * side))
    out = x.astype(np.float32).copy()
    tops = rng.integers(0, side - patch + 1, size=(len(x), 2))
    for i, (r, c) in enumerate(tops):
        out[i, :, r:r + patch, c:c + patch] = stats.low
    return out, _rows(x)


def contrast(x: np.ndarray, labels: np.ndarray | None, s: int, rng: np.random.Generator,
             stats: FeatureStats) -> Shifted:
    """Each image pulled towards its own mean: 60 %, 40 %, 25 % of its contrast left."""
    keep = (0.6, 0.4, 0.25)[s - 1]
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return _clip(mean + keep * (x - mean), stats), _rows(x)


# -- tables (N, F) ----------------------------------------------------------------------------------------------
def feature_noise(x: np.ndarray, labels: np.ndarray | None, s: int, rng: np.random.Generator,
                  stats: FeatureStats) -> Shifted:
    """Gaussian noise of 0.25, 0.5, 1 x each feature's spread on the training split."""
    scale = (0.25, 0.5, 1.0)[s - 1]
    return (x + rng.normal(0.0, 1.0, x.shape) * scale * stats.std).astype(np.float32), _rows(x)


def knockout(x: np.ndarray, labels: np.ndarray | None, s: int, rng: np.random.Generator,
             stats: FeatureStats) -> Shifted:
    """1, 3, 6 features (the same seeded choice for every row) replaced by their training mean: a sensor gone."""
    count = min(x.shape[1], (1, 3, 6)[s - 1])
    cols = rng.choice(x.shape[1], size=count, replace=False)
    out = x.astype(np.float32).copy()
    out[:, cols] = stats.mean[cols]
    return out, _rows(x)


def unit_error(x: np.ndarray, labels: np.ndarray | None, s: int, rng: np.random.Generator,
               stats: FeatureStats) -> Shifted:
    """One feature (a seeded choice) read in another unit: its deviation from the mean scaled by 2, 5, 10."""
    factor = (2.0, 5.0, 10.0)[s - 1]
    col = int(rng.integers(0, x.shape[1]))
    out = x.astype(np.float32).copy()
    out[:, col] = stats.mean[col] + factor * (x[:, col] - stats.mean[col])
    return out, _rows(x)


def class_ratio(x: np.ndarray, labels: np.ndarray | None, s: int, rng: np.random.Generator,
                stats: FeatureStats) -> Shifted:
    """The rows resampled (same count, with replacement) so that class 0 holds its share plus a quarter, a half,
    three quarters of the rest: the population changed, not the inputs."""
    if labels is None:
        raise ConfigError("shift `class_ratio` needs labels; expected a split with targets")
    base = float(np.mean(labels == 0))
    share = base + (1.0 - base) * s / 4
    first, rest = np.flatnonzero(labels == 0), np.flatnonzero(labels != 0)
    n_first = round(share * len(labels))
    rows = np.concatenate([rng.choice(first, n_first, replace=True),
                           rng.choice(rest, len(labels) - n_first, replace=True)])
    rows = np.sort(rows)
    return x[rows].astype(np.float32), rows


SHIFTS: tuple[Shift, ...] = (
    Shift("gaussian_noise", "image", gaussian_noise, "Gaussian pixel noise, sd 0.1 / 0.2 / 0.35 of the range"),
    Shift("blur", "image", blur, "Gaussian blur, sd 0.5 / 0.8 / 1.2 px of an 8x8 image"),
    Shift("rotate_shift", "image", rotate_shift, "rotation ±10 / 20 / 35° with a shift of 0 / 0.5 / 1 px (8x8)"),
    Shift("occlusion", "image", occlusion, "a background patch of 1/4, 3/8, 1/2 of the side"),
    Shift("contrast", "image", contrast, "contrast cut to 60 / 40 / 25 %"),
    Shift("feature_noise", "tabular", feature_noise, "noise of 0.25 / 0.5 / 1 x each feature's spread"),
    Shift("knockout", "tabular", knockout, "1 / 3 / 6 features replaced by their training mean"),
    Shift("unit_error", "tabular", unit_error, "one feature's deviation scaled by 2 / 5 / 10 (another unit)"),
    Shift("class_ratio", "tabular", class_ratio, "class 0's share raised by 1/4, 1/2, 3/4 of the rest",
          resamples=True),
)


def shifts_for(kind: str) -> tuple[Shift, ...]:
    """The shifts of an input kind (``image``, ``tabular``); none for another kind."""
    return tuple(s for s in SHIFTS if s.kind == kind)


def seed_of(name: str, severity: int, base: int = 0) -> int:
    """A stable seed per (shift, severity): the same shifted set in every run and on every machine."""
    return base + 1000 * severity + sum(ord(c) * (i + 1) for i, c in enumerate(name))
