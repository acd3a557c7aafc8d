"""Track cleaning and coverage, duty rosters, and travel times on a small street graph."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from dispatch.core.roster import OfficerId, Roster, RosterError, Shift, Team, TeamId
from gis.areas import DISTRICT, GRID, Area, AreaId, AreaIndex
from gis.coords import LonLat, haversine_m
from gis.routing import StraightLine, StreetGraph, lattice
from gis.trajectory import TrackPoint, clean, coverage, length_m, simplify

M_LAT = 1 / 111_320.0


def walk(n: int, step_m: float = 10.0, dt: float = 10.0) -> list[TrackPoint]:
    return [TrackPoint(1000.0 + i * dt, 119.65, 29.08 + i * step_m * M_LAT) for i in range(n)]


def test_cleaning_says_what_it_dropped() -> None:
    track = walk(5)
    noisy = [
        *track,
        TrackPoint(1005.0, 0.0, 0.0),
        TrackPoint(1010.0, 119.65, 29.08),  # same time as a kept point
        TrackPoint(1015.0, 119.75, 29.08),  # 10 km in 5 s
        TrackPoint(1016.0, 119.65, 95.0),
    ]
    result = clean(noisy)
    assert result.points == track
    assert result.dropped == {"zero": 1, "duplicate_time": 1, "jump": 1, "out_of_range": 1}


def test_length_and_simplification() -> None:
    track = walk(11)
    assert length_m(track) == pytest.approx(100.0, rel=2e-3)
    simple = simplify(track, tolerance_m=1.0)
    assert simple == [track[0], track[-1]]
    bend = [*track, TrackPoint(1200.0, 119.651, 29.08 + 100 * M_LAT)]
    assert simplify(bend, 1.0) == [track[0], track[-1], bend[-1]]


def test_coverage_counts_cells_crossed_between_sparse_fixes() -> None:
    cells = AreaIndex(
        Area(
            AreaId(f"c{k}"),
            f"c{k}",
            GRID,
            shapely.box(119.65 + k * 0.001, 29.0, 119.651 + k * 0.001, 29.1),
        )
        for k in range(10)
    )
    track = [TrackPoint(0.0, 119.6505, 29.05), TrackPoint(60.0, 119.6545, 29.05)]
    assert coverage(track, cells, start=0.0, end=60.0) == pytest.approx(0.5)
    assert coverage(track, cells, start=100.0, end=200.0) == 0.0


def roster() -> Roster:
    district = Area(AreaId("d"), "婺城区", DISTRICT, shapely.box(0, 0, 2, 1))
    west = Area(AreaId("d-w"), "西片", GRID, shapely.box(0, 0, 1, 1), AreaId("d"))
    east = Area(AreaId("d-e"), "东片", GRID, shapely.box(1, 0, 2, 1), AreaId("d"))
    teams = [
        Team(TeamId("t1"), "一中队", frozenset({AreaId("d")})),
        Team(TeamId("t2"), "二中队", frozenset({AreaId("d-e")})),
    ]
    shifts = [
        Shift(TeamId("t1"), frozenset({OfficerId("zhang3"), OfficerId("li4")}), 0.0, 100.0),
        Shift(TeamId("t2"), frozenset({OfficerId("wang5")}), 50.0, 150.0),
    ]
    return Roster(teams, shifts, AreaIndex([district, west, east]))


def test_the_nearest_owning_team_answers_for_an_area() -> None:
    r = roster()
    assert r.team_for_area("d-w").id == "t1"  # through its district
    assert r.team_for_area("d-e").id == "t2"  # owned directly
    assert r.on_duty_for_area("d-w", 10.0) == ["li4", "zhang3"]
    assert r.on_duty_for_area("d-e", 10.0) == []  # t2 starts at 50
    assert r.on_duty_for_area("d-e", 60.0) == ["wang5"]
    assert r.on_duty_for_area("d-w", 100.0) == []  # shifts end exclusive


def test_out_of_area_only_for_officers_on_duty() -> None:
    r = roster()
    assert r.out_of_area(OfficerId("zhang3"), LonLat(0.5, 0.5), 10.0) is False
    assert r.out_of_area(OfficerId("zhang3"), LonLat(1.5, 0.5), 10.0) is True
    assert r.out_of_area(OfficerId("zhang3"), LonLat(5.0, 5.0), 10.0) is True
    assert r.out_of_area(OfficerId("zhang3"), LonLat(1.5, 0.5), 200.0) is None


def test_an_officer_off_duty_keeps_the_team_of_the_next_or_last_shift() -> None:
    r = roster()
    wang5 = OfficerId("wang5")
    assert r.home_team(wang5, 10.0) == ("t2", False)  # before the shift: the coming team
    assert r.home_team(wang5, 60.0) == ("t2", True)
    assert r.home_team(wang5, 150.0) == ("t2", False)  # after it (ends exclusive): the last
    assert r.home_team(OfficerId("nobody"), 60.0) == (None, False)


def test_contradictory_rosters_are_refused() -> None:
    base = roster()
    double = [*base.teams.values(), Team(TeamId("t3"), "三中队", frozenset({AreaId("d-e")}))]
    with pytest.raises(RosterError, match="owned by both"):
        Roster(double, [], base.areas)
    with pytest.raises(RosterError, match="unknown team"):
        Roster(base.teams.values(), [Shift(TeamId("t9"), frozenset(), 0, 1)], base.areas)


def ladder() -> StreetGraph:
    """Four nodes 100 m apart on a line, two-way except 3 -> 2 (one-way street)."""
    lonlat = np.array(
        [[119.65 + k * 100 / (111_320 * math.cos(math.radians(29.08))), 29.08] for k in range(4)]
    )
    edges = [
        (0, 1, 100, 10.0),
        (1, 0, 100, 10.0),
        (1, 2, 100, 10.0),
        (2, 1, 100, 10.0),
        (2, 3, 100, 10.0),
    ]
    return StreetGraph(lonlat, edges, access_speed_kmh=3.6)


def test_many_to_one_travel_times_follow_the_streets() -> None:
    graph = ladder()
    nodes = [LonLat(*p) for p in graph.lonlat]
    times = graph.travel_times_to(nodes[3], nodes[:3])
    assert times == pytest.approx([30.0, 20.0, 10.0], abs=1e-3)
    assert math.isinf(graph.travel_times_to(nodes[0], [nodes[3]])[0])  # one-way street
    off_road = LonLat(nodes[0].lon, nodes[0].lat + 10 * M_LAT)  # 10 m off, walked at 1 m/s
    assert graph.travel_times_to(nodes[1], [off_road])[0] == pytest.approx(20.0, abs=0.1)
    assert graph.route(nodes[0], nodes[3]) == nodes
    assert graph.route(nodes[3], nodes[0]) == []


def test_straight_line_fallback() -> None:
    a, b = LonLat(119.65, 29.08), LonLat(119.66, 29.08)
    expected = haversine_m(a, b) * 1.4 / (30 / 3.6)
    assert StraightLine().travel_times_to(a, [b])[0] == pytest.approx(expected)


def test_generated_lattice_prefers_its_primary_roads() -> None:
    grid = lattice(LonLat(119.6, 29.0), columns=11, rows=11, spacing_m=100.0)
    assert len(grid) == 121 and len(grid.largest_component()) == 121
    at = lambda r, c: LonLat(*grid.lonlat[r * 11 + c])  # noqa: E731
    along_primary = grid.travel_times_to(at(0, 10), [at(0, 0)])[0]  # row 0 is a primary road
    along_residential = grid.travel_times_to(at(1, 10), [at(1, 0)])[0]
    assert along_primary == pytest.approx(1000 / (45 / 3.6), rel=0.01)
    assert along_primary < along_residential
