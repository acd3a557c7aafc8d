"""The soak's verdicts: a slope over the last window and whether a series stays flat."""

from __future__ import annotations

import math

import pytest

from bench.steady import Trend, trend, verdict

MINUTES = [60.0 * n for n in range(31)]


def test_a_constant_series_is_flat_with_no_slope() -> None:
    found = trend(MINUTES, [100.0] * len(MINUTES))
    assert found == Trend(0.0, 0.0, True, 11)
    assert verdict(found) == "flat within ±10%"


def test_the_slope_is_per_minute_and_read_over_the_last_window_only() -> None:
    # Growth for 20 minutes, then a plateau for the last 10: flat, whatever came before.
    values = [min(t, 1200.0) / 60 + 50 for t in MINUTES]
    assert trend(MINUTES, values).slope_per_min == pytest.approx(0.0, abs=1e-9)
    assert trend(MINUTES, values).flat
    # Over the whole run the same series climbs about 0.8 a minute.
    whole = trend(MINUTES, values, window_s=1800)
    assert 0.6 < whole.slope_per_min < 1.0
    assert not whole.flat


def test_growth_beyond_the_tolerance_over_the_window_is_not_flat() -> None:
    # 2 a minute on a level of about 100 is about 20 % in 10 minutes.
    values = [80.0 + 2 * t / 60 for t in MINUTES]
    found = trend(MINUTES, values)
    assert found.slope_per_min == pytest.approx(2.0)
    assert found.change == pytest.approx(20 / 130, rel=1e-6)
    assert not found.flat
    assert verdict(found) == "grows 15%"


def test_growth_within_the_tolerance_is_flat() -> None:
    values = [1000.0 + t / 60 for t in MINUTES]  # 10 in 10 minutes on about 1,025
    found = trend(MINUTES, values)
    assert found.flat
    assert 0 < found.change < 0.01


def test_a_shrinking_series_says_so() -> None:
    values = [500.0 - 10 * t / 60 for t in MINUTES]
    found = trend(MINUTES, values)
    assert not found.flat
    assert verdict(found).startswith("shrinks")


def test_a_series_that_leaves_zero_grows_from_zero() -> None:
    found = trend([0.0, 60.0, 120.0], [0.0, 0.0, 0.0])
    assert found.flat
    grown = trend([0.0, 60.0, 120.0], [0.0, -1.0, 1.0])  # mean 0, slope up
    assert math.isinf(grown.change) and grown.change > 0
    assert verdict(grown) == "grows from 0"


def test_a_run_shorter_than_the_window_is_read_whole() -> None:
    six = MINUTES[:7]
    found = trend(six, [10.0 * n for n in range(7)])
    assert found.samples == 7
    assert found.slope_per_min == pytest.approx(10.0)


def test_too_few_samples_tell_no_slope() -> None:
    assert trend([], []) == Trend(0.0, 0.0, True, 0)
    assert trend([5.0], [7.0]) == Trend(0.0, 0.0, True, 1)


def test_times_and_values_must_pair_up() -> None:
    with pytest.raises(ValueError):
        trend([0.0, 60.0], [1.0])
