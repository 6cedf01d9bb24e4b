import dataclasses
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.metrics.latency import (
    LatencyStats,
    NormalizedLatency,
    PairedStats,
    median_interval,
    relative_spread,
    sample_latency,
    sample_paired,
)

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
        # rounding error scales with the samples' magnitude (an IQR of two nearly equal samples is all rounding)
        assert getattr(b, field) == pytest.approx(getattr(a, field) * k, rel=1e-9, abs=1e-12 * max(data) * k)


@given(samples)
def test_order_of_samples_does_not_matter(data):
    a, b = LatencyStats.from_samples(data, 1), LatencyStats.from_samples(sorted(data), 1)
    assert a.mean_s == pytest.approx(b.mean_s)
    assert dataclasses.replace(a, mean_s=0.0, samples_s=()) == dataclasses.replace(b, mean_s=0.0, samples_s=())


@given(samples)
def test_raw_samples_are_kept_in_order(data):
    assert LatencyStats.from_samples(data, 1).samples_s == tuple(data)


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


# -- paired (interleaved) speedup --------------------------------------------------------------------------------
positive = st.floats(1e-6, 10.0, allow_nan=False)


@given(st.lists(st.tuples(positive, positive), min_size=1, max_size=100))
def test_paired_speedup_is_the_median_ratio_and_lies_between_its_quartiles(pairs):
    ref, cand = zip(*pairs, strict=True)
    s = PairedStats.from_samples(ref, cand)
    assert s.p25 <= s.speedup <= s.p75
    assert s.speedup == pytest.approx(float(np.median(s.ratios())))
    assert s.rounds == len(pairs)
    if len(s.ratios()) == len(pairs):  # no round left out as preempted: the plain median of the ratios
        assert s.speedup == pytest.approx(float(np.median(np.asarray(ref) / np.asarray(cand))))
    assert (s.reference_s, s.candidate_s) == (tuple(ref), tuple(cand))  # raw rounds kept for later statistics


@given(st.lists(st.tuples(positive, positive), min_size=1, max_size=100))
def test_swapping_reference_and_candidate_inverts_the_speedup(pairs):
    ref, cand = zip(*pairs, strict=True)
    forward, backward = PairedStats.from_samples(ref, cand), PairedStats.from_samples(cand, ref)
    if len(forward.ratios()) % 2:  # an odd count's median is one ratio, so the inverse is exact
        assert forward.speedup * backward.speedup == pytest.approx(1.0)
    # An even count's median averages two ratios, and the mean of inverses is at least the inverse of the mean.
    assert forward.speedup * backward.speedup >= 1.0 - 1e-9


@given(st.lists(positive, min_size=1, max_size=60), st.lists(st.floats(0.2, 5.0), min_size=1, max_size=60))
def test_common_drift_cancels_in_paired_ratios(base, drift):
    """A machine slowing down by a factor that hits both sides of a round leaves every paired ratio unchanged."""
    n = min(len(base), len(drift))
    ref = [2.0 * b * d for b, d in zip(base[:n], drift[:n], strict=True)]
    cand = [b * d for b, d in zip(base[:n], drift[:n], strict=True)]
    s = PairedStats.from_samples(ref, cand)
    assert s.speedup == pytest.approx(2.0) and s.p25 == pytest.approx(2.0) and s.p75 == pytest.approx(2.0)


@pytest.mark.parametrize(("ref", "cand", "match"), [([], [], "non-zero"), ([1.0, 2.0], [1.0], "equal"),
                                                    ([0.0], [1.0], "positive"), ([1.0], [float("nan")], "finite")])
def test_bad_paired_samples_are_refused(ref, cand, match):
    with pytest.raises(ValueError, match=match):
        PairedStats.from_samples(ref, cand)


def test_sample_paired_interleaves_and_measures_a_real_speedup():
    order: list[str] = []

    def slow():
        order.append("r")
        time.sleep(0.004)

    def fast():
        order.append("c")
        time.sleep(0.001)

    s = sample_paired(slow, fast, min_rounds=6, max_rounds=6, max_time_s=0.0, min_block_s=0.0)
    assert s.rounds == 6 and s.block == 1
    timed = "".join(order[6:])  # after two warm-up calls of each and one to size the blocks
    assert timed == "rccrrccrrccr"  # order alternates every round, so neither side always runs second
    assert 2.0 < s.speedup < 4.5  # sleeps of 4 ms vs 1 ms; generous: sleep overshoots on a loaded machine


