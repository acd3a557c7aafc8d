"""Patrol coverage of grids on synthetic streets in Jinhua, and the per-shift patrol verdict.

Positions are laid out in metres east/north of a point in Jinhua (119.65E 29.08N) and turned
into WGS-84 with an exact inverse projection, so the expected figures are plain geometry.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from dispatch.core.patrol import (
    PatrolError,
    PatrolTargets,
    Standing,
    assess_shift,
    judge,
)
from dispatch.core.roster import OfficerId, Roster, Shift, Team, TeamId
from gis.areas import GRID, STREET, Area, AreaId, AreaIndex
from gis.coverage import Basis, CoverageIndex, Track, grid_coverage, street_lines
from gis.routing import StreetGraph

ORIGIN = (119.65, 29.08)
_TO_LONLAT = Transformer.from_crs(
    f"+proj=aeqd +lat_0={ORIGIN[1]} +lon_0={ORIGIN[0]} +datum=WGS84 +units=m +no_defs",
    "+proj=longlat +datum=WGS84 +no_defs",
    always_xy=True,
)
T0 = 1_790_000_000.0  # a shift starting in 2026


def lonlat(xy: np.ndarray) -> np.ndarray:
    xy = np.atleast_2d(np.asarray(xy, dtype=float))
    lon, lat = _TO_LONLAT.transform(xy[:, 0], xy[:, 1])
    return np.column_stack((lon, lat))


def grid_area(grid_id: str, west: float, south: float, east: float, north: float) -> Area:
    corners = lonlat([(west, south), (east, south), (east, north), (west, north)])
    return Area(AreaId(grid_id), grid_id, GRID, shapely.Polygon(corners), AreaId("street"))


def line(*xy: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString(lonlat(np.array(xy)))


def drive(path: list[tuple[float, float]], speed_ms: float, every_s: float, start_at: float):
    """Fixes every `every_s` along the polyline `path` (metres) at a constant speed."""
    path_a = np.array(path, dtype=float)
    legs = np.hypot(*np.diff(path_a, axis=0).T)
    at = np.r_[0.0, np.cumsum(legs)]
    s = np.arange(0.0, at[-1] + 1e-9, speed_ms * every_s)
    xy = np.column_stack((np.interp(s, at, path_a[:, 0]), np.interp(s, at, path_a[:, 1])))
    return xy, start_at + s / speed_ms


def track(officer: str, xy: np.ndarray, t: np.ndarray) -> Track:
    ll = lonlat(xy)
    return Track.of(officer, ll[:, 0], ll[:, 1], t)


def ladder() -> StreetGraph:
    """Ten east-west streets 100 m apart, 1 km long, nodes every 100 m, joined at both ends by
    north-south connectors; all two-way, as GraphML graphs are."""
    nodes, edges = [], []
    for row in range(10):
        for col in range(11):
            nodes.append((col * 100.0, row * 100.0))
    index = {xy: n for n, xy in enumerate(nodes)}

    def street(a: tuple[float, float], b: tuple[float, float]) -> None:
        edges.extend([(index[a], index[b], 100.0, 14.4), (index[b], index[a], 100.0, 14.4)])

    for row in range(10):
        for col in range(10):
            street((col * 100.0, row * 100.0), ((col + 1) * 100.0, row * 100.0))
    for row in range(9):
        for x in (0.0, 1000.0):
            street((x, row * 100.0), (x, (row + 1) * 100.0))
    return StreetGraph(lonlat(np.array(nodes)), edges)


LADDER_GRID = grid_area("g-ladder", 50, -50, 950, 950)  # connectors lie outside it
SERPENTINE = [
    (0, 0), (1000, 0), (1000, 200), (0, 200), (0, 400), (1000, 400),
    (1000, 600), (0, 600), (0, 800), (1000, 800),
]  # fmt: skip


def test_a_track_driving_half_the_streets_covers_half() -> None:
    xy, t = drive(SERPENTINE, speed_ms=5.0, every_s=10.0, start_at=T0)
    result = grid_coverage(LADDER_GRID, ladder(), [track("o1", xy, t)], T0, T0 + 3600)
    assert result.basis is Basis.STREETS
    assert result.street_m == pytest.approx(9000, rel=1e-3)
    assert result.covered_share == pytest.approx(0.5, abs=0.02)
    assert result.radius_m == 30 and result.max_gap_s == 120


def test_the_street_graph_gives_each_two_way_street_once() -> None:
    lines = street_lines(ladder())
    assert len(lines) == 10 * 10 + 2 * 9


ONE_STREET = [line((0, 0), (1000, 0))]
ONE_STREET_GRID = grid_area("g-one", -100, -100, 1100, 100)


def test_the_radius_is_respected() -> None:
    xy, t = drive([(-200, 40), (1200, 40)], speed_ms=5.0, every_s=10.0, start_at=T0)
    tracks = [track("o1", xy, t)]
    at_30 = grid_coverage(ONE_STREET_GRID, ONE_STREET, tracks, T0, T0 + 600)
    at_50 = grid_coverage(ONE_STREET_GRID, ONE_STREET, tracks, T0, T0 + 600, radius_m=50)
    assert at_30.covered_share == 0.0
    assert at_50.covered_share == pytest.approx(1.0)
    assert at_50.radius_m == 50


def test_a_gap_longer_than_max_gap_is_not_credited() -> None:
    tracks = [track("o1", np.array([(200.0, 0.0), (800.0, 0.0)]), np.array([T0, T0 + 300]))]
    gap = grid_coverage(ONE_STREET_GRID, ONE_STREET, tracks, T0, T0 + 600)
    # Only the two fixes count, each as a point: 2 × 60 m of the 1,000 m street.
    assert gap.covered_m == pytest.approx(120, abs=0.01)
    assert gap.covered_share == pytest.approx(0.12, abs=1e-4)
    assert gap.patrol_s == 0
    assert gap.visits == 1  # seen inside at both ends: one visit, not credited time
    allowed = grid_coverage(ONE_STREET_GRID, ONE_STREET, tracks, T0, T0 + 600, max_gap_s=600)
    assert allowed.covered_m == pytest.approx(660, abs=0.01)
    assert allowed.patrol_s == pytest.approx(300)


def test_a_window_cuts_steps_at_its_edges() -> None:
    xy, t = drive([(0, 0), (1000, 0)], speed_ms=5.0, every_s=10.0, start_at=T0)
    half = grid_coverage(ONE_STREET_GRID, ONE_STREET, [track("o1", xy, t)], T0 + 45, T0 + 145)
    assert half.patrol_s == pytest.approx(100)
    assert half.covered_m == pytest.approx(500 + 2 * 30, abs=0.01)


SQUARE = grid_area("g-square", 0, 0, 1000, 1000)


def enter_twice(wait_s: float) -> Track:
    """10 m/s east along y=500 into the grid and back out, twice, waiting outside between."""
    xy1, t1 = drive([(-200, 500), (200, 500), (-200, 500)], 10.0, 5.0, T0)
    wait = np.arange(t1[-1] + 5, t1[-1] + wait_s, 5.0)
    xy2, t2 = drive([(-200, 500), (200, 500), (-200, 500)], 10.0, 5.0, t1[-1] + wait_s)
    xy = np.vstack((xy1, np.tile([-200.0, 500.0], (len(wait), 1)), xy2))
    return track("o1", xy, np.r_[t1, wait, t2])


def test_time_inside_and_visits_of_a_track_entering_twice() -> None:
    result = grid_coverage(SQUARE, [], [enter_twice(300)], T0, T0 + 3600)
    assert result.visits == 2
    assert result.patrol_s == pytest.approx(80)
    assert result.patrol_s_by_officer == {"o1": pytest.approx(80)}
    (in1, out1), (in2, out2) = result.visits_at
    assert (in1 - T0, out1 - T0) == (pytest.approx(20), pytest.approx(60))
    assert (in2 - T0, out2 - T0) == (pytest.approx(400), pytest.approx(440))
    # Back within a minute of leaving: still the same visit.
    assert grid_coverage(SQUARE, [], [enter_twice(10)], T0, T0 + 3600).visits == 1


def test_two_officers_walking_together_make_one_visit() -> None:
    xy, t = drive([(-200, 500), (200, 500), (-200, 500)], 10.0, 5.0, T0)
    pair = [track("o1", xy, t), track("o2", xy + 2.0, t)]
    result = grid_coverage(SQUARE, [], pair, T0, T0 + 3600)
    assert result.visits == 1
    assert set(result.patrol_s_by_officer) == {"o1", "o2"}
    assert result.patrol_s == pytest.approx(80, abs=1)


def test_a_grid_without_streets_is_judged_by_cells() -> None:
    far = grid_area("g-fields", 2000, 0, 2500, 500)
    xy, t = drive([(1900, 250), (2600, 250)], 5.0, 10.0, T0)
    result = grid_coverage(far, ONE_STREET, [track("o1", xy, t)], T0, T0 + 3600)
    assert result.basis is Basis.CELLS
    # 10 × 10 cells, and a sliver or two: the square is a hair off the plane's axes there.
    assert 100 <= result.cells <= 121
    # Cell centres at y = 225 and 275 lie 25 m from the track; the next rows 75 m.
    assert 20 <= result.covered_cells <= 22
    assert result.covered_share == pytest.approx(0.2, abs=0.002)


def test_many_grids_are_measured_in_one_pass() -> None:
    west = grid_area("g-west", 50, -50, 500, 950)
    east = grid_area("g-east", 500, -50, 950, 950)
    index = CoverageIndex([west, east], street_lines(ladder()))
    xy, t = drive([(0, 0), (1000, 0)], 5.0, 10.0, T0)
    result = index.measure([track("o1", xy, t)], T0, T0 + 3600)
    assert result[AreaId("g-west")].covered_m == pytest.approx(450, abs=0.01)
    assert result[AreaId("g-east")].covered_m == pytest.approx(450, abs=0.01)
    assert result[AreaId("g-west")].visits == result[AreaId("g-east")].visits == 1


# A patrol of the square grid, its fixes random points in and around it.
fixes = st.lists(
    st.tuples(st.floats(-100, 1100), st.floats(-100, 1100), st.floats(1, 150)),
    min_size=1,
    max_size=30,
)
SQUARE_STREETS = [line((0, y), (1000, y)) for y in (100, 500, 900)] + [
    line((x, 0), (x, 1000)) for x in (250, 750)
]
SQUARE_INDEX = CoverageIndex([SQUARE], SQUARE_STREETS)


@settings(max_examples=60, deadline=None)
@given(fixes, st.integers(0, 30))
def test_covered_share_is_a_share_and_more_fixes_never_cover_less(points, cut) -> None:
    xy = np.array([(x, y) for x, y, _ in points])
    t = T0 + np.cumsum([dt for _, _, dt in points])
    cut = min(cut, len(points))
    shares = []
    for n in (cut, len(points)):
        tracks = [track("o1", xy[:n], t[:n])] if n else []
        shares.append(SQUARE_INDEX.measure(tracks, T0, T0 + 3600)[SQUARE.id].covered_share)
    assert 0.0 <= shares[0] <= 1.0 and 0.0 <= shares[1] <= 1.0
    assert shares[1] >= shares[0] - 1e-9


def brute_force_share(xy: np.ndarray, t: np.ndarray, radius_m: float) -> float:
    """Sample the streets every 0.25 m and test each sample against every credited step."""
    streets = [((0, y), (1000, y)) for y in (100, 500, 900)] + [
        ((x, 0), (x, 1000)) for x in (250, 750)
    ]
    samples = np.vstack(
        [np.linspace(a, b, 4001)[:-1] + (np.subtract(b, a) / 8000) for a, b in streets]
    )
    near = np.zeros(len(samples), dtype=bool)
    steps = [(xy[i], xy[i + 1]) for i in range(len(xy) - 1) if t[i + 1] - t[i] <= 120]
    steps += [(p, p) for p in xy]
    for a, b in steps:
        ab = b - a
        f = np.clip(((samples - a) @ ab) / max(ab @ ab, 1e-12), 0, 1)
        near |= np.hypot(*(samples - (a + f[:, None] * ab)).T) <= radius_m
    return float(near.mean())


@settings(max_examples=25, deadline=None)
@given(fixes)
def test_covered_share_matches_a_brute_force_sampling(points) -> None:
    xy = np.array([(x, y) for x, y, _ in points])
    t = T0 + np.cumsum([dt for _, _, dt in points])
    fast = SQUARE_INDEX.measure([track("o1", xy, t)], T0 - 1, T0 + 10_000)[SQUARE.id]
    # The fixture's projection round trip is exact to far under a millimetre.
    assert fast.covered_share == pytest.approx(brute_force_share(xy, t, 30.0), abs=0.002)


# The verdict: a team owning three grids, two officers on a 12-hour shift.
THREE = [grid_area(f"g{n}", n * 1000, 0, n * 1000 + 1000, 1000) for n in range(3)]
STREET_AREA = Area(
    AreaId("street"),
    "街道",
    STREET,
    shapely.box(*shapely.total_bounds([a.geometry for a in THREE])),
)
AREAS = AreaIndex([STREET_AREA, *THREE])
SHIFT = Shift(TeamId("t1"), frozenset({OfficerId("o1"), OfficerId("o2")}), T0, T0 + 12 * 3600)
ROSTER = Roster([Team(TeamId("t1"), "一中队", frozenset({AreaId("street")}))], [SHIFT], AREAS)
THREE_STREETS = [line((x, 500), (x + 1000, 500)) for x in (0, 1000, 2000)]
THREE_INDEX = CoverageIndex(THREE, THREE_STREETS)


def pass_through(officer: str, x0: float, x1: float, start_at: float) -> Track:
    xy, t = drive([(x0, 500), (x1, 500)], 2.0, 10.0, start_at)
    return track(officer, xy, t)


def test_the_verdict_names_grids_below_target_and_never_visited() -> None:
    targets = PatrolTargets.from_mapping(
        {"default": {"visits": 2}, "grids": {"g1": {"visits": 2, "street_share": 0.6}}},
        known_grids=AREAS_IDS,
    )
    tracks = [
        pass_through("o1", 100, 900, T0 + 600),  # g0, morning
        pass_through("o2", 100, 900, T0 + 6 * 3600),  # g0, afternoon: twice
        pass_through("o1", 1100, 1400, T0 + 3 * 3600),  # g1 once, 300 m of 1000
        pass_through("o9", 2100, 2900, T0 + 3600),  # g2: not an officer of this shift
    ]
    verdict = assess_shift(SHIFT, ROSTER, THREE_INDEX, tracks, targets)
    by_grid = {v.grid: v for v in verdict.grids}
    assert by_grid[AreaId("g0")].standing is Standing.MET
    assert by_grid[AreaId("g0")].coverage.visits == 2
    assert by_grid[AreaId("g1")].standing is Standing.BELOW
    assert by_grid[AreaId("g1")].reasons == (
        "1 visit of 2 required",
        "36% of street length within 30 m of a track, target 60%",
    )
    assert verdict.not_visited == (AreaId("g2"),)
    assert by_grid[AreaId("g2")].reasons == ("not visited in the shift (2 visits required)",)
    assert [v.grid for v in verdict.below_target] == ["g1", "g2"]
    assert not verdict.met
    assert "2 of 3 grids below target" in verdict.summary()


def test_a_grid_without_a_target_is_still_named_when_not_visited() -> None:
    coverage = THREE_INDEX.measure([], T0, T0 + 60)[AreaId("g0")]
    assert judge(coverage, None).standing is Standing.NOT_VISITED
    visited = THREE_INDEX.measure([pass_through("o1", 100, 900, T0)], T0, T0 + 3600)
    assert judge(visited[AreaId("g0")], None).standing is Standing.NO_TARGET


AREAS_IDS = [a.id for a in THREE]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"grids": {"g7": {"visits": 2}}}, "grid 'g7', which is not a known grid"),
        ({"grids": {"g0": {"visit": 2}}}, "grid g0: unknown target 'visit'"),
        ({"grids": {"g0": {"visits": -1}}}, "visits must be a whole number"),
        ({"grids": {"g0": {"visits": 1.5}}}, "visits must be a whole number"),
        ({"grids": {"g0": {"visits": True}}}, "visits must be a whole number"),
        ({"default": {"street_share": 60}}, "street_share must be a number from 0 to 1"),
        ({"default": {"patrol_s": "half an hour"}}, "patrol_s must be seconds"),
        ({"default": {}}, "default: expected a mapping"),
        ({"grid": {}}, "unknown key 'grid'"),
        ({"grids": ["g0"]}, "grids must be a mapping"),
    ],
)
def test_bad_targets_are_refused_with_a_reason(data, message) -> None:
    with pytest.raises(PatrolError, match=message):
        PatrolTargets.from_mapping(data, known_grids=AREAS_IDS)


def test_targets_fall_back_to_the_default() -> None:
    targets = PatrolTargets.from_mapping(
        {"default": {"visits": 2}, "grids": {"g1": {"patrol_s": 1800}}}, known_grids=AREAS_IDS
    )
    assert targets.for_grid("g0").visits == 2
    assert targets.for_grid("g1").visits is None and targets.for_grid("g1").patrol_s == 1800
