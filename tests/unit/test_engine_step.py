"""The engine's step without Redis: auto-dispatch, officers gone silent, departure and arrival
seen in positions, and what is read when."""

from __future__ import annotations

import json

import msgspec
import pytest
import shapely

from devices.presence import Presence
from dispatch.city import City
from dispatch.core import events as ev
from dispatch.core.feed import PositionRow
from dispatch.core.model import Incident, IncidentId, Milestone, OrderId, Phase, Source
from dispatch.core.policy import PolicyBook, TimelinePolicy
from dispatch.core.roster import OfficerId, Roster, Shift, Team, TeamId
from dispatch.engine.step import SILENCE_CHECK_S, EngineCore, EntryError, OfficerPositions
from gis.areas import GRID, Area, AreaId, AreaIndex
from gis.coords import LonLat
from gis.routing import StraightLine

T0 = 1_800_000_000.0
SCENE = LonLat(119.615, 29.005)
AREAS = AreaIndex([Area(AreaId("cell"), "cell", GRID, shapely.box(119.60, 29.0, 119.63, 29.01))])
OFFICERS = frozenset(OfficerId(name) for name in ("near", "far", "farther"))
ROSTER = Roster(
    [Team(TeamId("t1"), "一中队", frozenset({AreaId("cell")}))],
    [Shift(TeamId("t1"), OFFICERS, T0 - 3600, T0 + 86_400)],
    AREAS,
)
CITY = City(AREAS, ROSTER, StraightLine())
# ~300 m, ~1 km and ~1.5 km west of the scene.
WHERE = {
    OfficerId("near"): LonLat(119.612, 29.005),
    OfficerId("far"): LonLat(119.605, 29.005),
    OfficerId("farther"): LonLat(119.600, 29.005),
}


def online(*names: str) -> OfficerPositions:
    return {OfficerId(n): (Presence.ONLINE, WHERE[OfficerId(n)]) for n in names}


class Reads:
    """Officer positions handed to the step, counting how often the step asked."""

    def __init__(self, positions: OfficerPositions) -> None:
        self.positions = positions
        self.count = 0

    def __call__(self) -> OfficerPositions:
        self.count += 1
        return self.positions


def core(auto: bool = True, two: bool = False, incidents: tuple[Incident, ...] = ()) -> EngineCore:
    policy = TimelinePolicy(auto_dispatch=auto, two_officers=two)
    return EngineCore(
        PolicyBook(default=policy), city=CITY, incidents=incidents, first_silence_check_at=T0
    )


def command(event: ev.Event) -> dict[str, str]:
    body = {"type": type(event).__name__, **msgspec.to_builtins(event)}
    return {"kind": "command", "body": json.dumps(body)}


def reported(incident: str = "INC-1") -> dict[str, str]:
    return command(
        ev.IncidentReported(IncidentId(incident), "street_vending", 2, SCENE, Source.HOTLINE_12345)
    )


def dispatched(officer: str = "near") -> Incident:
    """An incident whose order has `officer` on the way, as the engine saved it."""
    engine = core(auto=True)
    engine.step([("1-0", reported())], [], Reads(online(officer)), T0)
    return engine.center.incidents[IncidentId("INC-1")]


def sent_orders(step) -> list[dict]:
    return [json.loads(o["notice"]) for o in step.outbox if o["action"] == "send"]


def test_auto_dispatch_orders_the_nearest_free_officer_and_names_the_order_once() -> None:
    step = core().step([("1-0", reported())], [], Reads(online("near", "far")), T0)
    (notice,) = sent_orders(step)
    assert notice["officers"] == ["near"]
    assert notice["order_id"].startswith("O-")
    incident = msgspec.json.decode(step.incidents["INC-1"], type=Incident)
    assert incident.phase is Phase.DISPATCHED and incident.order is not None
    assert incident.order.id == notice["order_id"]
    assert step.inbox_done == ["1-0"]
    issued = [a for a in step.audit if a.get("event") == "OrderIssued"]
    assert len(issued) == 1 and issued[0]["entry_id"] == "auto"


