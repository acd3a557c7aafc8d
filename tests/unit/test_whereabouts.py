"""Where an officer stands to an order (dispatch.api.whereabouts): the route along the streets
of a generated grid, its length and time, and the fallbacks without a fix or a street graph."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from dispatch.api.whereabouts import whereabouts
from gis.coords import METRES_PER_DEG_LAT, LonLat
from gis.routing import ROAD_SPEEDS_KMH, StraightLine, StreetGraph, lattice

ORIGIN = LonLat(119.64, 29.07)
SPACING_M = 100.0
_COS = math.cos(math.radians(ORIGIN.lat))


def node(column: int, row: int) -> LonLat:
    return LonLat(
        ORIGIN.lon + column * SPACING_M / (METRES_PER_DEG_LAT * _COS),
        ORIGIN.lat + row * SPACING_M / METRES_PER_DEG_LAT,
    )


def test_the_route_follows_the_streets_round_the_block() -> None:
    grid = lattice(ORIGIN, 6, 6, SPACING_M)
    start, end = node(1, 1), node(3, 3)  # two blocks east and two north, off the primaries
    found = whereabouts(grid, (start, 1000.0), end)
    assert found["me"] == {"lon": start.lon, "lat": start.lat, "fix_at": 1000.0}
    route = [LonLat(*p) for p in found["route"]]
    assert route[0] == start and route[-1] == end
    # Along the grid, never across a block: each step moves east or north only.
    for a, b in pairwise(route):
        assert a.lon == pytest.approx(b.lon) or a.lat == pytest.approx(b.lat)
    assert found["distance_m"] == pytest.approx(4 * SPACING_M, abs=2)
    # Four residential blocks at 25 km/h, as the ranking of officers counts them.
    assert found["eta_s"] == pytest.approx(
        4 * SPACING_M / (ROAD_SPEEDS_KMH["residential"] / 3.6), abs=0.5
    )


def test_without_a_fix_there_is_nothing_to_draw() -> None:
    assert whereabouts(StraightLine(), None, node(1, 1)) == {
        "me": None, "route": None, "distance_m": None, "eta_s": None,
    }  # fmt: skip


def test_without_a_street_graph_the_line_is_straight_and_the_time_allows_a_detour() -> None:
    start, end = node(0, 0), node(0, 10)  # 1 km due north
    found = whereabouts(StraightLine(speed_kmh=36.0, detour=1.5), (start, 5.0), end)
    assert found["route"] == [[start.lon, start.lat], [end.lon, end.lat]]
    assert found["distance_m"] == pytest.approx(1000, abs=2)
    assert found["eta_s"] == pytest.approx(150.0, abs=0.5)  # 1.5 km at 10 m/s


def test_streets_that_do_not_connect_give_a_position_but_no_route() -> None:
    # Two one-way streets leading apart: nothing reaches the incident.
    points = [node(0, 0), node(1, 0), node(5, 5), node(6, 5)]
    graph = StreetGraph(points, [(0, 1, SPACING_M, 10.0), (3, 2, SPACING_M, 10.0)])
    found = whereabouts(graph, (points[0], 7.0), points[2])
    assert found["me"] is not None
    assert found["route"] is None and found["distance_m"] is None and found["eta_s"] is None
