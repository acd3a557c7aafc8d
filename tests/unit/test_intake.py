"""Intake: the actions each phase allows, where a report lies (area, team, jurisdiction),
and the local date in incident ids."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from shapely.geometry import box

from dispatch.api.incidents import ACTIONS, new_incident_id
from dispatch.core import events as ev
from dispatch.core import timeline
from dispatch.core.feed import incident_body
from dispatch.core.intake import OutsideJurisdiction, area_or_raise, placed
from dispatch.core.model import Incident, IncidentId, Order, OrderId, Phase, Source
from dispatch.core.roster import OfficerId, Roster, Team, TeamId
from dispatch.store import decode_incident
from gis.areas import DISTRICT, GRID, Area, AreaId, AreaIndex
from gis.coords import LonLat

T0 = 1_795_300_000.0
INSIDE = LonLat(119.65, 29.08)
OUTSIDE = LonLat(121.0, 31.0)


def incident(phase: Phase, *, order: bool = False) -> Incident:
    out = Order(OrderId("O1"), (OfficerId("zhang3"),), T0) if order else None
    base = Incident(IncidentId("INC-1"), "street_vending", 3, INSIDE, Source.HOTLINE_12345, T0)
    return replace(base, phase=phase, order=out)


def test_each_phase_allows_the_actions_its_row_takes() -> None:
    assert timeline.allowed_actions(incident(Phase.REPORTED)) == (
        "acknowledge",
        "assign",
        "cancel",
        "merge",
    )
    assert timeline.allowed_actions(incident(Phase.ACKNOWLEDGED)) == ("assign", "cancel", "merge")
    assert timeline.allowed_actions(incident(Phase.DISPATCHED, order=True)) == (
        "reassign",
        "cancel",
        "merge",
    )
    assert timeline.allowed_actions(incident(Phase.ON_SCENE, order=True)) == ("cancel", "resolve")
    assert timeline.allowed_actions(incident(Phase.RESOLVED, order=True)) == ("close",)
    for ended in (Phase.CLOSED, Phase.CANCELLED, Phase.MERGED):
        assert timeline.allowed_actions(incident(ended)) == ()


def test_an_allowed_action_is_one_the_timeline_takes() -> None:
    events = {
        "acknowledge": lambda i: ev.IncidentAcknowledged(i.id, by="d"),
        "assign": lambda i: ev.OrderIssued(i.id, OrderId("O2"), (OfficerId("li4"),), by="d"),
        "reassign": lambda i: ev.ReassignRequested(i.id, by="d"),
        "cancel": lambda i: ev.IncidentCancelled(i.id, by="d", reason="误报"),
        "resolve": lambda i: ev.IncidentResolved(i.id, by="d"),
        "close": lambda i: ev.IncidentClosed(i.id, by="d", reason="处置完毕"),
        "merge": lambda i: ev.DuplicateMerged(i.id, IncidentId("INC-2"), by="d"),
    }
    for phase in Phase:
        case = incident(phase, order=phase not in (Phase.REPORTED, Phase.ACKNOWLEDGED))
        allowed = timeline.allowed_actions(case)
        for name, make in events.items():
            if name in allowed:
                timeline.check(case, make(case))
            else:
                with pytest.raises(timeline.TimelineError):
                    timeline.check(case, make(case))


def test_every_action_route_has_its_event_and_no_other() -> None:
    assert [a.name for a in ACTIONS] == list(timeline.ACTION_EVENTS)


def roster() -> Roster:
    areas = AreaIndex(
        [
            Area(AreaId("330702"), "婺城区", DISTRICT, box(119.6, 29.0, 119.7, 29.1)),
            Area(AreaId("g1"), "网格一", GRID, box(119.64, 29.07, 119.66, 29.09), AreaId("330702")),
        ]
    )
    return Roster([Team(TeamId("east"), "城东中队", frozenset({AreaId("330702")}))], [], areas)


def report(point: LonLat, team: str | None = None) -> ev.IncidentReported:
    return ev.IncidentReported(
        IncidentId("INC-1"), "street_vending", 3, point, Source.HOTLINE_12345, team=team
    )


def test_a_report_is_placed_in_its_innermost_area_and_owned_by_that_areas_team() -> None:
    found = placed(report(INSIDE), roster())
    assert (found.area, found.area_name, found.team) == ("g1", "网格一", "east")
    assert placed(report(INSIDE, team="west"), roster()).team == "west"  # named: kept
    assert placed(report(OUTSIDE), roster()).area is None


def test_a_point_outside_every_area_is_outside_jurisdiction() -> None:
    assert area_or_raise(roster(), INSIDE).id == "g1"
    with pytest.raises(OutsideJurisdiction, match="outside jurisdiction"):
        area_or_raise(roster(), OUTSIDE)


def test_incident_ids_carry_the_local_date() -> None:
    # 2026-12-02 23:30 UTC is already 12-03 in Shanghai.
    late = 1_796_254_200.0
    assert re.fullmatch(r"INC-20261203-[0-9A-F]{6}", new_incident_id(late, "Asia/Shanghai"))
    assert new_incident_id(late, "UTC").startswith("INC-20261202-")


def test_every_screen_receives_an_incident_with_its_actions() -> None:
    body = incident_body(incident(Phase.RESOLVED, order=True))
    assert body["phase"] == "resolved" and body["actions"] == ["close"]
    assert body["area"] is None and body["ticket"] == ""  # defaults of records kept before


def test_a_record_kept_before_intake_fields_existed_still_loads() -> None:
    old = (
        b'{"id":"INC-1","category":"street_vending","priority":3,"location":[119.65,29.08],'
        b'"source":"12345","reported_at":1795300000.0,"phase":"reported"}'
    )
    loaded = decode_incident(old)
    assert (loaded.area, loaded.address, loaded.caller_phone) == (None, "", "")