def test_a_redone_step_issues_the_same_order_id() -> None:
    first = core().step([("1-0", reported())], [], Reads(online("near")), T0)
    again = core().step([("1-0", reported())], [], Reads(online("near")), T0)
    assert sent_orders(first) == sent_orders(again)


def test_a_new_incident_raises_an_alert_whose_id_a_redone_step_repeats() -> None:
    first = core(auto=False).step([("1-0", reported())], [], Reads(online()), T0)
    again = core(auto=False).step([("1-0", reported())], [], Reads(online()), T0 + 2)
    assert [(a.kind, a.incident, a.location) for a in first.alerts] == [
        ("new_incident", "INC-1", (SCENE.lon, SCENE.lat))
    ]
    assert [a.id for a in first.alerts] == [a.id for a in again.alerts]


def test_two_officer_rule_orders_the_best_two_or_no_one() -> None:
    both = core(two=True).step(
        [("1-0", reported())], [], Reads(online("near", "far", "farther")), T0
    )
    assert sent_orders(both)[0]["officers"] == ["near", "far"]
    alone = core(two=True).step([("1-0", reported())], [], Reads(online("near")), T0)
    assert sent_orders(alone) == []
    assert [a["reason"] for a in alone.audit if a["kind"] == "no_candidate"] == [
        "no available officer"
    ]


def test_without_auto_dispatch_nobody_reads_where_officers_are() -> None:
    reads = Reads(online("near"))
    step = core(auto=False).step([("1-0", reported())], [], reads, T0 + 1)
    assert reads.count == 0 and sent_orders(step) == []
    incident = msgspec.json.decode(step.incidents["INC-1"], type=Incident)
    assert incident.phase is Phase.REPORTED


def test_officer_gone_silent_on_the_way_is_replaced_by_the_next_best() -> None:
    incident = dispatched("near")
    engine = core(incidents=(incident,))
    silent: OfficerPositions = {
        OfficerId("near"): (Presence.OFFLINE, WHERE[OfficerId("near")]),
        **online("far"),
    }
    reads = Reads(silent)
    step = engine.step([], [], reads, T0 + 30)
    assert reads.count == 1  # one read serves both the silence check and the re-dispatch
    events = [a["event"] for a in step.audit if a["kind"] == "event"]
    assert events == ["OfficerWentOffline", "OrderIssued"]
    assert [a["kind"] for a in step.audit].count("redispatch") == 1
    assert sent_orders(step)[0]["officers"] == ["far"]
    assert [e["type"] for e in step.events].count("redispatch") == 1
    (alert,) = step.alerts
    assert alert.kind == "redispatch" and alert.incident == "INC-1"
    assert alert.location == (SCENE.lon, SCENE.lat)


def test_silence_is_checked_at_most_every_few_seconds_and_spares_the_present() -> None:
    engine = core(incidents=(dispatched("near"),))
    reads = Reads(online("near"))
    assert not engine.step([], [], reads, T0 + 30).audit
    assert reads.count == 1
    engine.step([], [], reads, T0 + 30 + SILENCE_CHECK_S / 2)
    assert reads.count == 1
    engine.step([], [], reads, T0 + 30 + SILENCE_CHECK_S)
    assert reads.count == 2


def test_nobody_on_the_way_means_no_silence_read() -> None:
    reads = Reads(online("near"))
    core().step([], [], reads, T0 + 30)
    assert reads.count == 0


def row(lon: float, lat: float, at: float, device: str = "near/BC-1") -> PositionRow:
    return PositionRow(device, lon, lat, int(at), 5.0, 90.0, at)


def phase(engine: EngineCore) -> Phase:
    return engine.center.incidents[IncidentId("INC-1")].phase


