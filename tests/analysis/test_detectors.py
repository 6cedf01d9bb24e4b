import numpy as np
import pytest

from harness.analysis.detectors import DetectorSettings, clean_window, ks_bonferroni, mmd_permutation, rates
from harness.errors import ConfigError


def _softmax(n, shift=0.0, seed=0):
    logits = np.random.default_rng(seed).normal(size=(n, 4))
    logits[:, 0] += shift
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def test_detectors_rarely_fire_on_clean_windows_and_mostly_on_shifted_ones():
    clean = _softmax(800)
    shifted = _softmax(800, shift=1.0, seed=1)
    settings = DetectorSettings(window=200, trials=40, alpha=0.05, permutations=50)
    null = rates(clean, clean_window(clean), settings)
    power = rates(clean, lambda rows, n, rng: shifted[rows[:n]], settings)
    assert null.window == 200 and all(null.fired[d] <= 0.15 for d in null.fired)
    assert all(power.fired[d] >= 0.9 for d in power.fired)


def test_each_test_separates_a_large_shift_and_not_an_identical_window():
    a, b = _softmax(200), _softmax(200, shift=2.0, seed=3)
    rng = np.random.default_rng(0)
    assert ks_bonferroni(a, b, 0.05) and mmd_permutation(a, b, 0.05, 50, rng)
    assert not ks_bonferroni(a, a, 0.05) and not mmd_permutation(a, a, 0.05, 50, rng)


def test_a_small_pool_halves_the_window():
    clean = _softmax(100)
    assert rates(clean, clean_window(clean), DetectorSettings(trials=2, permutations=10)).window == 50


@pytest.mark.parametrize("field", ["alpha", "trials", "window"])
def test_bad_settings_are_refused_naming_the_field(field):
    with pytest.raises(ConfigError, match=f"`{field}`"):
        DetectorSettings(**{field: 0})
