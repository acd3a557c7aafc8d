"""Roles, permissions and area scopes, without servers: the permission table as written down
here, and what a scope covers in a small hand-built district → street → grid tree."""

from __future__ import annotations

import pytest
import shapely

from dispatch.core.access import (
    PERMISSIONS,
    AreaScope,
    Permission,
    Principal,
    Role,
    parse_role,
    validate_scope,
)
from dispatch.core.roster import OfficerId, Roster, Shift, Team, TeamId
from gis.areas import DISTRICT, GRID, STREET, Area, AreaId, AreaIndex
from gis.coords import LonLat

P = Permission

# The table as the center's rules state it, written out independently of PERMISSIONS.
EXPECTED_PERMISSIONS: dict[Role, set[Permission]] = {
    Role.ADMIN: set(Permission) - {P.ANSWER_OWN_ORDERS},
    Role.COMMANDER: {
        P.WATCH_LIVE,
        P.READ_INCIDENTS,
        P.READ_TRACKS,
        P.REPORT_INCIDENTS,
        P.ACT_ON_INCIDENTS,
        P.EXPORT_EVIDENCE,
        P.READ_AUDIT,
        P.READ_STATISTICS,
    },
    Role.DISPATCHER: {
        P.WATCH_LIVE,
        P.READ_INCIDENTS,
        P.READ_TRACKS,
        P.REPORT_INCIDENTS,
        P.ACT_ON_INCIDENTS,
    },
    Role.OFFICER: {P.ANSWER_OWN_ORDERS},
    Role.AUDITOR: {
        P.READ_INCIDENTS,
        P.READ_TRACKS,
        P.EXPORT_EVIDENCE,
        P.READ_AUDIT,
        P.READ_STATISTICS,
    },
    Role.INTEGRATION: {P.SUBMIT_WORK_ORDERS},
}


def caller(role: Role) -> Principal:
    return Principal(f"{role.value}-1", role)


# The permission table -------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_each_role_has_exactly_the_permissions_of_the_written_table(role: Role) -> None:
    assert set(PERMISSIONS[role]) == EXPECTED_PERMISSIONS[role]
    assert {p for p in Permission if caller(role).may(p)} == EXPECTED_PERMISSIONS[role]


def test_every_role_is_in_the_table() -> None:
    assert set(PERMISSIONS) == set(Role)


def test_an_auditor_reads_and_exports_but_never_acts() -> None:
    auditor = caller(Role.AUDITOR)
    for allowed in (P.READ_INCIDENTS, P.READ_TRACKS, P.EXPORT_EVIDENCE, P.READ_AUDIT):
        assert auditor.may(allowed), allowed
    for refused in (
        P.ACT_ON_INCIDENTS,
        P.REPORT_INCIDENTS,
        P.WATCH_LIVE,
        P.ANSWER_OWN_ORDERS,
        P.MANAGE_ACCOUNTS,
        P.MANAGE_DEVICES,
    ):
        assert not auditor.may(refused), refused


def test_an_officer_only_answers_own_orders() -> None:
    officer = caller(Role.OFFICER)
    assert [p for p in Permission if officer.may(p)] == [P.ANSWER_OWN_ORDERS]


def test_an_integration_hands_work_orders_over_and_sees_nothing() -> None:
    hotline = caller(Role.INTEGRATION)
    assert [p for p in Permission if hotline.may(p)] == [P.SUBMIT_WORK_ORDERS]
    assert {r for r in Role if caller(r).may(P.SUBMIT_WORK_ORDERS)} == {
        Role.ADMIN,
        Role.INTEGRATION,
    }


def test_a_dispatcher_acts_on_incidents_but_manages_nothing() -> None:
    dispatcher = caller(Role.DISPATCHER)
    assert dispatcher.may(P.ACT_ON_INCIDENTS) and dispatcher.may(P.REPORT_INCIDENTS)
    for refused in (P.MANAGE_ACCOUNTS, P.MANAGE_DEVICES, P.READ_AUDIT, P.EXPORT_EVIDENCE):
        assert not dispatcher.may(refused), refused


def test_only_admins_manage_accounts_and_devices_and_only_officers_answer_orders() -> None:
    managers = {r for r in Role if caller(r).may(P.MANAGE_ACCOUNTS)}
    assert managers == {r for r in Role if caller(r).may(P.MANAGE_DEVICES)} == {Role.ADMIN}
    assert {r for r in Role if caller(r).may(P.ANSWER_OWN_ORDERS)} == {Role.OFFICER}