def test_positions_show_departure_then_arrival() -> None:
    engine = core(incidents=(dispatched("near"),))
    assert engine.watching
    start = WHERE[OfficerId("near")]
    reads = Reads(online("near"))
    engine.step([], [row(start.lon, start.lat, T0 + 10)], reads, T0 + 10)
    assert phase(engine) is Phase.DISPATCHED
    # Two fixes ~150 m and ~200 m from where the order found the officer, still outside the fence.
    moving = [row(119.6135, 29.005, T0 + 20), row(119.614, 29.005, T0 + 25)]
    step = engine.step([], moving, reads, T0 + 25)
    assert phase(engine) is Phase.EN_ROUTE
    departed = [a for a in step.audit if a.get("event") == "OfficerDeparted"]
    assert departed[0]["entry_id"] == f"fix:near/BC-1:{int(T0 + 25)}"
    engine.step([], [row(SCENE.lon, SCENE.lat, T0 + 40)], reads, T0 + 40)
    assert phase(engine) is Phase.ON_SCENE
    assert not engine.watching


@pytest.mark.parametrize(
    ("fix_at", "now", "recorded_at"),
    [
        # Read long after the order went unaccepted for too long (a fail-over, a backlog):
        # the fix came first, so the officer arrived and the order stands.
        (T0 + 40, T0 + 300, T0 + 40),
        (T0 - 30, T0 + 20, T0),  # a device clock behind: no arrival before the order
        (T0 + 900, T0 + 20, T0 + 20),  # a device clock ahead: no arrival after now
    ],
)
def test_an_arrival_is_recorded_at_its_fix_s_time_within_the_order_and_now(
    fix_at: float, now: float, recorded_at: float
) -> None:
    engine = core(incidents=(dispatched("near"),))
    engine.step([], [row(SCENE.lon, SCENE.lat, fix_at)], Reads(online("near")), now)
    assert phase(engine) is Phase.ON_SCENE
    arrive = engine.center.incidents[IncidentId("INC-1")].reached(Milestone.ARRIVE)
    assert arrive is not None and arrive.reached_at == int(recorded_at)


@pytest.mark.parametrize("device", ["far/BC-2", "nearby/BC-3"])
def test_positions_of_other_officers_move_nothing(device: str) -> None:
    engine = core(incidents=(dispatched("near"),))
    step = engine.step([], [row(SCENE.lon, SCENE.lat, T0 + 40, device)], Reads({}), T0 + 40)
    assert phase(engine) is Phase.DISPATCHED
    assert not [a for a in step.audit if a["kind"] == "event"]


def test_refused_entries_are_audited_and_change_nothing() -> None:
    engine = core(incidents=(dispatched("near"),))
    closing = command(ev.IncidentClosed(IncidentId("INC-1"), by="duty"))
    step = engine.step(
        [("2-0", closing), ("3-0", {"kind": "command", "body": "{"})], [], Reads({}), T0 + 5
    )
    assert phase(engine) is Phase.DISPATCHED
    assert [a["kind"] for a in step.audit] == ["refused", "refused"]
    assert step.inbox_done == ["2-0", "3-0"] and not step.incidents


class BrokenCategory(PolicyBook):
    """A policy book with a bug for one category: what a fault deep in the core looks like."""

    def for_incident(self, category: str, priority: int) -> TimelinePolicy:
        if category == "broken":
            raise KeyError(category)
        return super().for_incident(category, priority)


def test_an_entry_that_raises_names_itself_and_a_poisoned_one_is_dead_lettered_unread() -> None:
    engine = EngineCore(BrokenCategory(), city=None)
    broken = command(ev.IncidentReported(IncidentId("B"), "broken", 2, SCENE, Source.HOTLINE_12345))
    entries = [("1-1", reported("INC-1")), ("1-2", broken)]
    with pytest.raises(EntryError, match="inbox entry 1-2: KeyError") as failed:
        engine.step(entries, [], Reads({}), T0)
    assert failed.value.entry_id == "1-2"

    fresh = EngineCore(BrokenCategory(), city=None)
    out = fresh.step(entries, [], Reads({}), T0, poisoned={"1-2": str(failed.value)})
    assert out.inbox_done == ["1-1", "1-2"]
    assert list(out.incidents) == ["INC-1"]
    assert [(d["entry_id"], d["kind"], d["error"]) for d in out.deadletters] == [
        ("1-2", "command", "inbox entry 1-2: KeyError: 'broken'")
    ]


