"""Statistics over seeds: paired differences, their interval and when an effect is within seed noise."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from harness.metrics.seeds import PairedDifference, Spread

finite = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)


def test_interval_is_the_student_t_interval_of_the_differences():
    diff = PairedDifference.from_pairs([3.0, 4.0, 6.0], [1.0, 2.0, 3.0])  # differences 2, 2, 3
    sd = stats.tstd([2.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert math.isclose(diff.mean, 7 / 3)
    assert math.isclose(diff.ci_low, 7 / 3 - half) and math.isclose(diff.ci_high, 7 / 3 + half)
    assert diff.n == 3 and not diff.within_noise


@given(st.lists(finite, min_size=2, max_size=8))
def test_identical_arms_are_within_noise_with_zero_effect(values):
    diff = PairedDifference.from_pairs(values, values)
    assert diff.mean == 0.0 and diff.within_noise


@given(st.lists(finite, min_size=2, max_size=8), st.floats(min_value=0.01, max_value=1.0))
def test_a_constant_shift_is_found_exactly(values, shift):
    diff = PairedDifference.from_pairs([v + shift for v in values], values)
    assert math.isclose(diff.mean, shift, abs_tol=1e-9) and not diff.within_noise


def test_pairs_with_a_diverged_run_are_left_out_and_one_pair_gives_no_interval():
    diff = PairedDifference.from_pairs([0.9, math.nan, 0.8], [0.5, 0.6, math.nan])
    assert diff.n == 1 and math.isclose(diff.mean, 0.4)
    assert math.isnan(diff.ci_low) and diff.within_noise
    assert diff.to_dict()["ci_low"] is None


def test_spread_ignores_non_finite_values():
    spread = Spread.from_values([1.0, math.nan, 3.0])
    assert spread.mean == 2.0 and spread.n == 2 and math.isclose(spread.std, math.sqrt(2))