def test_an_unknown_role_is_refused_with_the_choices() -> None:
    assert parse_role("auditor") is Role.AUDITOR
    with pytest.raises(ValueError, match=r"'superuser'.*admin, commander, dispatcher"):
        parse_role("superuser")


# A small city: district → street → grid ----------------------------------------------------
#
#   D1 (119.60–119.62)                          D2 (119.62–119.64)
#   ├── S1 (119.60–119.61): G1 south, G2 north   └── S3 (whole district)
#   └── S2 (119.61–119.62): G3 south
#
# lat 29.00–29.02; "south" is 29.00–29.01.

W, MID, E, FAR = 119.60, 119.61, 119.62, 119.64
S, N = 29.00, 29.02
HALF = 29.01


def area(area_id: str, level: int, bounds: tuple[float, float, float, float], parent=None):
    return Area(AreaId(area_id), area_id, level, shapely.box(*bounds), parent)


AREAS = AreaIndex(
    [
        area("D1", DISTRICT, (W, S, E, N)),
        area("S1", STREET, (W, S, MID, N), "D1"),
        area("G1", GRID, (W, S, MID, HALF), "S1"),
        area("G2", GRID, (W, HALF, MID, N), "S1"),
        area("S2", STREET, (MID, S, E, N), "D1"),
        area("G3", GRID, (MID, S, E, HALF), "S2"),
        area("D2", DISTRICT, (E, S, FAR, N)),
        area("S3", STREET, (E, S, FAR, N), "D2"),
    ]
)

IN_G1 = LonLat(119.605, 29.005)
IN_G2 = LonLat(119.605, 29.015)
IN_S2_ONLY = LonLat(119.615, 29.015)  # north half of S2 has no grid
IN_G3 = LonLat(119.615, 29.005)
IN_D2 = LonLat(119.63, 29.01)
NOWHERE = LonLat(119.70, 29.10)

TEAMS = {
    "grid-team": Team(TeamId("grid-team"), "G1 中队", frozenset({AreaId("G1")})),
    "district-team": Team(TeamId("district-team"), "D1 大队", frozenset({AreaId("D1")})),
    "sibling-street-team": Team(TeamId("sibling-street-team"), "S2", frozenset({AreaId("S2")})),
    "other-district-team": Team(TeamId("other-district-team"), "D2", frozenset({AreaId("D2")})),
}
OFFICER_OF_TEAM = {
    "grid-team": "gao",
    "district-team": "du",
    "sibling-street-team": "shi",
    "other-district-team": "ou",
}
ROSTER = Roster(
    TEAMS.values(),
    [
        Shift(TeamId(team), frozenset({OfficerId(officer)}), 0.0, 86_400.0)
        for team, officer in OFFICER_OF_TEAM.items()
    ],
    AREAS,
)


def scope(area_id: str | None) -> AreaScope:
    return AreaScope(AreaId(area_id) if area_id else None, AREAS, ROSTER)


def test_the_hand_built_tree_is_what_the_picture_says() -> None:
    # Guards the fixtures themselves: a mistyped parent would make every test below vacuous.
    assert [a.id for a in AREAS.ancestors("G1")] == ["S1", "D1"]
    assert AREAS.area_for(IN_G1).id == "G1" and AREAS.area_for(IN_S2_ONLY).id == "S2"
    assert AREAS.area_for(IN_D2).id == "S3" and AREAS.area_for(NOWHERE) is None


@pytest.mark.parametrize(
    ("area_id", "covered"),
    [
        ("S1", True),  # itself
        ("G1", True),  # a descendant
        ("G2", True),
        ("D1", False),  # its ancestor: the district is more than the street
        ("S2", False),  # its sibling
        ("G3", False),  # the sibling's grid
        ("D2", False),  # another district
        ("S3", False),
    ],
)
def test_a_street_scope_covers_itself_and_what_lies_under_it(area_id: str, covered: bool) -> None:
    assert scope("S1").covers_area(area_id) is covered


def test_a_district_scope_covers_its_whole_subtree_only() -> None:
    district = scope("D1")
    assert [a.id for a in AREAS.areas if district.covers_area(a.id)] == [
        "D1",
        "S1",
        "G1",
        "G2",
        "S2",
        "G3",
    ]


def test_a_grid_scope_covers_only_that_grid() -> None:
    grid = scope("G2")
    assert [a.id for a in AREAS.areas if grid.covers_area(a.id)] == ["G2"]


