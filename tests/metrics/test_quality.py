import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from harness.metrics.quality import Accuracy, EmbeddingFidelity, cosine_rows, mean_interval, wilson_interval


@given(st.integers(1, 2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_contains_the_proportion(kn):
    k, n = kn
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_wilson_interval_narrows_with_n():
    a = wilson_interval(90, 100)
    b = wilson_interval(900, 1000)
    assert (b[1] - b[0]) < (a[1] - a[0])


def test_wilson_matches_statsmodels_formula_value():
    # Wilson interval for 8/10 at 95 %: (0.4902, 0.9433), a textbook value.
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)


def test_mean_interval_matches_scipy():
    x = np.array([0.9, 0.95, 0.97, 0.99, 1.0])
    low, high = mean_interval(x)
    ref = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (low, high) == pytest.approx(ref)
    assert mean_interval(np.array([0.5, 0.5])) == (0.5, 0.5)


def test_accuracy_retention_and_agreement():
    targets = np.array([0, 1, 1, 0])
    ref = np.array([[2, 0], [0, 2], [0, 2], [0, 2]], dtype=float)  # 3/4 right
    out = np.array([[2, 0], [0, 2], [2, 0], [0, 2]], dtype=float)  # 2/4 right, agrees on 3/4
    q = Accuracy().evaluate(out, ref, targets, {})
    assert q.value == 0.5 and q.n == 4
    assert q.retention == pytest.approx(0.5 / 0.75)
    assert q.agreement == 0.75
    assert q.ci_low < 0.5 < q.ci_high
    assert q.extra["reference_accuracy"] == 0.75


def test_accuracy_needs_targets():
    with pytest.raises(ValueError, match="targets"):
        Accuracy().evaluate(np.zeros((2, 2)), np.zeros((2, 2)), None, {})


def test_embedding_fidelity_identical_is_perfect_and_noise_lowers_it():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(20, 8))
    pairs = np.array([[i, (i * 7 + 3) % 20] for i in range(20)])
    same = EmbeddingFidelity().evaluate(ref.copy(), ref, None, {"pairs": pairs})
    assert same.value == pytest.approx(1.0) and same.retention == pytest.approx(1.0)
    assert same.agreement == pytest.approx(1.0) and same.extra["cosine_min"] == pytest.approx(1.0)
    noisy = EmbeddingFidelity().evaluate(ref + rng.normal(scale=0.5, size=ref.shape), ref, None, {"pairs": pairs})
    assert noisy.value < 0.99 and noisy.extra["cosine_min"] <= noisy.value and noisy.agreement < 1.0


@given(st.integers(1, 10), st.integers(1, 6))
def test_cosine_rows_is_scale_invariant(rows, dim):
    rng = np.random.default_rng(rows * 10 + dim)
    a = rng.normal(size=(rows, dim))
    assert np.allclose(cosine_rows(a, 3.0 * a), 1.0)
    assert np.allclose(cosine_rows(a, -a), -1.0)


def test_top1_agreement_counts_matching_argmax_without_labels():
    from harness.metrics.quality import TopOneAgreement

    ref = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3, 0, 1]] * 5.0
    out = ref.copy()
    out[[2, 7]] = np.eye(4)[[3, 0]] * 5.0  # two items now pick another class
    stats_ = TopOneAgreement().evaluate(out, ref, None, {})
    assert stats_.value == pytest.approx(0.8) and stats_.retention == pytest.approx(0.8) and stats_.n == 10
    assert stats_.ci_low < 0.8 < stats_.ci_high
    assert stats_.extra["logit_cosine_min"] == pytest.approx(0.0)
    assert stats_.extra["logit_cosine_mean"] == pytest.approx(0.8)
    assert TopOneAgreement().evaluate(ref, ref, None, {}).value == 1.0
