"""Geofence transitions: no misses on sparse fixes, no storms on jittery borders."""

from __future__ import annotations

import math
from itertools import pairwise

import shapely
from hypothesis import given
from hypothesis import strategies as st

from gis.coords import LonLat
from gis.geofence import Crossing, Fence, FenceState, has_departed, observe

CENTRE = LonLat(119.65, 29.08)
FENCE = Fence.circle(CENTRE, 50.0)
M_LAT = 1 / 111_320.0  # degrees of latitude per metre


def north(metres: float) -> LonLat:
    return LonLat(CENTRE.lon, CENTRE.lat + metres * M_LAT)


def run(points, accs=None):
    state, events = FenceState(), []
    for n, point in enumerate(points):
        state, new = observe(FENCE, state, point, float(n * 10), acc_m=(accs or {}).get(n))
        events += new
    return state, events


def test_signed_distance_is_negative_inside() -> None:
    assert math.isclose(FENCE.signed_distance_m(north(80)), 30.0, abs_tol=0.5)
    assert math.isclose(FENCE.signed_distance_m(north(20)), -30.0, abs_tol=0.5)


def test_enter_then_exit_beyond_the_hysteresis_band() -> None:
    state, events = run([north(200), north(40), north(60), north(40), north(80)])
    assert [(e.kind, e.at) for e in events] == [(Crossing.ENTER, 10.0), (Crossing.EXIT, 40.0)]
    assert state.inside is False


def test_jitter_on_the_border_is_one_enter() -> None:
    _, events = run([north(100), north(49), north(55), north(48), north(58), north(45)])
    assert [e.kind for e in events] == [Crossing.ENTER]


def test_inaccurate_fix_moves_nothing() -> None:
    _, events = run([north(200), north(10)], accs={1: 500.0})
    assert events == []


def test_sparse_fixes_passing_through_report_both_crossings() -> None:
    west = LonLat(CENTRE.lon - 0.002, CENTRE.lat)
    east = LonLat(CENTRE.lon + 0.002, CENTRE.lat)
    _, events = run([west, east])
    assert [(e.kind, e.interpolated) for e in events] == [
        (Crossing.ENTER, True),
        (Crossing.EXIT, True),
    ]
    assert events[0].at == 5.0


def test_a_first_fix_inside_is_an_arrival_and_dwell_counts_from_it() -> None:
    state, events = run([north(10), north(12)])
    assert [e.kind for e in events] == [Crossing.ENTER]
    assert state.dwell_s(100.0) == 100.0


def test_out_of_order_fix_is_ignored() -> None:
    state, _ = observe(FENCE, FenceState(), north(200), 100.0)
    later, events = observe(FENCE, state, north(0), 50.0)
    assert (later, events) == (state, [])


def test_polygon_fence() -> None:
    square = shapely.box(119.649, 29.079, 119.651, 29.081)
    fence = Fence.polygon(square)
    assert fence.signed_distance_m(CENTRE) < -90
    assert 190 < fence.signed_distance_m(LonLat(119.653, 29.08)) < 200  # 0.002° of longitude
    _, events = observe(fence, FenceState(), CENTRE, 0.0)
    assert [e.kind for e in events] == [Crossing.ENTER]


def test_departure_needs_two_fixes_beyond_the_threshold() -> None:
    start = CENTRE
    assert not has_departed(start, [(north(150), 5.0)], 100.0)
    assert not has_departed(start, [(north(150), 5.0), (north(90), 5.0)], 100.0)
    assert not has_departed(start, [(north(150), 60.0), (north(160), 5.0)], 100.0)
    assert has_departed(start, [(north(150), 5.0), (north(180), 5.0)], 100.0)


@given(st.lists(st.floats(0, 400), min_size=1, max_size=30), st.floats(0, 30))
def test_a_track_ending_inside_entered_once_more_than_it_left(path, end_m) -> None:
    points = [north(300), *(north(d) for d in path), north(end_m)]
    state, events = run(points)
    kinds = [e.kind for e in events]
    assert state.inside is True
    assert kinds.count(Crossing.ENTER) == kinds.count(Crossing.EXIT) + 1
    assert all(a != b for a, b in pairwise(kinds))  # strictly alternating
    assert kinds[0] == Crossing.ENTER