def test_the_whole_center_covers_every_area_point_and_officer() -> None:
    everything = scope(None)
    assert everything.whole_center
    assert all(everything.covers_area(a.id) for a in AREAS.areas)
    assert everything.covers_point(NOWHERE)
    assert everything.covers_officer("anyone-at-all")


@pytest.mark.parametrize(
    ("point", "covered"),
    [
        (IN_G1, True),
        (IN_G2, True),
        (IN_S2_ONLY, False),
        (IN_G3, False),
        (IN_D2, False),
        (NOWHERE, False),  # outside the city is outside every scope
    ],
)
def test_a_point_is_covered_when_its_innermost_area_is(point: LonLat, covered: bool) -> None:
    assert scope("S1").covers_point(point) is covered


def test_a_district_scope_covers_a_point_in_a_street_without_grids() -> None:
    assert scope("D1").covers_point(IN_S2_ONLY)
    assert not scope("D2").covers_point(IN_S2_ONLY)


@pytest.mark.parametrize(
    ("team", "covered"),
    [
        ("grid-team", True),  # owns G1, inside S1
        ("district-team", True),  # owns D1 above S1: it answers for S1's unowned places
        ("sibling-street-team", False),  # owns S2 next door
        ("other-district-team", False),  # owns a sibling district
    ],
)
def test_a_street_scope_covers_the_teams_that_answer_inside_it(team: str, covered: bool) -> None:
    assert scope("S1").covers_team(TEAMS[team]) is covered


def test_a_district_scope_covers_the_teams_below_it_but_not_the_neighbours() -> None:
    district = scope("D1")
    assert {t for t, team in TEAMS.items() if district.covers_team(team)} == {
        "grid-team",
        "district-team",
        "sibling-street-team",
    }
    assert {t for t, team in TEAMS.items() if scope("D2").covers_team(team)} == {
        "other-district-team"
    }


def test_a_scope_covers_the_officers_on_shift_for_the_teams_it_covers() -> None:
    street = scope("S1")
    assert street.officers() == {"gao", "du"}
    assert street.covers_officer("gao") and street.covers_officer("du")
    assert not street.covers_officer("shi") and not street.covers_officer("ou")
    assert not street.covers_officer("not-on-the-roster")
    assert scope("G3").officers() == {"shi", "du"}  # its street's team and the district's


def test_a_scope_without_a_roster_covers_no_officer() -> None:
    street = AreaScope(AreaId("S1"), AREAS, None)
    assert street.officers() == frozenset()
    assert not street.covers_officer("gao")
    assert street.covers_point(IN_G1)  # places still work from the areas alone


def test_an_area_scope_needs_a_city() -> None:
    with pytest.raises(ValueError, match="configured city"):
        AreaScope(AreaId("S1"), None, None)
    assert AreaScope(None, None, None).covers_officer("anyone")


# validate_scope ------------------------------------------------------------------------


@pytest.mark.parametrize("whole_center", [None, "", "*"])
def test_an_empty_scope_is_the_whole_center(whole_center: str | None) -> None:
    assert validate_scope(whole_center, AREAS) is None
    assert validate_scope(whole_center, None) is None


@pytest.mark.parametrize("area_id", ["D1", "S2", "G3"])
def test_a_known_area_at_any_level_is_a_scope(area_id: str) -> None:
    assert validate_scope(area_id, AREAS) == area_id


def test_an_unknown_scope_names_the_area_and_the_districts() -> None:
    with pytest.raises(ValueError) as refused:
        validate_scope("G9", AREAS)
    message = str(refused.value)
    assert "'G9'" in message
    assert "D1, D2" in message
    assert "S1" not in message  # only districts are offered, not every area


def test_a_scope_without_a_city_says_what_is_missing() -> None:
    with pytest.raises(ValueError, match="YIWANG_AREAS_FILE"):
        validate_scope("D1", None)


def test_a_query_narrows_a_scope_only_inside_it() -> None:
    assert scope("D1").narrowed(None).scope == "D1"
    assert sorted(scope("D1").narrowed("S1").area_ids() or []) == ["G1", "G2", "S1"]
    assert scope(None).narrowed("S3").scope == "S3"
    with pytest.raises(ValueError, match="outside your area scope"):
        scope("S1").narrowed("D1")
    # An area the tree does not hold is named, never looked up blindly.
    with pytest.raises(ValueError, match="unknown area 'nowhere'"):
        scope("S1").narrowed("nowhere")
