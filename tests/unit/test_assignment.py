"""Recommendation: owning team first, then neighbours; free, online, on duty; by ETA + load."""

from __future__ import annotations

import shapely

from dispatch.core.assignment import Availability, OfficerState, recommend_officers
from dispatch.core.roster import OfficerId, Roster, Shift, Team, TeamId
from gis.areas import GRID, Area, AreaId, AreaIndex
from gis.coords import LonLat
from gis.routing import StraightLine

NOW = 1000.0
# Three cells side by side, ~1 km each: west, middle, east; a far cell not adjacent to middle.
CELLS = [
    Area(AreaId(name), name, GRID, shapely.box(119.60 + n * 0.01, 29.0, 119.61 + n * 0.01, 29.01))
    for n, name in enumerate(["west", "middle", "east", "far"])
    if name != "far"
] + [Area(AreaId("far"), "far", GRID, shapely.box(119.70, 29.0, 119.71, 29.01))]
TEAMS = [
    Team(TeamId("t-west"), "西", frozenset({AreaId("west")})),
    Team(TeamId("t-mid"), "中", frozenset({AreaId("middle")})),
    Team(TeamId("t-east"), "东", frozenset({AreaId("east")})),
    Team(TeamId("t-far"), "远", frozenset({AreaId("far")})),
]


def officer(name: str, lon: float, availability=Availability.AVAILABLE, load=0, skills=()):
    return OfficerId(name), OfficerState(
        OfficerId(name), LonLat(lon, 29.005), availability, load, frozenset(skills)
    )


def setup(officers, shifts=None):
    roster = Roster(
        TEAMS,
        shifts
        or [
            Shift(
                TeamId("t-mid"),
                frozenset({OfficerId("m1"), OfficerId("m2"), OfficerId("m3"), OfficerId("m4")}),
                0,
                2000,
            ),
            Shift(TeamId("t-west"), frozenset({OfficerId("w1")}), 0, 2000),
            Shift(TeamId("t-east"), frozenset({OfficerId("e1")}), 0, 2000),
            Shift(TeamId("t-far"), frozenset({OfficerId("f1")}), 0, 2000),
        ],
        AreaIndex(CELLS),
    )
    return roster, dict(officers)


INCIDENT = LonLat(119.615, 29.005)  # centre of "middle"


def recommend(roster, officers, **kwargs):
    return recommend_officers(
        INCIDENT,
        "middle",
        roster=roster,
        officers=officers,
        travel=StraightLine(),
        now=NOW,
        **kwargs,
    )


def test_owning_team_first_nearest_first_then_neighbours() -> None:
    roster, officers = setup(
        [
            officer("m1", 119.618),
            officer("m2", 119.616),
            officer("w1", 119.6151),
            officer("e1", 119.62),
            officer("f1", 119.615),
        ]
    )
    ranked = recommend(roster, officers)
    assert [r.officer for r in ranked] == ["m2", "m1", "w1", "e1"]  # f1's area is not adjacent
    assert ranked[0].rank == 1 and "owning team" in ranked[0].reason
    assert "fallback" in ranked[2].reason and ranked[2].team == "t-west"
    assert ranked[0].eta_s < ranked[1].eta_s


def test_busy_offline_stale_excluded_and_off_duty_ignored() -> None:
    roster, officers = setup(
        [
            officer("m1", 119.615, Availability.BUSY),
            officer("m2", 119.615, Availability.OFFLINE),
            officer("m3", 119.615, Availability.STALE),
            officer("m4", 119.619),
            officer("w1", 119.615),
        ]
    )
    assert [r.officer for r in recommend(roster, officers)] == ["m4", "w1"]
    later = recommend_officers(
        INCIDENT, "middle", roster=roster, officers=officers, travel=StraightLine(), now=5000.0
    )
    assert later == []  # every shift has ended


def test_load_penalty_and_exclusions_and_skills() -> None:
    roster, officers = setup(
        [officer("m1", 119.6155, load=2), officer("m2", 119.618, skills=["food"])]
    )
    assert [r.officer for r in recommend(roster, officers)] == ["m2", "m1"]  # 240 s penalty
    assert [r.officer for r in recommend(roster, officers, exclude=["m2"])] == ["m1"]
    assert [r.officer for r in recommend(roster, officers, skills=frozenset({"food"}))] == ["m2"]
    assert len(recommend(roster, officers, k=1)) == 1