def test_an_sos_without_a_position_opens_where_its_officer_was_last_seen() -> None:
    sos = {"kind": "sos", "officer": "far", "body": json.dumps({"_type": "sos", "tst": T0})}
    reads = Reads(online("near", "far"))
    step = core(auto=False).step([("5-1", sos)], [], reads, T0)
    incident = msgspec.json.decode(step.incidents["SOS-5-1"], type=Incident)
    assert incident.location == WHERE[OfficerId("far")] and incident.priority == 1
    assert "at the last known position: the alarm carries no position" in incident.title
    assert [(a.kind, a.incident) for a in step.alerts] == [("sos", "SOS-5-1")]
    # Other inbox entries never make the step read where officers are.
    quiet = Reads(online("near"))
    core(auto=False).step([("1-0", reported())], [], quiet, T0)
    assert quiet.count == 0


def test_a_dispatcher_s_order_to_an_officer_gone_offline_meanwhile_is_refused() -> None:
    engine = core(auto=False)
    engine.step([("1-0", reported())], [], Reads(online("near")), T0)
    order = ev.OrderIssued(IncidentId("INC-1"), OrderId("O-1"), (OfficerId("far"),), by="d1")
    gone = {**online("near"), OfficerId("far"): (Presence.OFFLINE, WHERE[OfficerId("far")])}
    step = engine.step([("2-0", command(order))], [], Reads(gone), T0 + 5)
    (refusal,) = [a for a in step.audit if a["kind"] == "refused"]
    assert refusal["reason"] == "no order issued: far is offline"
    incident = engine.center.incidents[IncidentId("INC-1")]
    assert incident.order is None and incident.milestones == ()
    assert sent_orders(step) == []
    # Back online, the same order goes out.
    again = engine.step([("3-0", command(order))], [], Reads(online("near", "far")), T0 + 9)
    assert sent_orders(again)[0]["officers"] == ["far"]


def order_sent(step) -> list[dict]:
    return [json.loads(a["detail"]) for a in step.audit if a["kind"] == "order_sent"]


def test_every_order_goes_out_with_the_travel_time_of_its_nearest_officer() -> None:
    def eta_s(officer: str) -> float:
        (seconds,) = CITY.travel.travel_times_to(SCENE, [WHERE[OfficerId(officer)]])
        return float(seconds)

    auto = core().step([("1-0", reported())], [], Reads(online("near", "far")), T0)
    (sent,) = order_sent(auto)
    assert sent["officers"] == ["near"] and sent["eta_s"] == pytest.approx(eta_s("near"))
    assert 30 < sent["eta_s"] < 90  # ~300 m, with the detour, at 30 km/h
    # The devices' order is what it always was: the travel time is the audit's.
    assert "eta_s" not in sent_orders(auto)[0]
    # A dispatcher's crew of two: the first of them there is who meets the clock.
    engine = core(auto=False)
    engine.step([("1-0", reported())], [], Reads(online()), T0)
    crew = (OfficerId("farther"), OfficerId("far"))
    order = ev.OrderIssued(IncidentId("INC-1"), OrderId("O-1"), crew, by="d1")
    reads = Reads(online("far", "farther"))
    (sent,) = order_sent(engine.step([("2-0", command(order))], [], reads, T0 + 5))
    assert sent["eta_s"] == pytest.approx(eta_s("far")) and reads.count == 1
    # Without a city there is nothing to know it by.
    bare = EngineCore(PolicyBook(), city=None)
    bare.step([("1-0", reported())], [], Reads(online()), T0)
    (sent,) = order_sent(bare.step([("2-0", command(order))], [], Reads(online()), T0 + 5))
    assert sent["eta_s"] is None
