import numpy as np
import pytest
from scipy import stats

from harness.analysis.detectors import (
    DetectorSettings,
    Rates,
    clean_window,
    ks_bonferroni,
    ks_statistics,
    mmd_permutation,
    mmd_pvalue,
    moved_window,
    random_projection,
    rates,
    table,
    upper_bound,
)
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


@pytest.mark.parametrize("field", ["alpha", "trials", "null_trials", "window"])
def test_bad_settings_are_refused_naming_the_field(field):
    with pytest.raises(ConfigError, match=f"`{field}`"):
        DetectorSettings(**{field: 0})


def _pairs(count=120):
    """Window pairs from clean to clearly shifted, some with tied values (rounded probabilities)."""
    rng = np.random.default_rng(7)
    for i in range(count):
        k, n = (4, 10, 2)[i % 3], (200, 114, 57)[i % 3]
        a = rng.dirichlet(np.ones(k), n)
        b = rng.dirichlet(np.ones(k) * (1 + 0.03 * (i % 15)), n)
        yield (np.round(a, 2), np.round(b, 2)) if i % 4 == 0 else (a, b)


def test_the_ks_test_is_scipys_per_column_test_at_alpha_over_the_columns():
    """ks_bonferroni asks SciPy for the one column with the largest statistic: it must decide as the full test
    at alpha / columns does, and the draws must include some where alpha alone would have decided otherwise."""
    between = 0
    for a, b in _pairs():
        full = stats.ks_2samp(a, b, axis=0)
        assert np.allclose(ks_statistics(a, b), full.statistic, rtol=0, atol=1e-12)
        smallest = float(full.pvalue.min())
        assert ks_bonferroni(a, b, 0.05) == (smallest < 0.05 / a.shape[1])
        between += 0.05 / a.shape[1] <= smallest < 0.05
    assert between >= 3  # draws the correction decides


def test_the_false_positive_bound_is_clopper_pearson():
    assert upper_bound(0, 100) == pytest.approx(1 - 0.05 ** (1 / 100))  # the exact bound with no firing
    assert upper_bound(2, 100) == pytest.approx(0.0616, abs=1e-4)
    assert upper_bound(10, 10) == 1.0
    assert Rates({"ks": 0.02}, 200, 100).upper("ks") == upper_bound(2, 100)


def test_the_mmd_p_value_counts_the_observed_labelling_among_the_permutations():
    a, far = _softmax(100), _softmax(100, shift=4.0, seed=3)
    rng = np.random.default_rng(0)
    assert mmd_pvalue(a, far, 50, rng) == 1 / 51  # no permutation reaches it: the smallest p-value there is
    assert mmd_pvalue(a, a, 50, rng) == 1.0  # identical windows: every permutation reaches an MMD of 0


def test_each_draw_compares_windows_that_share_no_row(monkeypatch):
    """The clean window comes from one half of the pool and the other window from the other half."""
    from harness.analysis import detectors

    clean = np.arange(300, dtype=float).reshape(-1, 1)  # each row's value is its index
    seen = []
    monkeypatch.setattr(detectors, "ks_bonferroni", lambda a, b, alpha: seen.append((a, b)) or False)
    monkeypatch.setattr(detectors, "mmd_permutation", lambda a, b, alpha, k, rng: False)
    found = rates(clean, clean_window(clean), DetectorSettings(window=100, trials=5, permutations=10))
    assert found.fired == {"ks": 0.0, "mmd": 0.0} and len(seen) == 5
    for a, b in seen:
        assert len(a) == len(b) == 100 and not set(a[:, 0]) & set(b[:, 0])


def _embedding_windows(n=200, dim=384, shift=0.0, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, dim))
    x[:, :8] += shift  # a mean shift in a few of the columns
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_each_test_on_embeddings_rejects_a_planted_mean_shift_and_not_identical_samples():
    a, b = _embedding_windows(), _embedding_windows(shift=0.5, seed=1)
    rng = np.random.default_rng(0)
    assert ks_bonferroni(a, b, 0.05) and mmd_permutation(a, b, 0.05, 50, rng)
    assert not ks_bonferroni(a, a, 0.05) and not mmd_permutation(a, a, 0.05, 50, rng)
    again = _embedding_windows(seed=2)  # another clean sample of the same distribution
    assert not ks_bonferroni(a, again, 0.05)


def test_a_random_projection_is_fixed_by_its_seed_and_keeps_a_shift_visible():
    p = random_projection(384, 32, seed=0)
    assert p.shape == (384, 32) and np.array_equal(p, random_projection(384, 32, seed=0))
    assert not np.array_equal(p, random_projection(384, 32, seed=1))
    a, b = _embedding_windows() @ p, _embedding_windows(shift=0.5, seed=1) @ p
    assert ks_bonferroni(a, b, 0.05) and mmd_permutation(a, b, 0.05, 50, np.random.default_rng(0))


def test_the_table_names_each_window_and_counts_its_draws():
    clean = _embedding_windows(n=600, dim=16)
    moved = _embedding_windows(n=600, dim=16, shift=1.0, seed=3)
    settings = DetectorSettings(trials=5, null_trials=10, permutations=20)  # 1/21 < 0.05
    found = table(clean, {"noise.s3": (moved_window(moved), 7)}, settings)
    assert set(found) == {"ks", "mmd"}
    assert found["ks"]["noise.s3"] == 1.0 and found["mmd"]["noise.s3"] == 1.0
    assert found["ks"]["trials"] == 5.0 and found["ks"]["null_trials"] == 10.0 and found["ks"]["window"] == 200.0
    assert found["ks"]["fpr_high"] >= found["ks"]["fpr"]
