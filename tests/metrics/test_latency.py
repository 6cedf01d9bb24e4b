import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.metrics.latency import LatencyStats, sample_latency

samples = st.lists(st.floats(1e-7, 10.0, allow_nan=False), min_size=1, max_size=200)


@given(samples, st.integers(1, 512))
def test_percentiles_are_ordered_and_bounded(data, batch):
    s = LatencyStats.from_samples(data, batch)
    assert s.min_s <= s.median_s <= s.p90_s <= s.p99_s <= s.max_s
    assert s.min_s * (1 - 1e-12) <= s.mean_s <= s.max_s * (1 + 1e-12)  # the mean carries rounding error
    assert 0 <= s.iqr_s <= s.max_s - s.min_s + 1e-12
    assert s.rounds == len(data)
    assert s.items_per_s == pytest.approx(batch / s.median_s)


@given(samples, st.floats(0.1, 10.0))
def test_scaling_samples_scales_every_statistic(data, k):
    a = LatencyStats.from_samples(data, 1)
    b = LatencyStats.from_samples([x * k for x in data], 1)
    for field in ("median_s", "p90_s", "p99_s", "iqr_s", "min_s", "max_s"):
        assert getattr(b, field) == pytest.approx(getattr(a, field) * k, rel=1e-9, abs=1e-15)


@given(samples)
def test_order_of_samples_does_not_matter(data):
    a, b = LatencyStats.from_samples(data, 1), LatencyStats.from_samples(sorted(data), 1)
    assert a.mean_s == pytest.approx(b.mean_s)
    assert dataclasses.replace(a, mean_s=0.0) == dataclasses.replace(b, mean_s=0.0)


def test_known_values():
    s = LatencyStats.from_samples([1.0, 2.0, 3.0, 4.0, 5.0], batch=10)
    assert s.median_s == 3.0 and s.iqr_s == 2.0 and s.items_per_s == pytest.approx(10 / 3)
    assert s.p90_s == pytest.approx(np.percentile([1, 2, 3, 4, 5], 90))


@pytest.mark.parametrize(("data", "batch", "match"), [([], 1, "at least one"), ([1.0], 0, "batch"),
                                                      ([float("nan")], 1, "finite"), ([-1.0], 1, "non-negative")])
def test_bad_samples_are_refused(data, batch, match):
    with pytest.raises(ValueError, match=match):
        LatencyStats.from_samples(data, batch)


def test_sample_latency_respects_round_bounds():
    calls = []
    out = sample_latency(lambda: calls.append(1), warmup=2, min_rounds=7, max_rounds=7, max_time_s=10)
    assert len(out) == 7 and len(calls) == 9
    out = sample_latency(lambda: None, warmup=0, min_rounds=3, max_rounds=50, max_time_s=0.0)
    assert len(out) == 3
