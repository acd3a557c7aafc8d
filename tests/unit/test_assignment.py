"""Recommendation: owning team first, then neighbours; free, online, on duty; by ETA + load.
An order goes only to officers of the roster, on duty and online; the automatic one too."""

from __future__ import annotations

import pytest
import shapely

from dispatch.core.assignment import (
    Availability,
    CrewRefused,
    OfficerState,
    check_crew,
    choose_crew,
    recommend_officers,
)
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


def crew_check(officers, availability, now=NOW, shifts=None):
    roster, _ = setup([], shifts)
    check_crew(
        tuple(OfficerId(o) for o in officers),
        roster=roster,
        availability={OfficerId(o): a for o, a in availability.items()},
        now=now,
    )


ONLINE = {"m1": Availability.AVAILABLE, "m2": Availability.BUSY, "w1": Availability.AVAILABLE}


def test_an_order_to_officers_on_the_roster_on_duty_and_online_passes() -> None:
    crew_check(["m1"], ONLINE)
    crew_check(["m1", "w1"], ONLINE)
    crew_check(["m2"], ONLINE)  # busy elsewhere is reachable: the dispatcher adds to the load


@pytest.mark.parametrize(
    ("officers", "availability", "now", "reason"),
    [
        (["ghost"], ONLINE, NOW, "ghost is not an officer of the roster"),
        (["m1"], ONLINE, 2000.0, "m1 is off duty"),  # the shift ends at 2000
        (["m1"], {"m1": Availability.OFFLINE}, NOW, "m1 is offline"),
        (["m1"], {"m1": Availability.STALE}, NOW, "m1 has not been heard from lately"),
        (["m3"], ONLINE, NOW, "m3 has no device that has reported"),
        (["m1", "m1"], ONLINE, NOW, "m1 is named twice"),
    ],
)
def test_an_order_naming_an_officer_who_cannot_answer_is_refused_with_the_reason(
    officers, availability, now, reason
) -> None:
    with pytest.raises(CrewRefused, match=reason):
        crew_check(officers, availability, now)


def test_every_officer_of_a_refused_crew_is_named() -> None:
    with pytest.raises(CrewRefused) as refused:
        crew_check(["ghost", "m3"], ONLINE)
    assert str(refused.value) == (
        "no order issued: ghost is not an officer of the roster; m3 has no device that has reported"
    )


@pytest.mark.parametrize("two_officers", [False, True])
def test_the_automatic_crew_always_passes_the_check(two_officers) -> None:
    # Everyone in every state: the engine's auto-dispatch orders only whom check_crew allows.
    states = [Availability.AVAILABLE, Availability.BUSY, Availability.STALE, Availability.OFFLINE]
    people = ["m1", "m2", "m3", "m4", "w1", "e1", "f1", "ghost"]
    roster, officers = setup(
        [officer(o, 119.61 + n * 0.001, states[n % 4]) for n, o in enumerate(people)]
    )
    crew = choose_crew(recommend(roster, officers), two_officers=two_officers)
    assert crew is not None and len(crew) == (2 if two_officers else 1)
    availability = {o: s.availability for o, s in officers.items()}
    check_crew(crew, roster=roster, availability=availability, now=NOW)