def test_sample_paired_blocks_short_calls_to_beat_timer_resolution():
    s = sample_paired(lambda: None, lambda: None, min_rounds=3, max_rounds=3, max_time_s=0.0, min_block_s=0.001)
    assert s.block > 1


class _DriftingClock:
    """A fake perf_counter: each call of a timed function advances it by the call's cost times a drift factor
    that grows from 1 to 3 over the measurement (a machine getting busier)."""

    def __init__(self, span: float) -> None:
        self.now, self.span = 0.0, span

    def perf_counter(self) -> float:
        return self.now

    def call(self, cost: float) -> None:
        self.now += cost * (1.0 + 2.0 * min(self.now / self.span, 1.0))


def test_interleaving_cancels_drift_where_separately_timed_medians_are_wrong(monkeypatch):
    """The reference costs 2 units, the candidate 1: a true speedup of 2. Timed one after the other while the
    machine slows down, their medians give a ratio far from 2; interleaved, the median per-round ratio is 2."""
    import types

    from harness.metrics import latency

    clock = _DriftingClock(span=400.0)
    monkeypatch.setattr(latency, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))

    def reference():
        clock.call(2.0)

    def candidate():
        clock.call(1.0)

    ref_alone = latency.sample_latency(reference, warmup=0, min_rounds=50, max_rounds=50, max_time_s=0.0)
    cand_alone = latency.sample_latency(candidate, warmup=0, min_rounds=50, max_rounds=50, max_time_s=0.0)
    unpaired = float(np.median(ref_alone) / np.median(cand_alone))
    clock.now = 0.0
    paired = latency.sample_paired(reference, candidate, min_rounds=50, max_rounds=50, max_time_s=0.0,
                                   min_block_s=0.0)
    assert abs(unpaired - 2.0) > 0.3  # the drift is visible to separately timed medians
    assert paired.speedup == pytest.approx(2.0, rel=0.03)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.1, 10.0), min_size=1, max_size=40), st.floats(0.01, 100.0))
def test_median_interval_holds_the_median_and_scales_with_the_samples(samples, scale):
    median, low, high = median_interval(samples)
    assert low <= median <= high and min(samples) <= low and high <= max(samples)
    m2, l2, h2 = median_interval([x * scale for x in samples])
    assert (m2, l2, h2) == pytest.approx((median * scale, low * scale, high * scale), rel=1e-9)


def test_relative_spread_is_robust_and_zero_for_one_run():
    assert relative_spread([1.0]) == 0.0
    assert relative_spread([1.0, 1.0, 1.0]) == 0.0
    assert relative_spread([0.9, 1.0, 1.1]) == pytest.approx(0.1482, abs=1e-3)
    assert relative_spread([1.0, 1.0, 1.0, 1.0, 9.0]) == pytest.approx(4.0)  # half-range bounds a zero MAD


def test_normalized_latency_is_the_median_case_to_probe_ratio():
    n = NormalizedLatency.from_samples([2.0, 4.0, 6.0], [1.0, 2.0, 2.0], block=2)
    assert n.value == pytest.approx(2.0) and n.probe_s == pytest.approx(1.0) and n.ratios == (2.0, 2.0, 3.0)
    with pytest.raises(ValueError, match="equal"):
        NormalizedLatency.from_samples([1.0], [1.0, 2.0])


def test_rounds_a_preemption_hit_on_one_side_are_left_out_of_the_ratio():
    """A shared runner: over half the blocks lose a ~12 ms time slice (as measured on the 2-core runner with six
    users). The plain median of per-round ratios comes out at 1.14; leaving out the preempted rounds gives 2x."""
    rng = np.random.default_rng(0)
    ref = 0.004 + 0.012 * (rng.random(40) < 0.55)
    cand = 0.002 + 0.012 * (rng.random(40) < 0.55)
    assert float(np.median(ref / cand)) < 1.5  # what pairing alone gives here
    stats = PairedStats.from_samples(ref, cand)
    assert stats.speedup == pytest.approx(2.0) and len(stats.ratios()) < 40
