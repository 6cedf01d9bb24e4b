import numpy as np
import pytest

from harness.analysis.shifts import SEVERITIES, SHIFTS, FeatureStats, seed_of, shifts_for
from harness.errors import ConfigError

RNG = np.random.default_rng(0)
IMAGES = RNG.random((40, 1, 8, 8)).astype(np.float32)
TABLE = RNG.normal(size=(200, 6)).astype(np.float32)
LABELS = (np.arange(200) % 3 == 0).astype(np.int64)  # class 0 holds two thirds


def _data(kind):
    return (IMAGES, None) if kind == "image" else (TABLE, LABELS)


@pytest.mark.parametrize("shift", SHIFTS, ids=lambda s: s.name)
def test_a_shift_is_the_same_for_the_same_seed_and_grows_with_severity(shift):
    x, y = _data(shift.kind)
    stats = FeatureStats.of(x)
    if shift.name == "class_ratio":
        shares = [np.mean(y[shift(x, y, s, np.random.default_rng(1), stats)[1]] == 0) for s in SEVERITIES]
        assert shares == sorted(shares) and shares[0] > np.mean(y == 0)
        return
    moved = [shift(x, y, s, np.random.default_rng(seed_of(shift.name, s)), stats) for s in SEVERITIES]
    again = shift(x, y, 1, np.random.default_rng(seed_of(shift.name, 1)), stats)
    assert np.array_equal(moved[0][0], again[0]) and np.array_equal(moved[0][1], np.arange(len(x)))
    distance = [float(np.abs(m[0] - x).mean()) for m in moved]
    assert distance[0] > 0 and distance == sorted(distance)


def test_image_shifts_stay_in_the_clean_range():
    stats = FeatureStats.of(IMAGES)
    for shift in shifts_for("image"):
        out = shift(IMAGES, None, 3, np.random.default_rng(0), stats)[0]
        assert out.min() >= stats.low and out.max() <= stats.high


def test_a_severity_out_of_range_is_refused_naming_it():
    with pytest.raises(ConfigError, match="`severity` of shift 'blur' must be one of"):
        shifts_for("image")[1](IMAGES, None, 4, np.random.default_rng(0), FeatureStats.of(IMAGES))


def test_class_ratio_without_labels_is_refused():
    shift = next(s for s in SHIFTS if s.resamples)
    with pytest.raises(ConfigError, match="needs labels"):
        shift(TABLE, None, 1, np.random.default_rng(0), FeatureStats.of(TABLE))
