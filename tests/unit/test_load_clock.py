"""The load generator on an accelerated center clock sends the time that clock reads."""

from __future__ import annotations

from unittest import mock

from dispatch.clock import Clock
from simulators.load import clocked


def test_a_fix_carries_the_time_the_centers_clock_reads_when_it_leaves() -> None:
    anchor, rate = 1_795_000_000.5, 30.0
    for second in (1_795_000_001, 1_795_000_060, 1_795_003_600):
        with mock.patch("time.time", return_value=float(second)):
            assert clocked(second, rate, anchor) == int(Clock(rate, anchor)())


def test_a_device_a_second_apart_on_the_wall_is_rate_seconds_apart_on_the_clock() -> None:
    assert clocked(1_000_001, 30.0, 1_000_000.0) - clocked(1_000_000, 30.0, 1_000_000.0) == 30
